"""socket.io 0.9 packets over WebSocket text frames, as the ftrack event hub speaks them.

Theory of operation (eventhub.md §2). A packet is ``code ':' id ':' endpoint [':' data]``; the
id may carry a trailing ``+`` ("ack with data"). Only the forms below appear on this wire:

====================  =========================================================
``0::``               disconnect (the server sends it before closing)
``1::``               connect (the server sends it once after the upgrade)
``2::`` / ``2:::``    heartbeat (server ping / client reply); ``2`` alone too
``5:<n>+::{json}``    event ``{"name": ..., "args": [...]}`` asking for an ack
``5:::{json}``        event with no ack requested
``6:::<n>+[json]``    ack for packet ``<n>``, the payload a JSON array
``7::<ep>:<reason>``  error (only logged by the Python client)
====================  =========================================================

:func:`decode` and :func:`encode` are pure and inverse on the packets they accept.
:class:`SocketIoProtocol` is a sans-I/O connection: feed it frames with
:meth:`~SocketIoProtocol.receive_text`, read typed events, collect text to send with
:meth:`~SocketIoProtocol.data_to_send`. Every malformed input raises :class:`PacketError`,
and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from vidhub.errors import BadRequest
from vidhub.protocol import jsoncodec

__all__ = [
    "HANDSHAKE_TRANSPORTS",
    "Ack",
    "Code",
    "Connected",
    "Disconnected",
    "ErrorReceived",
    "EventReceived",
    "Heartbeat",
    "Packet",
    "PacketError",
    "ProtocolEvent",
    "SocketIoProtocol",
    "decode",
    "decode_ack_data",
    "decode_event_data",
    "encode",
    "encode_ack",
    "encode_event",
    "handshake_body",
    "parse_handshake_body",
]

HANDSHAKE_TRANSPORTS = "websocket"


class PacketError(BadRequest):
    """A frame is not a valid socket.io 0.9 packet of the kinds this wire uses.

    The message says what was wrong; it never echoes more than a short prefix of the frame.
    """


class Code(IntEnum):
    """socket.io 0.9 packet type codes."""

    DISCONNECT = 0
    CONNECT = 1
    HEARTBEAT = 2
    MESSAGE = 3
    JSON = 4
    EVENT = 5
    ACK = 6
    ERROR = 7
    NOOP = 8


@dataclass(frozen=True, slots=True)
class Packet:
    """One packet. ``data`` is ``None`` when the frame had only three fields."""

    code: Code
    id: int | None = None
    ack_with_data: bool = False
    endpoint: str = ""
    data: str | None = None


def _short(text: str) -> str:
    return repr(text[:40]) + ("..." if len(text) > 40 else "")


def decode(text: str) -> Packet:
    """Parse one text frame into a :class:`Packet`.

    Raises:
        PacketError: an empty frame, a 2-field frame, an unknown code, or a bad id.
    """
    if not text:
        raise PacketError("empty frame")
    parts = text.split(":", 3)
    if len(parts) == 2:
        raise PacketError(f"packet has 2 fields: {_short(text)}")
    raw_code = parts[0]
    if len(raw_code) != 1 or not "0" <= raw_code <= "8":
        raise PacketError(f"unknown packet code: {_short(text)}")
    code = Code(int(raw_code))
    if len(parts) == 1:
        return Packet(code)
    raw_id = parts[1]
    ack_with_data = raw_id.endswith("+")
    if ack_with_data:
        raw_id = raw_id[:-1]
    pid: int | None = None
    if raw_id:
        if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 18:
            raise PacketError(f"bad packet id: {_short(text)}")
        pid = int(raw_id)
    elif ack_with_data:
        raise PacketError(f"'+' without a packet id: {_short(text)}")
    data = parts[3] if len(parts) == 4 else None
    return Packet(code, pid, ack_with_data, parts[2], data)


def encode(packet: Packet) -> str:
    """Serialise a :class:`Packet`; the inverse of :func:`decode` on what it accepts."""
    pid = "" if packet.id is None else str(packet.id)
    if packet.ack_with_data:
        pid += "+"
    head = f"{int(packet.code)}:{pid}:{packet.endpoint}"
    return head if packet.data is None else f"{head}:{packet.data}"


def encode_event(name: str, args: list[Any], ack_id: int | None = None) -> str:
    """``5:::{"name":..,"args":[..]}``, or ``5:<n>+::...`` when an ack is requested."""
    body = jsoncodec.dumps({"name": name, "args": args})
    if ack_id is None:
        return "5:::" + body
    return f"5:{ack_id}+::{body}"


def encode_ack(ack_id: int, payload: Any) -> str:
    """``6:::<n>+[payload]``: the only ack shape the Python client survives (§2.3)."""
    return f"6:::{ack_id}+" + jsoncodec.dumps([payload])


def decode_event_data(data: str | None) -> tuple[str, list[Any]]:
    """The ``(name, args)`` of a ``5`` packet's JSON.

    Raises:
        PacketError: missing data, invalid JSON, or not ``{"name": str, "args": list}``.
    """
    if not data:
        raise PacketError("event packet without data")
    try:
        obj = jsoncodec.loads(data)
    except jsoncodec.JSONDecodeError as exc:
        raise PacketError(f"event data is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise PacketError("event data must be a JSON object")
    name = obj.get("name")
    args = obj.get("args", [])
    if not isinstance(name, str) or not isinstance(args, list):
        raise PacketError('event data must be {"name": string, "args": array}')
    return name, args


def decode_ack_data(data: str | None) -> tuple[int, list[Any]]:
    """The ``(ack id, args)`` of a ``6`` packet's data ``<n>`` or ``<n>+[json]``.

    Raises:
        PacketError: no data, a non-integer id, or a payload that is not a JSON array.
    """
    if not data:
        raise PacketError("ack packet without data")
    raw_id, plus, payload = data.partition("+")
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 18:
        raise PacketError(f"bad ack id: {_short(data)}")
    if not plus:
        return int(raw_id), []
    try:
        args = jsoncodec.loads(payload)
    except jsoncodec.JSONDecodeError as exc:
        raise PacketError(f"ack payload is not JSON: {exc}") from None
    if not isinstance(args, list):
        raise PacketError("ack payload must be a JSON array")
    return int(raw_id), args


def handshake_body(sid: str, heartbeat_s: int, close_s: int) -> str:
    """The handshake response ``<sid>:<hb>:<close>:websocket`` with no trailing newline."""
    if ":" in sid:
        raise ValueError("a session id must not contain ':'")
    return f"{sid}:{heartbeat_s}:{close_s}:{HANDSHAKE_TRANSPORTS}"


def parse_handshake_body(body: str) -> tuple[str, int, int, list[str]]:
    """``(sid, heartbeat, close, transports)`` from a handshake body.

    Raises:
        PacketError: fewer than four fields or non-integer timeouts.
    """
    parts = body.split(":")
    if len(parts) < 4:
        raise PacketError("handshake body has fewer than 4 fields")
    try:
        heartbeat = int(parts[1]) if parts[1] else 0
        close = int(parts[2]) if parts[2] else 0
    except ValueError:
        raise PacketError("handshake timeouts are not integers") from None
    return parts[0], heartbeat, close, parts[3].split(",")


# --------------------------------------------------------------------------- sans-I/O


@dataclass(frozen=True, slots=True)
class Connected:
    """The peer sent ``1``."""


@dataclass(frozen=True, slots=True)
class Disconnected:
    """The peer sent ``0``: it is about to close."""


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The peer sent ``2`` (a ping or a pong; the protocol answers pings itself)."""


