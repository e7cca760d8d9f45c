"""Server lifecycle events as typed values, and the observer that fans them out.

Each OpenVidu lifecycle event (openvidu.md §4) is a frozen dataclass here (:class:`SessionCreated`,
:class:`ParticipantLeft`, ...): typed fields, a ``name`` class attribute, nothing shaped as JSON.
:mod:`vidhub.protocol.openvidu_events` names the events once and renders any of them to
OpenVidu's webhook body (:meth:`LifecycleEvent.to_webhook_json`). The :class:`EventBus`
delivers each event to every listener; a failing listener is logged and never stops the
others or the emitter.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

from vidhub.protocol.openvidu_events import EVENT_NAMES, EventName, render_event

__all__ = [
    "EVENT_NAMES",
    "EventBus",
    "EventListener",
    "FilterEventDispatched",
    "LifecycleEvent",
    "ParticipantJoined",
    "ParticipantLeft",
    "RecordingStatusChanged",
    "ServerEvent",
    "ServerEventPublisher",
    "SessionCreated",
    "SessionDestroyed",
    "SignalSent",
    "WebrtcConnectionCreated",
    "WebrtcConnectionDestroyed",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class LifecycleEvent:
    """What every lifecycle event carries: its session and when it happened (epoch ms)."""

    name: ClassVar[EventName]
    session_id: str
    unique_session_id: str
    timestamp: int

    def to_webhook_json(self) -> dict[str, Any]:
        """OpenVidu's webhook body: the fields in OpenVidu's order, ``"event"`` last."""
        return render_event(self.name, lambda attr: getattr(self, attr))

    @property
    def fields(self) -> dict[str, Any]:
        """The webhook body without ``"event"`` (for listeners that read wire fields)."""
        body = self.to_webhook_json()
        del body["event"]
        return body


#: Any lifecycle event (the name listeners and the webhook sender use).
ServerEvent = LifecycleEvent


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCreated(LifecycleEvent):
    name: ClassVar[EventName] = "sessionCreated"


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDestroyed(LifecycleEvent):
    name: ClassVar[EventName] = "sessionDestroyed"
    start_time: int
    duration: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Participant(LifecycleEvent):
    connection_id: str
    location: str
    ip: str | None
    platform: str | None
    client_data: str
    server_data: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantJoined(_Participant):
    name: ClassVar[EventName] = "participantJoined"


@dataclass(frozen=True, slots=True, kw_only=True)
class ParticipantLeft(_Participant):
    name: ClassVar[EventName] = "participantLeft"
    start_time: int
    duration: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Webrtc(LifecycleEvent):
    """One media leg: OUTBOUND when the connection publishes the stream, INBOUND when it
    receives it from ``receiving_from``."""

    stream_id: str
    connection_id: str
    connection: Literal["INBOUND", "OUTBOUND"]
    receiving_from: str | None = None
    video_source: str | None = None
    video_framerate: int | None = None
    video_dimensions: str | None = None
    audio_enabled: bool
    video_enabled: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class WebrtcConnectionCreated(_Webrtc):
    name: ClassVar[EventName] = "webrtcConnectionCreated"


@dataclass(frozen=True, slots=True, kw_only=True)
class WebrtcConnectionDestroyed(_Webrtc):
    name: ClassVar[EventName] = "webrtcConnectionDestroyed"
    start_time: int
    duration: int
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalSent(LifecycleEvent):
    """A signal delivered; ``sender`` is ``None`` for a signal sent through REST."""

    name: ClassVar[EventName] = "signalSent"
    sender: str | None
    to: tuple[str, ...]
    type: str
    data: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingStatusChanged(LifecycleEvent):
    """A recording changed status (``started``, ``stopped``, ``ready``, ``failed``).

    ``reason`` is set when it stopped; the layout fields are present only for a COMPOSED
    recording with video (``composed_video``), ``custom_layout`` only when set.
    """

    name: ClassVar[EventName] = "recordingStatusChanged"
    start_time: int
    reason: str | None = None
    id: str
    recording_name: str
    output_mode: str
    composed_video: bool = False
    resolution: str | None = None
    frame_rate: int | None = None
    recording_layout: str | None = None
    custom_layout: str | None = None
    has_audio: bool
    has_video: bool
    size: int
    duration: float
    status: str


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterEventDispatched(LifecycleEvent):
    """A media filter event (OpenVidu's filters are not supported here: never emitted)."""

    name: ClassVar[EventName] = "filterEventDispatched"
    connection_id: str
    stream_id: str
    filter_type: str
    event_type: str
    data: str


EventListener = Callable[[ServerEvent], Awaitable[None] | None]


class EventBus:
    """Synchronous fan-out of :class:`ServerEvent` to listeners (observer pattern).

    Listeners must be quick: anything slow (HTTP delivery) queues the event and returns.
    A listener may be a coroutine function; it is awaited in turn.
    """

    def __init__(self) -> None:
        self._listeners: list[EventListener] = []

    def subscribe(self, listener: EventListener) -> Callable[[], None]:
        """Add a listener; returns a function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def emit(self, event: ServerEvent) -> None:
        """Deliver ``event`` to every listener, isolating failures."""
        for listener in list(self._listeners):
            try:
                result = listener(event)
                if result is not None:
                    await result
            except Exception:
                log.exception("event listener %r failed on %s", listener, event.name)


class ServerEventPublisher(Protocol):
    """Something that publishes server-originated events into the event hub."""

    async def publish_server_event(self, topic: str, data: dict[str, Any]) -> None:
        """Publish an event with ``topic`` and ``data`` to matching hub subscribers."""
