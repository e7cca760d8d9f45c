"""Server lifecycle events in OpenVidu's format, and the observer that fans them out.

A :class:`ServerEvent` is exactly what an OpenVidu webhook would carry (openvidu.md §4): the
event name plus its fields in OpenVidu's order, without the trailing ``"event"`` key. The
:class:`EventBus` delivers each event to every listener; a failing listener is logged and never
stops the others or the emitter.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["EVENT_NAMES", "EventBus", "EventListener", "ServerEvent", "ServerEventPublisher"]

log = logging.getLogger(__name__)

EVENT_NAMES = (
    "sessionCreated",
    "sessionDestroyed",
    "participantJoined",
    "participantLeft",
    "webrtcConnectionCreated",
    "webrtcConnectionDestroyed",
    "recordingStatusChanged",
    "filterEventDispatched",
    "signalSent",
)


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One lifecycle event. ``fields`` is OpenVidu's JSON body without ``event``."""

    name: str
    fields: dict[str, Any]

    @property
    def session_id(self) -> str | None:
        sid = self.fields.get("sessionId")
        return sid if isinstance(sid, str) else None

    def to_webhook_json(self) -> dict[str, Any]:
        """The webhook body: the fields with ``"event"`` appended last."""
        body = dict(self.fields)
        body["event"] = self.name
        return body


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
