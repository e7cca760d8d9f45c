"""The one module that touches aiortc / aioice internals (``specs/sfu.md`` §1, §10).

Validated against aiortc 1.16 / aioice 0.13; ``tests/sfu/test_aiortc_contract.py`` fails
loudly when an upgrade renames or re-signs any hook used here. Everything else in
``vidhub.sfu`` uses aiortc's public API plus the small surface below:

* :func:`install_host_addresses` restricts the addresses aioice gathers host candidates on
  (process-wide: aioice looks the function up at gather time).
* :func:`hook_receiver` taps a publisher-side ``RTCRtpReceiver``: each parsed RTP packet goes
  to a callback *before* aiortc's own handling (which keeps RR/NACK/REMB behaviour), the
  negotiated receive parameters are reported, and decoding is disabled for that receiver
  only (its decoder thread idles on a queue that discards frames).
* :func:`hook_sender` turns a subscriber-side ``RTCRtpSender`` into a raw port: start,
  PLI/FIR and NACK are routed to callbacks, and :class:`SenderPort` protects and writes
  already-serialised packets straight to the nominated ICE pair and keeps the sender-report
  counters right.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aioice.ice
import pylibsrtp
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import State
from aiortc.rtp import RtpPacket

__all__ = [
    "VALIDATED_AIORTC",
    "SenderPort",
    "hook_receiver",
    "hook_sender",
    "host_addresses",
    "install_host_addresses",
    "receiver_packets_lost",
    "send_pli",
    "sender_rtt_ms",
]

log = logging.getLogger(__name__)

#: The aiortc minor version these hooks were validated against.
VALIDATED_AIORTC = "1.16"

_CONNECTED = State.CONNECTED

#: The configured media addresses; None means aioice's own interface discovery.
_host_addresses: tuple[str, ...] | None = None


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    out: list[str] = []
    for addr in _host_addresses or ():
        if ":" in addr:
            if use_ipv6:
                out.append(addr)
        elif use_ipv4:
            out.append(addr)
    return out


def install_host_addresses(addresses: Sequence[str]) -> None:
    """Make aioice gather host candidates on ``addresses`` only (process-wide).

    Must run before PeerConnections gather. Until it runs, aioice's own discovery applies
    (every interface but loopback).
    """
    global _host_addresses
    _host_addresses = tuple(addresses)
    aioice.ice.get_host_addresses = _get_host_addresses


def host_addresses() -> tuple[str, ...]:
    """The addresses host candidates are gathered on now (configured or discovered)."""
    if _host_addresses is not None:
        return _host_addresses
    return tuple(aioice.ice.get_host_addresses(True, True))


class _DiscardQueue(queue.Queue[Any]):
    """A decoder input queue that drops encoded frames but lets the stop sentinel through."""

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(item, block, timeout)


def _isolated(what: str, fn: Callable[..., None], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.exception("sfu hook %s failed", what)


def hook_receiver(
    receiver: RTCRtpReceiver,
    on_rtp: Callable[[RtpPacket], None],
    on_parameters: Callable[[Any], None],
) -> None:
    """Tap a receiver's RTP before aiortc handles it, and stop it from decoding.

    Call after ``setRemoteDescription`` created the transceiver and before the transport
    connects. ``on_rtp`` gets every parsed packet (RTX still wrapped); it must not keep the
    packet's header fields mutated. ``on_parameters`` gets the ``RTCRtpReceiveParameters``
    once, when aiortc starts the receiver. Exceptions from either callback are logged and
    swallowed: one escaping into aiortc's receive loop would stop all media of the leg.
    """
    r: Any = receiver  # private attributes: validated by the contract test
    r._RTCRtpReceiver__decoder_queue = _DiscardQueue()
    original_handle = r._handle_rtp_packet
    original_receive = r.receive

    def handle(packet: RtpPacket, arrival_time_ms: int) -> Awaitable[None]:
        # A plain function returning aiortc's own coroutine: the DTLS loop awaits it, and no
        # extra coroutine frame is built per packet.
        try:
            on_rtp(packet)
        except Exception:
            log.exception("sfu fan-out failed")
        coro: Awaitable[None] = original_handle(packet, arrival_time_ms=arrival_time_ms)
        return coro

    async def receive(parameters: Any) -> None:
        _isolated("receive", on_parameters, parameters)
        await original_receive(parameters)

    r._handle_rtp_packet = handle
    r.receive = receive


def receiver_packets_lost(receiver: RTCRtpReceiver) -> int:
    """Packets lost on the way from the publisher, as aiortc counts them for its reports."""
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    return sum(max(0, int(s.packets_lost)) for s in streams.values())


def sender_rtt_ms(sender: RTCRtpSender) -> float | None:
    """Smoothed round-trip time to the subscriber (from its receiver reports), or None."""
    rtt = sender._RTCRtpSender__rtt  # type: ignore[attr-defined]
    return None if rtt is None else float(rtt) * 1000


def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> Awaitable[None]:
    """Send an RTCP PLI for ``media_ssrc`` upstream through the receiver's transport."""
    coro: Awaitable[None] = receiver._send_rtcp_pli(media_ssrc)
    return coro


