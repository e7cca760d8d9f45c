"""OpenVidu lifecycle events on the wire (openvidu.md §4): names, hub topics and JSON bodies.

This is the one place that knows how an event looks as JSON. The typed event values live in
:mod:`vidhub.core.events`; each names its :data:`EventName` and exposes its fields as
attributes, and :func:`render_event` turns any of them into OpenVidu's webhook body through
the field table :data:`WIRE_FIELDS` (attribute, JSON key, presence rule), in OpenVidu's order,
with ``"event"`` last. The webhook sender, the event hub's lifecycle topics and the recording
service all render through here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, get_args

__all__ = [
    "EVENT_NAMES",
    "HUB_TOPICS",
    "OTHER_OPENVIDU_EVENTS",
    "RECORDING_LAYOUT",
    "WIRE_FIELDS",
    "EventName",
    "WireField",
    "hub_topic",
    "render_event",
    "render_fields",
]

#: The lifecycle events this server emits, each named once.
EventName = Literal[
    "sessionCreated",
    "sessionDestroyed",
    "participantJoined",
    "participantLeft",
    "webrtcConnectionCreated",
    "webrtcConnectionDestroyed",
    "recordingStatusChanged",
    "filterEventDispatched",
    "signalSent",
]
EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)

#: OpenVidu Pro/Enterprise events: accepted in ``OPENVIDU_WEBHOOK_EVENTS``, never emitted here.
OTHER_OPENVIDU_EVENTS = (
    "mediaNodeStatusChanged",
    "autoscaling",
    "nodeCrashed",
    "nodeRecovered",
    "broadcastStarted",
    "broadcastStopped",
)

#: The event hub topic of each event (README "Events and webhooks").
HUB_TOPICS: Mapping[str, str] = MappingProxyType(
    {
        "sessionCreated": "vidhub.session.created",
        "sessionDestroyed": "vidhub.session.destroyed",
        "participantJoined": "vidhub.participant.joined",
        "participantLeft": "vidhub.participant.left",
        "webrtcConnectionCreated": "vidhub.webrtc.created",
        "webrtcConnectionDestroyed": "vidhub.webrtc.destroyed",
        "signalSent": "vidhub.signal.sent",
        "recordingStatusChanged": "vidhub.recording.status_changed",
        "filterEventDispatched": "vidhub.filter.dispatched",
    }
)


def hub_topic(name: str) -> str:
    """The hub topic of an event name; a name outside :data:`HUB_TOPICS` is
    ``vidhub.event.<name>``."""
    return HUB_TOPICS.get(name) or f"vidhub.event.{name}"


class WireField(NamedTuple):
    """One JSON field of an event: where its value comes from and when it is present.

    ``when`` is ``None`` (always present), ``"set"`` (present unless the value is ``None``)
    or the name of another attribute whose truth decides (``has_video`` for the video fields).
    """

    attr: str
    key: str
    when: str | None = None


_COMMON = (
    WireField("session_id", "sessionId"),
    WireField("unique_session_id", "uniqueSessionId"),
    WireField("timestamp", "timestamp"),
)
_END = (
    WireField("start_time", "startTime"),
    WireField("duration", "duration"),
    WireField("reason", "reason", "set"),
)
_PARTICIPANT = (
    WireField("connection_id", "participantId"),
    WireField("connection_id", "connectionId"),
    WireField("location", "location"),
    WireField("ip", "ip"),
    WireField("platform", "platform"),
    WireField("client_data", "clientData"),
    WireField("server_data", "serverData"),
)
_WEBRTC = (
    WireField("stream_id", "streamId"),
    WireField("connection_id", "participantId"),
    WireField("connection_id", "connectionId"),
    WireField("connection", "connection"),
    WireField("receiving_from", "receivingFrom", "set"),
    WireField("video_source", "videoSource", "video_enabled"),
    WireField("video_framerate", "videoFramerate", "video_enabled"),
    WireField("video_dimensions", "videoDimensions", "video_enabled"),
    WireField("audio_enabled", "audioEnabled"),
    WireField("video_enabled", "videoEnabled"),
)
#: A recording's layout fields, present only for a COMPOSED recording with video; shared by
#: the recordingStatusChanged event and the REST Recording JSON.
RECORDING_LAYOUT = (
    WireField("resolution", "resolution", "composed_video"),
    WireField("frame_rate", "frameRate", "composed_video"),
    WireField("recording_layout", "recordingLayout", "composed_video"),
    WireField("custom_layout", "customLayout", "set"),
)
_RECORDING = (
    WireField("start_time", "startTime"),
    WireField("reason", "reason", "set"),
    WireField("id", "id"),
    WireField("recording_name", "name"),
    WireField("output_mode", "outputMode"),
    *RECORDING_LAYOUT,
    WireField("has_audio", "hasAudio"),
    WireField("has_video", "hasVideo"),
    WireField("size", "size"),
    WireField("duration", "duration"),
    WireField("status", "status"),
)
_SIGNAL = (
    WireField("sender", "from"),
    WireField("to", "to"),
    WireField("type", "type"),
    WireField("data", "data"),
)
_FILTER = (
    WireField("connection_id", "connectionId"),
    WireField("stream_id", "streamId"),
    WireField("filter_type", "filterType"),
    WireField("event_type", "eventType"),
    WireField("data", "data"),
)

#: Each event's JSON fields in OpenVidu's order (``"event"`` is appended by the renderer).
WIRE_FIELDS: Mapping[EventName, tuple[WireField, ...]] = MappingProxyType(
    {
        "sessionCreated": _COMMON,
        "sessionDestroyed": (*_COMMON, *_END),
        "participantJoined": (*_COMMON, *_PARTICIPANT),
        "participantLeft": (*_COMMON, *_PARTICIPANT, *_END),
        "webrtcConnectionCreated": (*_COMMON, *_WEBRTC),
        "webrtcConnectionDestroyed": (*_COMMON, *_WEBRTC, *_END),
        "signalSent": (*_COMMON, *_SIGNAL),
        "recordingStatusChanged": (*_COMMON, *_RECORDING),
        "filterEventDispatched": (*_COMMON, *_FILTER),
    }
)


def render_fields(fields: tuple[WireField, ...], value: Callable[[str], Any]) -> dict[str, Any]:
    """The JSON object of ``fields``, in order, each present by its rule.

    Args:
        fields: a field table (an event's, or a shared part such as :data:`RECORDING_LAYOUT`).
        value: the value of an attribute, by name. Tuples are rendered as JSON arrays.
    """
    body: dict[str, Any] = {}
    for f in fields:
        v = value(f.attr)
        if f.when == "set":
            if v is None:
                continue
        elif f.when is not None and not value(f.when):
            continue
        body[f.key] = list(v) if isinstance(v, tuple) else v
    return body


def render_event(name: EventName, value: Callable[[str], Any]) -> dict[str, Any]:
    """OpenVidu's webhook body for event ``name``: its fields in order, then ``"event"``.

    Args:
        name: the event's name.
        value: the value of one of the event's attributes, by name (``getattr`` on the typed
            event).
    """
    body = render_fields(WIRE_FIELDS[name], value)
    body["event"] = name
    return body
