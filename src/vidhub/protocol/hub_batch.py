"""Batches of hub events between nodes (the hub bridge's broker payload). Pure, no I/O.

One payload carries the events one node published, in publish order::

    <origin node id> "\\n" [<event>, <event>, ...]

where each ``<event>`` is the ftrack wire object of :func:`~vidhub.protocol.ftrack_event.\
event_to_wire` as compact JSON. The origin comes first and unencoded so a receiver can skip
its own batches without decoding them (:func:`origin_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vidhub.errors import BadRequest
from vidhub.protocol.ftrack_event import Event, EventError, event_from_wire, event_to_wire
from vidhub.protocol.jsoncodec import JSONDecodeError, dumps_bytes, loads

__all__ = [
    "HubBatchError",
    "TakeReply",
    "TakeRequest",
    "decode_batch",
    "decode_take",
    "encode_batch",
    "encode_one",
    "encode_take",
    "origin_of",
]


class HubBatchError(BadRequest):
    """A payload that is not a batch of ftrack events."""


def encode_one(event: Event) -> bytes:
    """One event's wire JSON (encoded once, then joined into every batch that carries it)."""
    return dumps_bytes(event_to_wire(event))


def encode_batch(origin: str, encoded: Sequence[bytes]) -> bytes:
    """The payload for events already passed through :func:`encode_one`.

    Raises:
        ValueError: ``origin`` contains a newline.
    """
    if "\n" in origin:
        raise ValueError("a node id may not contain a newline")
    return origin.encode() + b"\n[" + b",".join(encoded) + b"]"


def origin_of(payload: bytes) -> bytes:
    """The origin node id (bytes) of a batch, without decoding its events."""
    return payload.partition(b"\n")[0]


def decode_batch(payload: bytes) -> tuple[str, list[Event]]:
    """``(origin, events)`` of one batch.

    Raises:
        HubBatchError: no origin line, not a JSON array, or an element that is not a valid
            ftrack event.
    """
    origin, sep, body = payload.partition(b"\n")
    if not sep:
        raise HubBatchError("hub batch has no origin line")
    try:
        items = loads(body)
        name = origin.decode()
    except (JSONDecodeError, UnicodeDecodeError) as exc:
        raise HubBatchError("hub batch is not JSON") from exc
    if not isinstance(items, list):
        raise HubBatchError("hub batch is not a list")
    try:
        return name, [event_from_wire(item) for item in items]
    except EventError as exc:
        raise HubBatchError(f"bad event in hub batch: {exc.message}") from exc


# -- handing a resumable session over to another node -------------------------------------------
@dataclass(frozen=True, slots=True)
class TakeRequest:
    """``{"op": "take", "id", "sid", "user", "replyTo"}``: whoever holds the resumable hub
    session ``sid`` of ``user`` hands it over, answering on ``replyTo``'s channel."""

    id: str
    sid: str
    user: str
    reply_to: str


@dataclass(frozen=True, slots=True)
class TakeReply:
    """``{"op": "handover", "id", "found", "subscribers": [[id, meta, text]], "log":
    [[event id, frame]]}``: the answer of one node (``found`` false: not here)."""

    id: str
    found: bool
    subscribers: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)
    log: list[tuple[str, str]] = field(default_factory=list)


def encode_take(msg: TakeRequest | TakeReply) -> bytes:
    """The message as compact JSON."""
    if isinstance(msg, TakeRequest):
        return dumps_bytes(
            {"op": "take", "id": msg.id, "sid": msg.sid, "user": msg.user, "replyTo": msg.reply_to}
        )
    return dumps_bytes(
        {
            "op": "handover",
            "id": msg.id,
            "found": msg.found,
            "subscribers": [list(s) for s in msg.subscribers],
            "log": [list(e) for e in msg.log],
        }
    )


def decode_take(payload: bytes) -> TakeRequest | TakeReply:
    """Parse a handover message.

    Raises:
        HubBatchError: not one of the two messages, or a mistyped field.
    """
    try:
        obj = loads(payload)
    except (JSONDecodeError, UnicodeDecodeError) as exc:
        raise HubBatchError("handover message is not JSON") from exc
    if not isinstance(obj, dict):
        raise HubBatchError("handover message is not an object")
    op = obj.get("op")
    strs = {k: obj.get(k) for k in ("id", "sid", "user", "replyTo")}
    if op == "take":
        if not all(isinstance(v, str) for v in strs.values()):
            raise HubBatchError("take needs string id, sid, user and replyTo")
        return TakeRequest(
            str(strs["id"]), str(strs["sid"]), str(strs["user"]), str(strs["replyTo"])
        )
    if op != "handover" or not isinstance(strs["id"], str):
        raise HubBatchError(f"unknown handover op {str(op)[:32]!r}")
    found, subs, log = obj.get("found"), obj.get("subscribers", []), obj.get("log", [])
    if not isinstance(found, bool) or not isinstance(subs, list) or not isinstance(log, list):
        raise HubBatchError("handover needs a boolean 'found' and lists")
    subscribers: list[tuple[str, dict[str, Any], str]] = []
    for item in subs:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and isinstance(item[1], dict)
            and isinstance(item[2], str)
        ):
            raise HubBatchError("handover subscriber must be [id, metadata, subscription]")
        subscribers.append((item[0], item[1], item[2]))
    entries: list[tuple[str, str]] = []
    for item in log:
        if not (
            isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) for x in item)
        ):
            raise HubBatchError("handover log entry must be [event id, frame]")
        entries.append((item[0], item[1]))
    return TakeReply(strs["id"], found, subscribers, entries)
