"""OpenVidu 2.x browser protocol: typed method params, results and notifications.

Implements the shapes of openvidu.md §3.4 (client → server methods), §3.6-3.7
(notifications) and §3.8 (error codes). Pure data: each ``parse`` turns a JSON-RPC
``params`` object into a frozen dataclass (raising :class:`RpcError` with OpenVidu's code and
message), each ``to_params`` / builder renders the exact wire fields. Shared by the server
and the ``Participant`` SDK.

Wire details the browser depends on (kept here, and tested):

* ``videoDimensions`` in stream objects is a JSON *string*;
* remote participant objects (``value[]``, ``participantJoined``) carry no ``role``;
* ``streamPropertyChanged.newValue`` is the JSON serialisation of what the publisher sent;
* ``sendMessage.message`` is JSON text ``{"to":[...],"data":..,"type":..}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vidhub.errors import VidhubError
from vidhub.ids import ConnectionId, connection_of_stream
from vidhub.protocol import jsoncodec

__all__ = [
    "SERVER_VERSION",
    "Code",
    "ConnectParams",
    "ForceDisconnectParams",
    "ForceUnpublishParams",
    "IceCandidateParams",
    "JoinRoomParams",
    "JoinRoomResult",
    "PublishVideoParams",
    "ReceiveVideoFromParams",
    "ReconnectStreamParams",
    "RemoteParticipant",
    "RpcError",
    "SendMessageParams",
    "SignalMessage",
    "StreamInfo",
    "StreamPropertyChangedParams",
    "UnsubscribeParams",
    "VideoDataParams",
    "connection_of_stream",
    "ice_candidate",
    "join_metadata",
    "media_error",
    "participant_evicted",
    "participant_joined",
    "participant_left",
    "participant_published",
    "participant_unpublished",
    "send_message",
    "stream_property_changed",
]

#: What joinRoom reports as ``version``; 2.32 browsers accept minor 32 silently.
SERVER_VERSION = "2.32.1"


class Code:
    """OpenViduException codes the browser can see (openvidu.md §3.8)."""

    GENERIC_RUNTIME = -1
    USER_GENERIC = 10
    USER_NOT_FOUND = 102
    USER_NOT_STREAMING = 105
    USER_ALREADY_STREAMING = 106
    ROOM_NOT_FOUND = 202
    ROOM_CLOSED = 203
    MEDIA_SDP = 302
    USER_UNAUTHORIZED = 401
    FILTER_NOT_APPLIED = 406
    SIGNAL_FORMAT_INVALID = 600
    SIGNAL_TO_INVALID = 601
    TRANSPORT = 803
    WRONG_EDITION = 997
    GENERIC = 999
    RECONNECTION_ERROR = 40007


class RpcError(VidhubError):
    """An error answered to an RPC caller with an explicit OpenVidu code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.rpc_code = code


def _missing(key: str, method: str) -> RpcError:
    return RpcError(
        Code.GENERIC_RUNTIME,
        f"java.lang.RuntimeException:Request element '{key}' is missing in RPC method "
        f"'{method}'. Check that 'openvidu-server' and 'openvidu-browser' versions are "
        "compatible with each other",
    )


def _bad_type(key: str, method: str, want: str) -> RpcError:
    return RpcError(
        Code.GENERIC_RUNTIME,
        f"java.lang.RuntimeException:Request element '{key}' in RPC method '{method}' "
        f"must be a {want}",
    )


def _str(p: dict[str, Any], key: str, method: str, *, required: bool = True) -> str | None:
    v = p.get(key)
    if v is None:
        if required:
            raise _missing(key, method)
        return None
    if not isinstance(v, str):
        raise _bad_type(key, method, "string")
    return v


def _req_str(p: dict[str, Any], key: str, method: str) -> str:
    v = _str(p, key, method)
    assert v is not None
    return v


def _bool(p: dict[str, Any], key: str, method: str, *, required: bool = True) -> bool | None:
    v = p.get(key)
    if v is None:
        if required:
            raise _missing(key, method)
        return None
    if not isinstance(v, bool):
        raise _bad_type(key, method, "boolean")
    return v


def _int(p: dict[str, Any], key: str, method: str, *, required: bool = True) -> int | None:
    v = p.get(key)
    if v is None:
        if required:
            raise _missing(key, method)
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad_type(key, method, "number")
    if isinstance(v, float) and not math.isfinite(v):
        raise _bad_type(key, method, "finite number")
    return int(v)


