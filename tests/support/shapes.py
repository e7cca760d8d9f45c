"""OpenVidu's REST JSON shapes, key by key in the order OpenVidu writes them (openvidu.md §1)."""

from __future__ import annotations

__all__ = ["ACTIVE_CONNECTION_KEYS", "PENDING_CONNECTION_KEYS", "SESSION_KEYS"]

SESSION_KEYS = [
    "id",
    "object",
    "sessionId",
    "createdAt",
    "recording",
    "broadcasting",
    "mediaMode",
    "recordingMode",
    "defaultRecordingProperties",
    "customSessionId",
    "forcedVideoCodec",
    "allowTranscoding",
    "connections",
]

_IDENTITY = ["id", "object", "status", "connectionId", "sessionId", "createdAt"]
_OPTIONS = [
    "type",
    "record",
    "role",
    "kurentoOptions",
    "customIceServers",
    "rtspUri",
    "adaptativeBitrate",
    "onlyPlayWithSubscribers",
    "networkCache",
    "serverData",
]
_PARTICIPANT = ["activeAt", "location", "ip", "platform"]
_MEDIA = ["clientData", "publishers", "subscribers"]

#: A Connection before anyone used its token (the token's options first).
PENDING_CONNECTION_KEYS = _IDENTITY + _OPTIONS + ["token"] + _PARTICIPANT + _MEDIA
#: A Connection with a participant in it (``Participant.toJson``: the participant first).
ACTIVE_CONNECTION_KEYS = _IDENTITY + _PARTICIPANT + ["token"] + _OPTIONS + _MEDIA
