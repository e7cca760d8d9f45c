"""Types shared by the EventHub clients: Event, Subscriber, named tuples and exceptions.

These follow the public surface of ``ftrack_api`` (``event.base.Event``,
``event.subscriber.Subscriber``, ``event.hub.SocketIoSession``/``ServerDetails`` and the
``EventHub*`` exceptions), so code written for ftrack_api ports by changing imports.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, NamedTuple

from vidhub.protocol.expression import Expression, ExpressionError, compile_expression
from vidhub.protocol.ftrack_event import Event as Envelope
from vidhub.protocol.ftrack_event import EventError, client_view, event_from_wire, event_to_wire

__all__ = [
    "Event",
    "EventHubConnectionError",
    "EventHubError",
    "EventHubPacketError",
    "NotFoundError",
    "NotUniqueError",
    "ParseError",
    "ServerDetails",
    "SocketIoSession",
    "Subscriber",
    "decode_wire_event",
    "encode_wire_event",
]

#: Raised when a subscription or target expression does not parse.
ParseError = ExpressionError


class EventHubError(Exception):
    """Base of the event hub client's errors."""


class EventHubConnectionError(EventHubError):
    """Connecting failed, or the hub is not connected (nor initialised) when it must be."""


class EventHubPacketError(EventHubError):
    """A packet from the server could not be understood (logged, never fatal)."""


class NotUniqueError(EventHubError):
    """A subscriber with that identifier already exists on this hub."""


class NotFoundError(EventHubError):
    """No subscriber with that identifier exists on this hub."""


class SocketIoSession(NamedTuple):
    """The handshake answer: session id, heartbeat timeout and transports."""

    id: str
    heartbeatTimeout: int  # ftrack_api's field name
    supportedTransports: list[str]  # ftrack_api's field name


class ServerDetails(NamedTuple):
    """Where the event server is: scheme, hostname and port."""

    scheme: str
    hostname: str
    port: int | None


class Event(MutableMapping[str, Any]):
    """An event: a mapping with the keys ``topic, id, data, sent, source, target,
    in_reply_to_event``; ``stop()`` ends local dispatch of this object (never sent)."""

    def __init__(
        self,
        topic: Any,
        id: str | None = None,  # ftrack_api's parameter name
        data: Any = None,
        sent: Any = None,
        source: Any = None,
        target: Any = "",
        in_reply_to_event: Any = None,
        stopped: bool = False,
    ) -> None:
        self._data: dict[str, Any] = {
            "id": id or uuid.uuid4().hex,
            "data": data or {},
            "topic": topic,
            "sent": sent,
            "source": source or {},
            "target": target,
            "in_reply_to_event": in_reply_to_event,
        }
        self._stopped = stopped

    def stop(self) -> None:
        """Stop further callbacks of this hub from handling this event object."""
        self._stopped = True

    def is_stopped(self) -> bool:
        return self._stopped

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        del self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __str__(self) -> str:
        return f"<{type(self).__name__} {self._data}>"

    __repr__ = __str__


def decode_wire_event(obj: Any) -> Event:
    """An :class:`Event` from one ``args`` element, as the Python client sees it
    (:func:`vidhub.protocol.ftrack_event.client_view`: ``inReplyToEvent`` renamed at any depth).

    Raises:
        EventHubPacketError: not a valid event envelope (see
            :func:`~vidhub.protocol.ftrack_event.event_from_wire`).
    """
    try:
        envelope = event_from_wire(obj)
    except EventError as exc:
        raise EventHubPacketError(str(exc)) from exc
    return Event(**client_view(envelope))


def encode_wire_event(event: Event) -> dict[str, Any]:
    """The wire object: the envelope's keys, ``inReplyToEvent`` camel-cased at the top level."""
    return event_to_wire(
        Envelope(
            topic=event.get("topic"),
            id=event.get("id") or "",
            data=event.get("data"),
            sent=event.get("sent"),
            source=event.get("source"),
            target=event.get("target"),
            in_reply_to_event=event.get("in_reply_to_event"),
        )
    )


class Subscriber:
    """One local subscriber: metadata, parsed subscription, callback and priority."""

    def __init__(
        self,
        subscription: str,
        callback: Callable[[Event], Any] | None,
        metadata: dict[str, Any],
        priority: int,
    ) -> None:
        self.subscription: Expression = compile_expression(subscription)
        self.callback = callback
        self.metadata = metadata
        self.priority = priority

    def interested_in(self, event: Event) -> bool:
        """Whether the subscription matches ``event`` (may raise, like ftrack_api)."""
        return self.subscription.evaluate(event)

    def __str__(self) -> str:
        return f"<Subscriber metadata={self.metadata} subscription={self.subscription.text!r}>"
