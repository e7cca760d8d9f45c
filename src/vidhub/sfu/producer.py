"""Producer: one published track; fans its encoded RTP out to consumers (``specs/sfu.md`` §3.1, §5).

Theory of operation: :func:`~vidhub.sfu.aiortc_glue.hook_receiver` hands every parsed RTP
packet of the publisher's ``RTCRtpReceiver`` to :meth:`Producer.on_rtp` before aiortc's
own handling. RTX is unwrapped here (padding-only RTX is dropped). The producer serialises
the packet at most once per consumer group (same header-extension ids and MID) and lets each
consumer patch its own header fields into a copy. A failing consumer is logged and dropped;
it never reaches aiortc's receive loop.

Keyframe requests are coalesced, never dropped. While a PLI is unanswered (no keyframe
since), requests within :data:`PLI_INTERVAL_S` of it ride on it: they schedule exactly one
PLI at the window's end, which is cancelled if a keyframe arrives before it (that keyframe
is forwarded to everyone who asked). Once the keyframe has arrived, a new request (a
subscriber that connected just after it) is sent at once rather than at the window's end,
within a budget of :data:`PLI_BURST` PLIs per ``PLI_BURST * PLI_INTERVAL_S``, so the
long-run rate stays at most one PLI per window; past the budget it is deferred likewise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket, unwrap_rtx

from vidhub.protocol.sdp import SdpCodec
from vidhub.sfu import aiortc_glue
from vidhub.sfu.rtp import keyframe_detector

__all__ = ["PLI_INTERVAL_S", "PacketSink", "Producer"]

log = logging.getLogger(__name__)

#: Coalescing window: requests this soon after an unanswered PLI ride on it.
PLI_INTERVAL_S = 0.3

#: PLIs allowed per ``PLI_BURST * PLI_INTERVAL_S`` (answered PLIs may come closer together).
PLI_BURST = 3

#: Seconds from the NTP epoch (1900) to the Unix epoch, in nanoseconds.
_NTP_UNIX_OFFSET_NS = 2_208_988_800 * 1_000_000_000


class PacketSink(Protocol):
    """What a producer fans out to: a subscriber's :class:`~vidhub.sfu.consumer.Consumer`,
    or a recorder's :class:`~vidhub.sfu.recorder.TrackTap`."""

    leg_id: str

    def forward(
        self, packet: RtpPacket, keyframe: bool, templates: dict[str, tuple[int, bytes]], ntp: int
    ) -> None:
        """Take one packet (RTX unwrapped); must not keep header changes (see Consumer)."""

    def source_changed(self) -> None:
        """The publisher restarted its stream (new SSRC and numbering)."""

    def producer_closed(self) -> None:
        """The producer went away."""