@dataclass(frozen=True, slots=True)
class EventReceived:
    """A ``5`` packet. ``ack_id`` is set when the peer asked for an ack."""

    name: str
    args: list[Any]
    ack_id: int | None


@dataclass(frozen=True, slots=True)
class Ack:
    """A ``6`` packet answering our packet ``ack_id``."""

    ack_id: int
    args: list[Any]


@dataclass(frozen=True, slots=True)
class ErrorReceived:
    """A ``7`` packet; ``data`` is its raw text."""

    data: str


ProtocolEvent = Connected | Disconnected | Heartbeat | EventReceived | Ack | ErrorReceived


class SocketIoProtocol:
    """One socket.io 0.9 connection, either side, without I/O.

    ``client=True`` answers heartbeats with ``2:::`` (the server pings, the client pongs).
    Packets of codes 3, 4 and 8 are accepted and ignored, as the Python client does.
    """

    def __init__(self, *, client: bool) -> None:
        self.client = client
        self._out: list[str] = []
        self._next_ack = 1

    def receive_text(self, frame: str) -> list[ProtocolEvent]:
        """Parse one frame; return what it meant.

        Raises:
            PacketError: the frame is malformed (the connection can carry on).
        """
        pkt = decode(frame)
        code = pkt.code
        if code is Code.EVENT:
            name, args = decode_event_data(pkt.data)
            return [EventReceived(name, args, pkt.id)]
        if code is Code.HEARTBEAT:
            if self.client:
                self._out.append("2:::")
            return [Heartbeat()]
        if code is Code.ACK:
            ack_id, args = decode_ack_data(pkt.data)
            return [Ack(ack_id, args)]
        if code is Code.CONNECT:
            return [Connected()]
        if code is Code.DISCONNECT:
            return [Disconnected()]
        if code is Code.ERROR:
            return [ErrorReceived(pkt.data or "")]
        return []

    def send_event(self, name: str, args: list[Any], *, want_ack: bool = False) -> int | None:
        """Queue an event; returns the ack id when ``want_ack``."""
        ack_id: int | None = None
        if want_ack:
            ack_id = self._next_ack
            self._next_ack += 1
        self._out.append(encode_event(name, args, ack_id))
        return ack_id

    def send_ack(self, ack_id: int, payload: Any) -> None:
        """Queue ``6:::<n>+[payload]``."""
        self._out.append(encode_ack(ack_id, payload))

    def send_raw(self, frame: str) -> None:
        """Queue an already-encoded frame (fan-out encodes once for many connections)."""
        self._out.append(frame)

    def send_connect(self) -> None:
        """Queue ``1::``."""
        self._out.append("1::")

    def send_heartbeat(self) -> None:
        """Queue ``2::`` (server) or ``2:::`` (client)."""
        self._out.append("2:::" if self.client else "2::")

    def send_disconnect(self) -> None:
        """Queue ``0::``: always before closing the socket ourselves (§3.4)."""
        self._out.append("0::")

    def data_to_send(self) -> list[str]:
        """Frames queued so far, oldest first; the queue is emptied."""
        out, self._out = self._out, []
        return out