def join_metadata(client_data: str, server_data: str) -> str:
    """``clientData%/%serverData`` when both are set, else whichever is set, else ``""``."""
    if client_data and server_data:
        return f"{client_data}%/%{server_data}"
    return client_data or server_data


# -- client -> server params ---------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class JoinRoomParams:
    """``joinRoom``: the full token string and the session it names."""

    token: str
    session: str
    platform: str = "unknown"
    metadata: str = ""
    secret: str = ""
    recorder: bool = False
    stt: bool = False
    sdk_version: str | None = None

    @classmethod
    def parse(cls, p: dict[str, Any]) -> JoinRoomParams:
        m = "joinRoom"
        return cls(
            token=_req_str(p, "token", m),
            session=_req_str(p, "session", m),
            platform=_str(p, "platform", m, required=False) or "unknown",
            metadata=_str(p, "metadata", m, required=False) or "",
            secret=_str(p, "secret", m, required=False) or "",
            recorder=bool(_bool(p, "recorder", m, required=False)),
            stt=bool(_bool(p, "stt", m, required=False)),
            sdk_version=_str(p, "sdkVersion", m, required=False),
        )

    def to_params(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "token": self.token,
            "session": self.session,
            "platform": self.platform,
            "metadata": self.metadata,
            "secret": self.secret,
            "recorder": self.recorder,
            "stt": self.stt,
        }
        if self.sdk_version is not None:
            d["sdkVersion"] = self.sdk_version
        return d


@dataclass(frozen=True, slots=True)
class PublishVideoParams:
    """``publishVideo``: a sendonly offer plus the announced media options."""

    sdp_offer: str
    has_audio: bool
    has_video: bool
    do_loopback: bool = False
    audio_active: bool | None = None
    video_active: bool | None = None
    type_of_video: str | None = None
    frame_rate: int | None = None
    video_dimensions: str | None = None
    filter: dict[str, Any] | None = None

    @classmethod
    def parse(cls, p: dict[str, Any], method: str = "publishVideo") -> PublishVideoParams:
        m = method
        flt = p.get("filter")
        return cls(
            sdp_offer=_req_str(p, "sdpOffer", m),
            has_audio=bool(_bool(p, "hasAudio", m)),
            has_video=bool(_bool(p, "hasVideo", m)),
            do_loopback=bool(_bool(p, "doLoopback", m, required=False)),
            audio_active=_bool(p, "audioActive", m, required=False),
            video_active=_bool(p, "videoActive", m, required=False),
            type_of_video=_str(p, "typeOfVideo", m, required=False),
            frame_rate=_int(p, "frameRate", m, required=False),
            video_dimensions=_str(p, "videoDimensions", m, required=False),
            filter=flt if isinstance(flt, dict) and flt else None,
        )

    def to_params(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "sdpOffer": self.sdp_offer,
            "hasAudio": self.has_audio,
            "hasVideo": self.has_video,
            "doLoopback": self.do_loopback,
            "audioActive": self.has_audio if self.audio_active is None else self.audio_active,
            "videoActive": self.has_video if self.video_active is None else self.video_active,
        }
        if self.has_video:
            d["typeOfVideo"] = self.type_of_video or "CAMERA"
            d["frameRate"] = -1 if self.frame_rate is None else self.frame_rate
            if self.video_dimensions is not None:
                d["videoDimensions"] = self.video_dimensions
        return d


@dataclass(frozen=True, slots=True)
class ReceiveVideoFromParams:
    """``receiveVideoFrom``: ``sender`` is the publisher's stream id."""

    sender: str
    sdp_offer: str | None = None
    sdp_answer: str | None = None

    @classmethod
    def parse(cls, p: dict[str, Any]) -> ReceiveVideoFromParams:
        m = "receiveVideoFrom"
        offer = _str(p, "sdpOffer", m, required=False)
        answer = _str(p, "sdpAnswer", m, required=False)
        if offer is None and answer is None:
            raise _missing("sdpOffer", m)
        return cls(_req_str(p, "sender", m), offer, answer)

    @property
    def publisher_connection_id(self) -> ConnectionId | None:
        return connection_of_stream(self.sender)

    def to_params(self) -> dict[str, Any]:
        d: dict[str, Any] = {"sender": self.sender}
        if self.sdp_offer is not None:
            d["sdpOffer"] = self.sdp_offer
        if self.sdp_answer is not None:
            d["sdpAnswer"] = self.sdp_answer
        return d


