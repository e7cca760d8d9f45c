"""The control channel between ``vidhub serve`` and its media workers (sans-I/O).

A media worker is a child process that owns whole session routers (see
:mod:`vidhub.media`). The main process drives it over one byte stream (a Unix socket pair);
this module turns that stream into typed messages and back, with no socket or event loop.

Framing: each message is a 4-byte big-endian length, then that many bytes of one UTF-8 JSON
object. Three kinds of message travel:

* :class:`Request` ``{"k": "q", "id": n, "op": "...", "a": {...}}``: main -> worker; ``id``
  is chosen by the sender and unique among its requests in flight;
* :class:`Response` ``{"k": "r", "id": n, "ok": true, "v": ...}`` or
  ``{"k": "r", "id": n, "ok": false, "e": "<error kind>", "m": "<message>"}``: the answer to
  the request with that ``id``; ``e`` names the error class (e.g. ``BadRequest``), so the
  caller can raise the same kind of error it would get from an in-process router;
* :class:`Event` ``{"k": "e", "ev": "...", "a": {...}}``: worker -> main, unsolicited
  (``hello`` once at start, ``load`` with the stats every second, ``endpoint_failed``).

A frame larger than :data:`MAX_FRAME` or a body that is not such an object is a protocol
error: the channel is unusable from then on and the peer must be dropped.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from vidhub.protocol import jsoncodec

__all__ = [
    "MAX_FRAME",
    "ControlProtocolError",
    "Decoder",
    "Event",
    "Message",
    "Request",
    "Response",
    "encode",
]

#: Largest frame accepted (SDP offers are a few KiB; stats of a big worker some 100 KiB).
MAX_FRAME = 16 << 20

_LEN = struct.Struct(">I")


class ControlProtocolError(ValueError):
    """The byte stream does not carry valid control messages."""


@dataclass(frozen=True, slots=True)
class Request:
    """Ask the worker to do ``op`` with arguments ``args``; answered by a Response ``id``."""

    id: int
    op: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    """The outcome of request ``id``: ``value`` when ``ok``, else ``error`` and ``message``."""

    id: int
    ok: bool
    value: Any = None
    error: str = ""
    message: str = ""

    @classmethod
    def success(cls, id_: int, value: Any = None) -> Response:
        return cls(id_, True, value)

    @classmethod
    def failure(cls, id_: int, error: str, message: str) -> Response:
        return cls(id_, False, None, error, message)


@dataclass(frozen=True, slots=True)
class Event:
    """Something the worker reports on its own: ``name`` with arguments ``args``."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)


Message = Request | Response | Event


def _body(msg: Message) -> dict[str, Any]:
    if isinstance(msg, Request):
        return {"k": "q", "id": msg.id, "op": msg.op, "a": msg.args}
    if isinstance(msg, Response):
        if msg.ok:
            return {"k": "r", "id": msg.id, "ok": True, "v": msg.value}
        return {"k": "r", "id": msg.id, "ok": False, "e": msg.error, "m": msg.message}
    return {"k": "e", "ev": msg.name, "a": msg.args}


def encode(msg: Message) -> bytes:
    """The frame carrying ``msg`` (length prefix included).

    Raises:
        ControlProtocolError: the message does not fit in :data:`MAX_FRAME`, or holds a value
            JSON cannot carry.
    """
    try:
        data = jsoncodec.dumps_bytes(_body(msg))
    except TypeError as exc:
        raise ControlProtocolError(f"cannot encode {type(msg).__name__}: {exc}") from exc
    if len(data) > MAX_FRAME:
        raise ControlProtocolError(f"message of {len(data)} bytes exceeds {MAX_FRAME}")
    return _LEN.pack(len(data)) + data


def _int(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ControlProtocolError(f"{key!r} must be an integer")
    return value


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ControlProtocolError(f"{key!r} must be a string")
    return value


def _dict(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise ControlProtocolError(f"{key!r} must be an object")
    return value


def parse(data: bytes) -> Message:
    """One frame body (without its length prefix) as a message.

    Raises:
        ControlProtocolError: not JSON, not an object, or a field of the wrong type.
    """
    try:
        obj = jsoncodec.loads(data)
    except jsoncodec.JSONDecodeError as exc:
        raise ControlProtocolError(f"frame is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise ControlProtocolError("frame is not a JSON object")
    kind = obj.get("k")
    if kind == "q":
        return Request(_int(obj, "id"), _str(obj, "op"), _dict(obj, "a"))
    if kind == "r":
        ok = obj.get("ok")
        if ok is True:
            return Response(_int(obj, "id"), True, obj.get("v"))
        if ok is False:
            return Response(_int(obj, "id"), False, None, _str(obj, "e"), _str(obj, "m"))
        raise ControlProtocolError("'ok' must be a boolean")
    if kind == "e":
        return Event(_str(obj, "ev"), _dict(obj, "a"))
    raise ControlProtocolError(f"unknown message kind {kind!r}")


class Decoder:
    """Cuts a byte stream into messages: :meth:`feed` bytes as they arrive.

    After a :class:`ControlProtocolError` the decoder stays broken (every later call raises):
    a stream that lost its framing cannot be resynchronised.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame
        self._broken: ControlProtocolError | None = None

    def feed(self, data: bytes) -> list[Message]:
        """Add ``data``; return every message completed by it, in order.

        Raises:
            ControlProtocolError: an oversized frame or a malformed body.
        """
        if self._broken is not None:
            raise self._broken
        self._buf += data
        out: list[Message] = []
        try:
            while len(self._buf) >= 4:
                (size,) = _LEN.unpack_from(self._buf)
                if size > self._max:
                    raise ControlProtocolError(f"frame of {size} bytes exceeds {self._max}")
                if len(self._buf) < 4 + size:
                    break
                body = bytes(self._buf[4 : 4 + size])
                del self._buf[: 4 + size]
                out.append(parse(body))
        except ControlProtocolError as exc:
            self._broken = exc
            raise
        return out

    @property
    def buffered(self) -> int:
        """Bytes received but not yet part of a whole frame."""
        return len(self._buf)
