"""Batches of hub events between nodes (the hub bridge's broker payload). Pure, no I/O.

One payload carries the events one node published, in publish order::

    <origin node id> "\\n" [<event>, <event>, ...]

where each ``<event>`` is the ftrack wire object of :func:`~vidhub.protocol.ftrack_event.\
event_to_wire` as compact JSON. The origin comes first and unencoded so a receiver can skip
its own batches without decoding them (:func:`origin_of`).
"""

from __future__ import annotations

from collections.abc import Sequence

from vidhub.errors import BadRequest
from vidhub.protocol.ftrack_event import Event, EventError, event_from_wire, event_to_wire
from vidhub.protocol.jsoncodec import JSONDecodeError, dumps_bytes, loads

__all__ = ["HubBatchError", "decode_batch", "encode_batch", "encode_one", "origin_of"]


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