@dataclass(frozen=True, slots=True)
class UnsubscribeParams:
    """``unsubscribeFromVideo``: ``sender`` is the publisher's *connection* id (or stream id)."""

    sender: str

    @classmethod
    def parse(cls, p: dict[str, Any]) -> UnsubscribeParams:
        return cls(_req_str(p, "sender", "unsubscribeFromVideo"))

    @property
    def publisher_connection_id(self) -> ConnectionId:
        return connection_of_stream(self.sender) or ConnectionId(self.sender)

    def to_params(self) -> dict[str, Any]:
        return {"sender": self.sender}


@dataclass(frozen=True, slots=True)
class IceCandidateParams:
    """``onIceCandidate``; ``endpoint_name`` is a connection id (own or the publisher's)."""

    endpoint_name: str
    candidate: str
    sdp_mid: str | None
    sdp_mline_index: int | None

    @classmethod
    def parse(cls, p: dict[str, Any]) -> IceCandidateParams:
        m = "onIceCandidate"
        return cls(
            endpoint_name=_req_str(p, "endpointName", m),
            candidate=_str(p, "candidate", m, required=False) or "",
            sdp_mid=_str(p, "sdpMid", m, required=False),
            sdp_mline_index=_int(p, "sdpMLineIndex", m, required=False),
        )


