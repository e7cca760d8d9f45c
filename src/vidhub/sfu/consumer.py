"""Consumer: one subscribed track; rewrites and sends a producer's RTP.

Implements ``specs/sfu.md`` §3.2-3.3 and the subscriber column of §6.

Theory of operation: the subscriber's ``RTCRtpSender`` gets a :class:`ParkedTrack`, so
aiortc negotiates and starts it (SSRC, SR/SDES, RTCP routing) but never produces media
itself. Once aiortc starts the sender (transport connected), the consumer registers with its
producer and asks for a keyframe. Each forwarded packet is patched (payload type, sequence,
timestamp, SSRC; MID via the group template), kept in a 128-entry history for NACKs, and
written synchronously through :class:`~vidhub.sfu.aiortc_glue.SenderPort`. Video is gated
until the first packet of a keyframe; audio is never gated. Subscriber PLI/FIR go to the
producer's coalesced keyframe request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from vidhub.sfu import aiortc_glue
from vidhub.sfu.producer import Producer
from vidhub.sfu.rtp import HeaderRewriter, pack_header

__all__ = ["HISTORY_SIZE", "Consumer", "ParkedTrack"]

log = logging.getLogger(__name__)

#: Packets kept per consumer for NACK answers (aiortc's own history size).
HISTORY_SIZE = 128


class ParkedTrack(MediaStreamTrack):
    """A track whose ``recv()`` never returns: it keeps aiortc's own RTP loop idle."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        await asyncio.get_running_loop().create_future()  # resolved never; cancelled on stop
        raise MediaStreamError  # pragma: no cover


class Consumer:
    """One track of a subscriber leg, fed by ``producer``.

    Args:
        leg_id: the subscriber leg (consumer id given to the Router).
        producer: the producer this consumer forwards.
        sender: the subscriber transceiver's sender; hooked here.
        port_factory: builds the raw write port once the sender is started (tests inject a
            recorder here).
    """

    def __init__(
        self,
        leg_id: str,
        producer: Producer,
        sender: RTCRtpSender,
        *,
        port_factory: Callable[[RTCRtpSender], aiortc_glue.SenderPort] = aiortc_glue.SenderPort,
    ) -> None:
        self.leg_id = leg_id
        self.producer = producer
        self.kind = producer.kind
        self.sender = sender
        self.packets_out = 0
        self.bytes_out = 0
        self.packets_dropped = 0
        self.retransmissions = 0
        self.keyframes_forwarded = 0
        self._closed = False
        self._started = False
        self._gated = producer.kind == "video"
        self._rewriter = HeaderRewriter()
        # Sent packets by sequence number modulo HISTORY_SIZE; the slot's own sequence
        # number is read back from the packet bytes on a NACK.
        self._history: list[bytes | None] = [None] * HISTORY_SIZE
        self._port: aiortc_glue.SenderPort | None = None
        self._ssrc = 0
        self._pt = 0
        self._mid: str | None = None
        self._ext_map = HeaderExtensionsMap()
        #: Template key: consumers with the same MID and extension map share serialised bytes.
        self._group = ""
        self._port_factory = port_factory
        #: Called once with this consumer when its first keyframe (video) or packet goes out.
        self.on_first_packet: Callable[[Consumer], None] | None = None
        #: Called with this consumer when its producer closes (the leg forgets it).
        self.on_producer_closed: Callable[[Consumer], None] | None = None
        sender.replaceTrack(ParkedTrack(producer.kind))
        aiortc_glue.hook_sender(sender, self._on_started, self._on_keyframe_request, self._on_nack)

    @property
    def started(self) -> bool:
        """True once the sender is started and the consumer is registered with its producer."""
        return self._started

    def _on_started(self, parameters: Any) -> None:
        if self._closed or self._started:
            return
        self._pt = parameters.codecs[0].payloadType
        self._mid = parameters.muxId
        self._ext_map.configure(parameters)
        # A str key: its hash is cached, so the per-packet template lookup stays cheap.
        self._group = repr(
            (self._mid, tuple(sorted((e.id, e.uri) for e in parameters.headerExtensions)))
        )
        self._port = self._port_factory(self.sender)
        self._ssrc = self._port.ssrc
        self._started = True
        self.producer.add_consumer(self)

    def _on_keyframe_request(self) -> None:
        if not self._closed:
            self.producer.request_keyframe()

    def _on_nack(self, seq: int) -> None:
        data = self._history[seq % HISTORY_SIZE]
        if data is None or ((data[2] << 8) | data[3]) != seq or self._port is None:
            return
        if self._port.write(data):
            self.retransmissions += 1

    def forward(
        self,
        packet: RtpPacket,
        keyframe: bool,
        templates: dict[str, tuple[int, bytes]],
        ntp: int,
    ) -> None:
        """Send one producer packet (already RTX-unwrapped) to this subscriber.

        Args:
            packet: the publisher's packet; only ``extensions.mid`` may be changed here (the
                producer restores it).
            keyframe: the packet starts a keyframe.
            templates: per-packet cache by consumer group: the serialised packet's first
                byte and everything after its 12 fixed header bytes.
            ntp: current NTP time, for sender reports.
        """
        rewriter = self._rewriter
        if self._gated:
            if not keyframe:
                self.packets_dropped += 1
                return
            self._gated = False
            rewriter.resync(packet.sequence_number)
            self.keyframes_forwarded += 1
            if self.on_first_packet is not None:
                self.on_first_packet(self)
                self.on_first_packet = None
        elif not rewriter.started:
            rewriter.resync(packet.sequence_number)
        mapped = rewriter.map(packet.sequence_number, packet.timestamp)
        if mapped is None:
            self.packets_dropped += 1
            return
        seq, ts = mapped
        template = templates.get(self._group)
        if template is None:
            packet.extensions.mid = self._mid
            raw = packet.serialize(self._ext_map)
            template = templates[self._group] = (raw[0], raw[12:])
        # One allocation: the consumer's own fixed header + the group's shared remainder.
        data = (
            pack_header(template[0], (packet.marker << 7) | self._pt, seq, ts, self._ssrc)
            + template[1]
        )
        self._history[seq % HISTORY_SIZE] = data
        port = self._port
        assert port is not None
        if port.write(data):
            self.packets_out += 1
            self.bytes_out += len(data)
            port.account(len(packet.payload), ts, ntp)
        else:
            self.packets_dropped += 1

    def source_changed(self) -> None:
        """The producer's stream restarted: map its numbering afresh (video: on a keyframe).

        The outgoing sequence stays gap-free and the timestamp offset is kept (sfu.md §3.3).
        """
        if self._closed:
            return
        if self.kind == "video":
            self.resync()
        else:
            self._rewriter = self._rewriter.restarted()

    def resync(self) -> None:
        """Re-gate video on the next keyframe (e.g. after a stall) and request one."""
        if self.kind == "video" and not self._closed:
            self._gated = True
            self.producer.request_keyframe()

    def producer_closed(self) -> None:
        """The producer went away: stop forwarding; the leg decides what to do with the PC."""
        if self._closed:
            return
        self.close()
        if self.on_producer_closed is not None:
            self.on_producer_closed(self)

    def close(self) -> None:
        """Unregister from the producer synchronously; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.producer.remove_consumer(self)
        self._history = [None] * HISTORY_SIZE
