"""The commands nodes send each other to act on live participants (the cluster relay).

A node publishes one JSON object per message on the target node's broker channel. Pure
encode/decode, no I/O::

    {"op": "signal",    "session": s, "to": [cid, ...], "sender": cid|null, "type": t, "data": d}
    {"op": "evict",     "id": rid, "replyTo": node, "session": s, "connection": cid, "reason": r}
    {"op": "unpublish", "id": rid, "replyTo": node, "session": s, "stream": sid, "reason": r}
    {"op": "reply",     "id": rid, "ok": true|false}

``signal`` is fire-and-forget; ``evict`` and ``unpublish`` are requests, answered by a
``reply`` with the same ``id`` on the ``replyTo`` node's channel (``ok``: the participant or
stream was found and acted on). Keys other than these are ignored, so a newer node can add
some; a message without a known ``op`` or with a missing or mistyped key is refused with
:class:`ClusterMessageError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidhub.errors import BadRequest
from vidhub.protocol.jsoncodec import JSONDecodeError, dumps_bytes, loads

__all__ = [
    "ClusterMessage",
    "ClusterMessageError",
    "EvictCommand",
    "NodeInfo",
    "Reply",
    "SignalCommand",
    "UnpublishCommand",
    "decode",
    "decode_node_info",
    "encode",
    "encode_node_info",
]


class ClusterMessageError(BadRequest):
    """A relay message that is not valid JSON or not one of the known commands."""


@dataclass(frozen=True, slots=True)
class SignalCommand:
    """Deliver a signal to these connections (all served by the receiving node)."""

    session: str
    to: tuple[str, ...]
    sender: str | None
    type: str
    data: str


@dataclass(frozen=True, slots=True)
class EvictCommand:
    """Evict one participant; answer ``Reply(id, ok)`` on ``reply_to``'s channel."""

    id: str
    reply_to: str
    session: str
    connection: str
    reason: str


@dataclass(frozen=True, slots=True)
class UnpublishCommand:
    """Force-unpublish one stream; answer ``Reply(id, found)`` on ``reply_to``'s channel."""

    id: str
    reply_to: str
    session: str
    stream: str
    reason: str


@dataclass(frozen=True, slots=True)
class Reply:
    """The answer to the request ``id``."""

    id: str
    ok: bool


ClusterMessage = SignalCommand | EvictCommand | UnpublishCommand | Reply


def encode(msg: ClusterMessage) -> bytes:
    """The message as compact JSON bytes."""
    if isinstance(msg, SignalCommand):
        return dumps_bytes(
            {
                "op": "signal",
                "session": msg.session,
                "to": list(msg.to),
                "sender": msg.sender,
                "type": msg.type,
                "data": msg.data,
            }
        )
    if isinstance(msg, EvictCommand):
        return dumps_bytes(
            {
                "op": "evict",
                "id": msg.id,
                "replyTo": msg.reply_to,
                "session": msg.session,
                "connection": msg.connection,
                "reason": msg.reason,
            }
        )
    if isinstance(msg, UnpublishCommand):
        return dumps_bytes(
            {
                "op": "unpublish",
                "id": msg.id,
                "replyTo": msg.reply_to,
                "session": msg.session,
                "stream": msg.stream,
                "reason": msg.reason,
            }
        )
    return dumps_bytes({"op": "reply", "id": msg.id, "ok": msg.ok})


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ClusterMessageError(f"cluster message needs a string {key!r}")
    return value


def decode(payload: bytes) -> ClusterMessage:
    """Parse one relay message.

    Raises:
        ClusterMessageError: not JSON, not an object, an unknown ``op``, or a missing or
            mistyped key.
    """
    try:
        obj = loads(payload)
    except (JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClusterMessageError("cluster message is not JSON") from exc
    if not isinstance(obj, dict):
        raise ClusterMessageError("cluster message is not an object")
    op = obj.get("op")
    if op == "signal":
        to = obj.get("to")
        sender = obj.get("sender")
        if not isinstance(to, list) or not all(isinstance(c, str) for c in to):
            raise ClusterMessageError("signal needs 'to': a list of connection ids")
        if sender is not None and not isinstance(sender, str):
            raise ClusterMessageError("signal 'sender' must be a string or null")
        return SignalCommand(
            _str(obj, "session"), tuple(to), sender, _str(obj, "type"), _str(obj, "data")
        )
    if op == "evict":
        return EvictCommand(
            _str(obj, "id"),
            _str(obj, "replyTo"),
            _str(obj, "session"),
            _str(obj, "connection"),
            _str(obj, "reason"),
        )
    if op == "unpublish":
        return UnpublishCommand(
            _str(obj, "id"),
            _str(obj, "replyTo"),
            _str(obj, "session"),
            _str(obj, "stream"),
            _str(obj, "reason"),
        )
    if op == "reply":
        ok = obj.get("ok")
        if not isinstance(ok, bool):
            raise ClusterMessageError("reply needs a boolean 'ok'")
        return Reply(_str(obj, "id"), ok)
    raise ClusterMessageError(f"unknown cluster message op {str(op)[:32]!r}")


# -- node heartbeats ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a node heartbeats: where clients reach it and how loaded it is.

    ``url`` is the node's public base URL (``http[s]://host:port``), empty when unknown;
    ``publishers`` and ``packets`` (RTP packets forwarded per second) measure its load.
    """

    url: str = ""
    publishers: int = 0
    packets: int = 0

    @property
    def load(self) -> tuple[int, int]:
        """The order in which placement prefers nodes: lightest first."""
        return (self.publishers, self.packets)


def encode_node_info(info: NodeInfo) -> bytes:
    """``{"url": ..., "publishers": n, "packets": n}``."""
    return dumps_bytes({"url": info.url, "publishers": info.publishers, "packets": info.packets})


def decode_node_info(payload: bytes) -> NodeInfo:
    """Parse a heartbeat; unknown keys are ignored, a missing or mistyped field is refused.

    Raises:
        ClusterMessageError: not a JSON object of the fields above.
    """
    try:
        obj = loads(payload)
    except (JSONDecodeError, UnicodeDecodeError) as exc:
        raise ClusterMessageError("node info is not JSON") from exc
    if not isinstance(obj, dict):
        raise ClusterMessageError("node info is not an object")
    pubs, packets = obj.get("publishers", 0), obj.get("packets", 0)
    if not isinstance(pubs, int) or not isinstance(packets, int):
        raise ClusterMessageError("node info needs integer 'publishers' and 'packets'")
    return NodeInfo(_str(obj, "url"), pubs, packets)