class SenderPort:
    """Raw write access to one started ``RTCRtpSender`` (subscriber leg).

    :meth:`write` protects a serialised RTP packet with the leg's SRTP session and sends it
    synchronously on the nominated candidate pair; :meth:`account` keeps the sender's
    packet/octet counters and RTP/NTP timestamps current for aiortc's sender reports.
    The nominated pair's socket and address are looked up again only when aioice
    nominates another pair (or clears them on close).
    """

    __slots__ = ("_addr", "_dtls", "_nominated", "_pair", "_sender", "_udp", "ssrc")

    def __init__(self, sender: RTCRtpSender) -> None:
        self._sender: Any = sender  # private attributes: validated by the contract test
        self._dtls: Any = sender.transport
        self.ssrc: int = sender._ssrc
        self._nominated: dict[int, Any] = self._dtls.transport._connection._nominated
        self._pair: Any = None
        self._udp: Any = None  # None: relayed (TURN) pair, sent through its coroutine
        self._addr: tuple[str, int] = ("", 0)

    def _use_pair(self, pair: Any) -> None:
        proto = pair.protocol
        self._udp = proto.transport if isinstance(proto, aioice.ice.StunProtocol) else None
        self._addr = pair.remote_addr
        self._pair = pair

    def write(self, data: bytes) -> bool:
        """Protect and send ``data``; False (nothing sent) when the leg is not connected or
        SRTP refuses the packet (e.g. a sequence number too old for its replay window)."""
        dtls = self._dtls
        if dtls._state is not _CONNECTED:
            return False
        pair = self._nominated.get(1)
        if pair is None:
            return False
        if pair is not self._pair:
            self._use_pair(pair)
        try:
            protected = dtls._tx_srtp.protect(data)
        except pylibsrtp.Error as exc:
            log.debug("SRTP refused a packet: %s", exc)
            return False
        udp = self._udp
        if udp is not None:
            if udp.is_closing():
                return False
            udp.sendto(protected, self._addr)
        else:  # relayed (TURN) pair: its send path is a coroutine
            task = asyncio.ensure_future(pair.protocol.send_data(protected, self._addr))
            task.add_done_callback(_ignore_result)
        return True

    def account(self, payload_bytes: int, rtp_timestamp: int, ntp_time: int) -> None:
        """Count one sent packet for the sender reports."""
        s = self._sender
        s._RTCRtpSender__packet_count += 1
        s._RTCRtpSender__octet_count += payload_bytes
        s._RTCRtpSender__rtp_timestamp = rtp_timestamp
        s._RTCRtpSender__ntp_timestamp = ntp_time


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("relayed send failed: %s", task.exception())


def hook_sender(
    sender: RTCRtpSender,
    on_started: Callable[[Any], None],
    on_keyframe_request: Callable[[], None],
    on_nack: Callable[[int], None],
) -> None:
    """Route a subscriber-side sender's lifecycle and feedback to callbacks.

    ``on_started`` gets the ``RTCRtpSendParameters`` once aiortc started the sender (its
    transport is connected); ``on_keyframe_request`` runs on each PLI/FIR from the
    subscriber (aiortc would only flag its own encoder); ``on_nack`` runs per NACKed
    sequence number. Callback exceptions are logged and swallowed.
    """
    s: Any = sender  # private attributes: validated by the contract test
    original_send = s.send

    async def send(parameters: Any) -> None:
        await original_send(parameters)
        _isolated("sender start", on_started, parameters)

    async def retransmit(sequence_number: int) -> None:
        _isolated("retransmit", on_nack, sequence_number)

    def send_keyframe() -> None:
        _isolated("keyframe request", on_keyframe_request)

    s.send = send
    s._retransmit = retransmit
    s._send_keyframe = send_keyframe