@dataclass(frozen=True, slots=True)
class StreamPropertyChangedParams:
    """``streamPropertyChanged``: ``new_value`` as the publisher sent it (any JSON)."""

    stream_id: str
    property: str
    new_value: Any
    reason: str

    @classmethod
    def parse(cls, p: dict[str, Any]) -> StreamPropertyChangedParams:
        m = "streamPropertyChanged"
        if "newValue" not in p:
            raise _missing("newValue", m)
        return cls(
            stream_id=_str(p, "streamId", m, required=False) or "",
            property=_req_str(p, "property", m),
            new_value=p["newValue"],
            reason=_str(p, "reason", m, required=False) or "",
        )

    def to_params(self) -> dict[str, Any]:
        return {
            "streamId": self.stream_id,
            "property": self.property,
            "newValue": self.new_value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class SignalMessage:
    """The JSON inside ``sendMessage.message``; ``to`` empty means everyone."""

    to: tuple[str, ...]
    data: str
    type: str


@dataclass(frozen=True, slots=True)
class SendMessageParams:
    """``sendMessage``: ``message`` is JSON text (openvidu.md §3.4 sendMessage)."""

    message: str

    @classmethod
    def parse(cls, p: dict[str, Any]) -> SendMessageParams:
        return cls(_req_str(p, "message", "sendMessage"))

    @classmethod
    def build(cls, to: list[str], data: str, type_: str) -> SendMessageParams:
        """A message as openvidu-browser builds it (``type`` gets the ``signal:`` prefix)."""
        t = type_ if type_.startswith("signal:") else f"signal:{type_ or 'signal'}"
        return cls(jsoncodec.dumps({"to": to, "data": data, "type": t}))

    def signal(self) -> SignalMessage:
        """Decode ``message``.

        Raises:
            RpcError: 600 when it is not a JSON object; 601 when ``to`` is malformed.
        """
        try:
            obj = jsoncodec.loads(self.message)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise RpcError(Code.SIGNAL_FORMAT_INVALID, "Signal message must be a JSON object")
        to = obj.get("to") or []
        if not isinstance(to, list) or not all(isinstance(t, str) for t in to):
            raise RpcError(Code.SIGNAL_TO_INVALID, "Signal 'to' must be an array of connectionIds")
        data = obj.get("data")
        type_ = obj.get("type")
        return SignalMessage(
            tuple(to),
            data if isinstance(data, str) else ("" if data is None else jsoncodec.dumps(data)),
            type_ if isinstance(type_, str) else "signal",
        )

    def to_params(self) -> dict[str, Any]:
        return {"message": self.message}


@dataclass(frozen=True, slots=True)
class ForceDisconnectParams:
    """``forceDisconnect`` (MODERATOR only)."""

    connection_id: str

    @classmethod
    def parse(cls, p: dict[str, Any]) -> ForceDisconnectParams:
        return cls(_req_str(p, "connectionId", "forceDisconnect"))


@dataclass(frozen=True, slots=True)
class ForceUnpublishParams:
    """``forceUnpublish`` (MODERATOR only)."""

    stream_id: str

    @classmethod
    def parse(cls, p: dict[str, Any]) -> ForceUnpublishParams:
        return cls(_req_str(p, "streamId", "forceUnpublish"))


@dataclass(frozen=True, slots=True)
class ConnectParams:
    """Kurento ``connect``: resume an RPC session on a new socket."""

    session_id: str | None
    reconnect: bool = False

    @classmethod
    def parse(cls, p: dict[str, Any]) -> ConnectParams:
        sid = p.get("sessionId")
        return cls(sid if isinstance(sid, str) else None, bool(p.get("reconnect")))


@dataclass(frozen=True, slots=True)
class VideoDataParams:
    """``videoData``: what the browser measured about a stream."""

    width: int
    height: int
    video_active: bool
    audio_active: bool

    @classmethod
    def parse(cls, p: dict[str, Any]) -> VideoDataParams:
        m = "videoData"
        return cls(
            width=_int(p, "width", m) or 0,
            height=_int(p, "height", m) or 0,
            video_active=bool(_bool(p, "videoActive", m)),
            audio_active=bool(_bool(p, "audioActive", m)),
        )


@dataclass(frozen=True, slots=True)
class ReconnectStreamParams:
    """``reconnectStream``: a new offer for an existing publisher or subscriber stream."""

    stream: str
    sdp_offer: str

    @classmethod
    def parse(cls, p: dict[str, Any]) -> ReconnectStreamParams:
        m = "reconnectStream"
        offer = _str(p, "sdpOffer", m, required=False) or _str(p, "sdpString", m, required=False)
        if offer is None:
            raise _missing("sdpOffer", m)
        return cls(_req_str(p, "stream", m), offer)


# -- objects in results and notifications ---------------------------------------------------
@dataclass(frozen=True, slots=True)
class StreamInfo:
    """A published stream as participants see it."""

    id: str
    created_at: int
    has_audio: bool = True
    has_video: bool = True
    audio_active: bool = True
    video_active: bool = True
    type_of_video: str | None = "CAMERA"
    frame_rate: int | None = None
    video_dimensions: str = ""
    filter: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "createdAt": self.created_at,
            "hasAudio": self.has_audio,
            "hasVideo": self.has_video,
            "audioActive": self.audio_active,
            "videoActive": self.video_active,
            "typeOfVideo": self.type_of_video if self.has_video else None,
            "frameRate": self.frame_rate,
            "videoDimensions": self.video_dimensions,
            "filter": self.filter,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StreamInfo:
        """Lenient reading for the SDK (unknown or missing fields get defaults)."""
        flt = d.get("filter")
        fr = d.get("frameRate")
        return cls(
            id=str(d.get("id", "")),
            created_at=int(d.get("createdAt") or 0),
            has_audio=bool(d.get("hasAudio", True)),
            has_video=bool(d.get("hasVideo", True)),
            audio_active=bool(d.get("audioActive", True)),
            video_active=bool(d.get("videoActive", True)),
            type_of_video=d.get("typeOfVideo"),
            frame_rate=int(fr) if isinstance(fr, int | float) else None,
            video_dimensions=str(d.get("videoDimensions") or ""),
            filter=flt if isinstance(flt, dict) else {},
        )


@dataclass(frozen=True, slots=True)
class RemoteParticipant:
    """Another participant: never carries a ``role`` on the wire."""

    id: str
    created_at: int
    metadata: str
    streams: tuple[StreamInfo, ...] = ()

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "createdAt": self.created_at, "metadata": self.metadata}
        if self.streams:
            d["streams"] = [s.to_json() for s in self.streams]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RemoteParticipant:
        streams = d.get("streams") or []
        return cls(
            id=str(d.get("id", "")),
            created_at=int(d.get("createdAt") or 0),
            metadata=str(d.get("metadata") or ""),
            streams=tuple(StreamInfo.from_json(s) for s in streams if isinstance(s, dict)),
        )


