"""The ftrack event envelope (eventhub.md §4): parse and serialise.

On the wire an event is a JSON object with exactly the keys ``id, data, topic, sent, source,
target, inReplyToEvent`` (the Python client also accepts ``in_reply_to_event``). Any other
top-level key makes the real client drop the event, so :func:`event_from_wire` refuses them
and :func:`event_to_wire` never writes them.

:func:`client_view` gives the mapping the Python client matches subscriptions against: every
``inReplyToEvent`` key, at any depth, renamed to ``in_reply_to_event`` (§4.3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from vidhub.errors import BadRequest

__all__ = [
    "EVENT_NAME",
    "MAX_DEPTH",
    "WIRE_KEYS",
    "Event",
    "EventError",
    "client_view",
    "event_from_wire",
    "event_to_wire",
    "new_event_id",
]

#: The socket.io event name every ftrack event travels under.
EVENT_NAME = "ftrack.event"
#: Deepest nesting accepted in an event (the JSON encoder stops at 255; events are shallow).
MAX_DEPTH = 64
WIRE_KEYS = ("id", "data", "topic", "sent", "source", "target", "inReplyToEvent")
_ACCEPTED = frozenset(WIRE_KEYS) | {"in_reply_to_event"}


class EventError(BadRequest):
    """A payload is not a valid ftrack event envelope; the message says why."""


def new_event_id() -> str:
    """A fresh event id as the client makes them: 32 lowercase hex digits."""
    return uuid.uuid4().hex


@dataclass(slots=True)
class Event:
    """One ftrack event. ``data`` and ``source`` are JSON values as received."""

    topic: Any
    id: str = field(default_factory=new_event_id)
    data: Any = field(default_factory=dict)
    sent: Any = None
    source: Any = field(default_factory=dict)
    target: Any = ""
    in_reply_to_event: Any = None


def event_from_wire(obj: Any) -> Event:
    """Build an :class:`Event` from the decoded JSON of one ``args`` element.

    Missing optional keys take the client's defaults; a falsy ``data`` becomes ``{}``.

    Raises:
        EventError: not an object, nested deeper than :data:`MAX_DEPTH`, no ``topic``, an
            unknown top-level key, or a non-string ``id``/``target``.
    """
    if not isinstance(obj, dict):
        raise EventError("an event must be a JSON object")
    if _too_deep(obj):
        raise EventError(f"an event may nest at most {MAX_DEPTH} levels")
    extra = obj.keys() - _ACCEPTED
    if extra:
        raise EventError(f"unknown event keys: {', '.join(sorted(map(str, extra))[:5])}")
    if "topic" not in obj:
        raise EventError("an event needs a topic")
    eid = obj.get("id")
    if eid is None:
        eid = new_event_id()
    elif not isinstance(eid, str):
        raise EventError("event id must be a string")
    target = obj.get("target")
    if target is None:
        target = ""
    elif not isinstance(target, str):
        raise EventError("event target must be a string")
    reply_to = obj.get("inReplyToEvent", obj.get("in_reply_to_event"))
    source = obj.get("source")
    return Event(
        topic=obj["topic"],
        id=eid,
        data=obj.get("data") or {},
        sent=obj.get("sent"),
        source=source if source is not None else {},
        target=target,
        in_reply_to_event=reply_to,
    )


def _too_deep(obj: Any) -> bool:
    level: list[Any] = [obj]
    for _ in range(MAX_DEPTH):
        nxt: list[Any] = []
        for value in level:
            if isinstance(value, dict):
                nxt.extend(value.values())
            elif isinstance(value, list):
                nxt.extend(value)
        if not nxt:
            return False
        level = nxt
    return any(isinstance(v, dict | list) for v in level)


def event_to_wire(event: Event) -> dict[str, Any]:
    """The wire object, keys in the client's order, ``inReplyToEvent`` camel-cased."""
    return {
        "id": event.id,
        "data": event.data,
        "topic": event.topic,
        "sent": event.sent,
        "source": event.source,
        "target": event.target,
        "inReplyToEvent": event.in_reply_to_event,
    }


def _rename(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            ("in_reply_to_event" if k == "inReplyToEvent" else k): _rename(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_rename(v) for v in value]
    return value


def client_view(event: Event) -> dict[str, Any]:
    """The mapping the Python client evaluates subscriptions on (§4.3, §5.5 ``view(E)``)."""
    return {
        "id": event.id,
        "data": _rename(event.data),
        "topic": event.topic,
        "sent": _rename(event.sent),
        "source": _rename(event.source),
        "target": event.target,
        "in_reply_to_event": _rename(event.in_reply_to_event),
    }