def _ntp_now() -> int:
    """The wall clock as a 64-bit NTP timestamp (what aiortc's sender reports expect)."""
    sec, nsec = divmod(time.time_ns() + _NTP_UNIX_OFFSET_NS, 1_000_000_000)
    return (sec << 32) | ((nsec << 32) // 1_000_000_000)


class Producer:
    """One track of a publisher leg.

    Args:
        leg_id: the publisher leg (producer id given to the Router).
        kind: ``audio`` or ``video``.
        codec: the codec the leg was answered with (payload type as offered).
        receiver: the leg's ``RTCRtpReceiver`` for this track; hooked here.
    """

    def __init__(self, leg_id: str, kind: str, codec: SdpCodec, receiver: RTCRtpReceiver) -> None:
        self.leg_id = leg_id
        self.kind = kind
        self.codec = codec
        self.receiver = receiver
        self.packets_in = 0
        self.bytes_in = 0
        self.keyframe_requests = 0
        self.plis_sent = 0
        #: Deferred PLIs made unnecessary by a keyframe that arrived first.
        self.plis_saved = 0
        #: Packets recovered from the publisher's RTX answers and forwarded.
        self.rtx_recovered = 0
        #: Video frames received (packets with the RTP marker bit).
        self.frames_in = 0
        self._closed = False
        self._consumers: dict[int, PacketSink] = {}
        self._fanout: tuple[PacketSink, ...] = ()
        self._video = kind == "video"
        self._codec_name = codec.name
        self._is_keyframe = keyframe_detector(codec.name) if self._video else None
        self._pt = codec.payload_type
        self._rtx_apt: dict[int, int] = {}
        self._rtx_ssrc: dict[int, int] = {}
        self._ssrc: int | None = None
        self._loop = asyncio.get_running_loop()
        self._last_pli = -PLI_INTERVAL_S
        #: Send times of the last PLI_BURST PLIs (the burst budget).
        self._pli_times: deque[float] = deque(maxlen=PLI_BURST)
        #: A PLI was sent and no keyframe has arrived since.
        self._pli_unanswered = False
        self._pli_handle: asyncio.TimerHandle | None = None
        self._pli_pending = False
        self._tasks: set[asyncio.Future[Any]] = set()
        #: Called with this producer when it closes (the leg forgets it).
        self.on_close: Callable[[Producer], None] | None = None
        aiortc_glue.hook_receiver(receiver, self.on_rtp, self._on_parameters)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def consumers(self) -> tuple[PacketSink, ...]:
        return self._fanout

    def _on_parameters(self, parameters: Any) -> None:
        for codec in parameters.codecs:
            if codec.mimeType.lower().endswith("/rtx"):
                apt = codec.parameters.get("apt")
                if isinstance(apt, int):
                    self._rtx_apt[codec.payloadType] = apt
            elif codec.mimeType.lower() == f"{self.kind}/{self._codec_name}".lower():
                self._pt = codec.payloadType
        for enc in parameters.encodings:
            if enc.rtx is not None:
                self._rtx_ssrc[enc.rtx.ssrc] = enc.ssrc

    # -- fan-out ---------------------------------------------------------------------

    def add_consumer(self, consumer: PacketSink) -> None:
        """Start forwarding to ``consumer`` (its sender is started) and ask for a keyframe."""
        if self._closed:
            consumer.producer_closed()
            return
        self._consumers[id(consumer)] = consumer
        self._fanout = tuple(self._consumers.values())
        if self._video:
            self.request_keyframe()

    def remove_consumer(self, consumer: PacketSink) -> None:
        """Stop forwarding to ``consumer`` at once; unknown consumers are ignored."""
        if self._consumers.pop(id(consumer), None) is not None:
            self._fanout = tuple(self._consumers.values())

    def on_rtp(self, packet: RtpPacket) -> None:
        """Forward one packet from the publisher (called from aiortc's receive path)."""
        if self._closed:
            return
        pt = packet.payload_type
        if pt != self._pt:
            apt = self._rtx_apt.get(pt)
            if apt is None or apt != self._pt:
                return
            if len(packet.payload) < 2:  # padding-only probe
                return
            ssrc = self._rtx_ssrc.get(packet.ssrc, self._ssrc)
            if ssrc is None:
                return
            packet = unwrap_rtx(packet, payload_type=apt, ssrc=ssrc)
            self.rtx_recovered += 1
        elif packet.ssrc != self._ssrc:
            if self._ssrc is not None:
                # The publisher restarted its stream (new SSRC, new numbering): every
                # consumer restarts its mapping, video on the next keyframe.
                for consumer in self._fanout:
                    consumer.source_changed()
            self._ssrc = packet.ssrc
        self.packets_in += 1
        self.bytes_in += len(packet.payload)
        if packet.marker and self._video:
            self.frames_in += 1
        fanout = self._fanout
        if not fanout and self._pli_handle is None and not self._pli_unanswered:
            return
        detect = self._is_keyframe
        keyframe = detect is not None and detect(packet.payload)
        if keyframe:
            self._pli_unanswered = False
            if self._pli_handle is not None:
                # Every request behind the deferred PLI came before this keyframe, which
                # now reaches all of them: the PLI would only cost bandwidth.
                self._pli_handle.cancel()
                self._pli_handle = None
                self.plis_saved += 1
        if not fanout:
            return
        ntp = _ntp_now()
        templates: dict[str, tuple[int, bytes]] = {}
        mid = packet.extensions.mid
        try:
            for consumer in fanout:
                try:
                    consumer.forward(packet, keyframe, templates, ntp)
                except Exception:
                    log.exception("consumer %s failed; dropping it", consumer.leg_id)
                    self.remove_consumer(consumer)
                    consumer.producer_closed()
        finally:
            packet.extensions.mid = mid

    # -- keyframes -------------------------------------------------------------------

    def request_keyframe(self) -> None:
        """Ask the publisher for a keyframe: now, or once at the end of the PLI window."""
        if self._closed or not self._video:
            return
        self.keyframe_requests += 1
        if self._pli_handle is not None:
            return  # one PLI is already scheduled; this request rides on it
        # An unanswered PLI: ride on its keyframe, with one PLI at the window's end as the
        # fallback. An answered one: this requester needs the next keyframe, now.
        at = self._last_pli + PLI_INTERVAL_S if self._pli_unanswered else 0.0
        if len(self._pli_times) == PLI_BURST:
            at = max(at, self._pli_times[0] + PLI_BURST * PLI_INTERVAL_S)
        wait = at - self._loop.time()
        if wait <= 0:
            self._send_pli()
        else:
            self._pli_handle = self._loop.call_later(wait, self._send_pli)

    def _send_pli(self) -> None:
        self._pli_handle = None
        if self._closed:
            return
        self._last_pli = self._loop.time()
        ssrc = self._ssrc
        if ssrc is None:
            return  # nothing received yet: the stream will start on a keyframe anyway
        self._pli_times.append(self._last_pli)
        self._pli_unanswered = True
        self.plis_sent += 1
        task = asyncio.ensure_future(aiortc_glue.send_pli(self.receiver, ssrc))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("PLI to %s failed: %s", self.leg_id, task.exception())

    # -- lifetime --------------------------------------------------------------------

    async def close(self) -> None:
        """Stop forwarding, close every consumer, cancel pending PLIs; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._pli_handle is not None:
            self._pli_handle.cancel()
            self._pli_handle = None
        consumers, self._consumers, self._fanout = self._fanout, {}, ()
        for consumer in consumers:
            consumer.producer_closed()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.on_close is not None:
            self.on_close(self)