@dataclass(frozen=True, slots=True)
class JoinRoomResult:
    """The joinRoom result (openvidu.md §3.4 joinRoom); ``sessionId`` is added by framing."""

    id: str
    created_at: int
    metadata: str
    value: tuple[RemoteParticipant, ...]
    session: str
    role: str
    custom_ice_servers: tuple[dict[str, Any], ...] = ()
    final_user_id: str = ""
    coturn_ip: str = "127.0.0.1"
    coturn_port: int = 3478
    record: bool = True
    version: str = SERVER_VERSION
    media_server: str = "kurento"
    #: The session's recording in progress, when this role is told about recordings.
    recording_id: str | None = None
    recording_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        d = self._to_json()
        if self.recording_id is not None:
            d["recordingId"] = self.recording_id
            d["recordingName"] = self.recording_name or self.recording_id
        return d

    def _to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "finalUserId": self.final_user_id or self.id,
            "createdAt": self.created_at,
            "metadata": self.metadata,
            "value": [p.to_json() for p in self.value],
            "session": self.session,
            "version": self.version,
            "mediaServer": self.media_server,
            "videoSimulcast": False,
            "record": self.record,
            "role": self.role,
            "coturnIp": self.coturn_ip,
            "coturnPort": self.coturn_port,
            "customIceServers": list(self.custom_ice_servers),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> JoinRoomResult:
        value = d.get("value") or []
        ice = d.get("customIceServers") or []
        return cls(
            id=str(d.get("id", "")),
            created_at=int(d.get("createdAt") or 0),
            metadata=str(d.get("metadata") or ""),
            value=tuple(RemoteParticipant.from_json(v) for v in value if isinstance(v, dict)),
            session=str(d.get("session", "")),
            role=str(d.get("role", "")),
            custom_ice_servers=tuple(i for i in ice if isinstance(i, dict)),
            final_user_id=str(d.get("finalUserId") or ""),
            record=bool(d.get("record", True)),
            version=str(d.get("version", "")),
            media_server=str(d.get("mediaServer", "")),
            recording_id=str(d["recordingId"]) if d.get("recordingId") is not None else None,
            recording_name=(
                str(d["recordingName"]) if d.get("recordingName") is not None else None
            ),
        )


# -- notification params (server -> client) ------------------------------------------------
def participant_joined(p: RemoteParticipant) -> dict[str, Any]:
    """``participantJoined``: ``{id, createdAt, metadata}`` (no role, no streams)."""
    return {"id": p.id, "createdAt": p.created_at, "metadata": p.metadata}


def participant_left(connection_id: str, reason: str) -> dict[str, Any]:
    """``participantLeft``."""
    return {"connectionId": connection_id, "reason": reason}


def participant_evicted(connection_id: str, reason: str) -> dict[str, Any]:
    """``participantEvicted``: sent to everyone, the evicted one included."""
    return {"connectionId": connection_id, "reason": reason}


def participant_published(connection_id: str, streams: list[StreamInfo]) -> dict[str, Any]:
    """``participantPublished``: ``{id, streams}`` (no metadata, no role)."""
    return {"id": connection_id, "streams": [s.to_json() for s in streams]}


def participant_unpublished(connection_id: str, reason: str) -> dict[str, Any]:
    """``participantUnpublished``."""
    return {"connectionId": connection_id, "reason": reason}


def send_message(data: str, type_: str, sender: str | None) -> dict[str, Any]:
    """``sendMessage``; ``from`` is absent for server (REST) signals."""
    d: dict[str, Any] = {"data": data, "type": type_}
    if sender is not None:
        d["from"] = sender
    return d


def stream_property_changed(
    connection_id: str, stream_id: str, prop: str, new_value: Any, reason: str
) -> dict[str, Any]:
    """``streamPropertyChanged``; ``newValue`` is JSON text of the value sent, except the
    ``filter`` property, which stays an object."""
    nv = new_value if prop == "filter" else jsoncodec.dumps(new_value)
    return {
        "connectionId": connection_id,
        "streamId": stream_id,
        "property": prop,
        "newValue": nv,
        "reason": reason,
    }


def ice_candidate(
    sender_connection_id: str,
    endpoint_name: str,
    candidate: str,
    sdp_mid: str,
    sdp_mline_index: int,
) -> dict[str, Any]:
    """``iceCandidate`` (unused while answers carry every candidate; kept for completeness)."""
    return {
        "senderConnectionId": sender_connection_id,
        "endpointName": endpoint_name,
        "sdpMLineIndex": sdp_mline_index,
        "sdpMid": sdp_mid,
        "candidate": candidate,
    }


def media_error(description: str) -> dict[str, Any]:
    """``mediaError``."""
    return {"error": description}
