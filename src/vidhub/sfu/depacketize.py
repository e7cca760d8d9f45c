"""RTP depacketising for recording: payload formats and an in-order frame assembler.

Pure code, no I/O and no aiortc (``specs/sfu.md`` §3 for the packet plane). A
:class:`FrameAssembler` takes one track's RTP packets in arrival order (after RTX
unwrapping), puts them back in sequence order, waits a bounded time for missing packets
(the publisher leg NACKs them; retransmissions arrive through the same path), and hands out
whole encoded frames with an extended (wrap-free) RTP timestamp. A gap that is not filled in
time is skipped; for video the assembler then drops frames until the next keyframe and says
so, so the caller can ask the publisher for one.

Payload formats: VP8 (RFC 7741), H.264 packetisation mode 0/1 (RFC 6184; output is Annex B
with start codes) and Opus (RFC 7587: one packet is one frame).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Depacketizer",
    "EncodedFrame",
    "FrameAssembler",
    "H264Depacketizer",
    "OpusDepacketizer",
    "Vp8Depacketizer",
    "depacketizer_for",
    "vp8_dimensions",
]

_START_CODE = b"\x00\x00\x00\x01"


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One encoded frame: ``timestamp`` is the extended RTP timestamp (no 32-bit wrap);
    ``arrival`` is when its last packet arrived (the caller's clock, seconds)."""

    data: bytes
    timestamp: int
    keyframe: bool
    arrival: float


class Depacketizer:
    """One codec's RTP payload format: strip descriptors, join fragments."""

    #: Whether frames span several packets (ended by the marker bit).
    multi_packet = True

    def frame_start(self, payload: bytes) -> bool:
        """True when ``payload`` is the first packet of a frame."""
        return True

    def assemble(self, payloads: list[bytes]) -> tuple[bytes, bool] | None:
        """Join one frame's payloads in order; returns (frame, keyframe) or None if unusable."""
        raise NotImplementedError


class OpusDepacketizer(Depacketizer):
    """RFC 7587: the payload is one Opus packet."""

    multi_packet = False

    def assemble(self, payloads: list[bytes]) -> tuple[bytes, bool] | None:
        data = b"".join(payloads)
        return (data, True) if data else None


def _vp8_descriptor_size(payload: bytes) -> int:
    """Bytes of the VP8 payload descriptor at the start of ``payload``; -1 if truncated."""
    n = len(payload)
    if n < 1:
        return -1
    off = 1
    if payload[0] & 0x80:  # X
        if n < 2:
            return -1
        x = payload[1]
        off = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if off >= n:
                return -1
            off += 2 if payload[off] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            off += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            off += 1
    return off if off <= n else -1


class Vp8Depacketizer(Depacketizer):
    """RFC 7741: a frame starts at S=1, partition 0, and its packets are concatenated."""

    def frame_start(self, payload: bytes) -> bool:
        return len(payload) > 0 and bool(payload[0] & 0x10) and (payload[0] & 0x07) == 0

    def assemble(self, payloads: list[bytes]) -> tuple[bytes, bool] | None:
        if not payloads or not self.frame_start(payloads[0]):
            return None
        parts = []
        for p in payloads:
            off = _vp8_descriptor_size(p)
            if off < 0:
                return None
            parts.append(p[off:])
        data = b"".join(parts)
        if not data:
            return None
        return data, (data[0] & 0x01) == 0


def vp8_dimensions(frame: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP8 keyframe's header (RFC 6386 §9.1), or None."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    width = (frame[6] | (frame[7] << 8)) & 0x3FFF
    height = (frame[8] | (frame[9] << 8)) & 0x3FFF
    return (width, height) if width and height else None


class H264Depacketizer(Depacketizer):
    """RFC 6184 single NAL units, STAP-A and FU-A, rewritten as Annex B."""

    def frame_start(self, payload: bytes) -> bool:
        if not payload:
            return False
        if (payload[0] & 0x1F) == 28:  # FU-A: only its start fragment begins a NAL
            return len(payload) > 1 and bool(payload[1] & 0x80)
        return True

    def assemble(self, payloads: list[bytes]) -> tuple[bytes, bool] | None:
        out = bytearray()
        key = False
        fu: bytearray | None = None
        for p in payloads:
            if not p:
                continue
            nal = p[0] & 0x1F
            if nal == 28:  # FU-A
                if len(p) < 2:
                    return None
                header = p[1]
                if header & 0x80:
                    fu = bytearray([(p[0] & 0xE0) | (header & 0x1F)])
                elif fu is None:
                    return None  # a fragment without its start: the NAL is unusable
                fu += p[2:]
                if header & 0x40:
                    key = key or (fu[0] & 0x1F) == 5
                    out += _START_CODE + fu
                    fu = None
            elif nal == 24:  # STAP-A
                off = 1
                while off + 2 <= len(p):
                    size = (p[off] << 8) | p[off + 1]
                    off += 2
                    if size == 0 or off + size > len(p):
                        break
                    unit = p[off : off + size]
                    key = key or (unit[0] & 0x1F) == 5
                    out += _START_CODE + unit
                    off += size
            elif 1 <= nal <= 23:
                key = key or nal == 5
                out += _START_CODE + p
        if fu is not None or not out:
            return None
        return bytes(out), key


def depacketizer_for(codec_name: str) -> Depacketizer | None:
    """The depacketizer of a codec name (case-insensitive); None when it cannot be recorded."""
    name = codec_name.upper()
    if name == "VP8":
        return Vp8Depacketizer()
    if name == "H264":
        return H264Depacketizer()
    if name == "OPUS":
        return OpusDepacketizer()
    return None


class FrameAssembler:
    """Reorders one track's packets and cuts them into frames (see the module docstring).

    Args:
        depacketizer: the track's payload format.
        video: video waits for a keyframe at the start and after every unrecoverable gap.
        max_delay: how long (seconds, the caller's clock) a missing packet is waited for.
        max_packets: packets buffered at most before a gap is skipped regardless.
    """

    def __init__(
        self,
        depacketizer: Depacketizer,
        *,
        video: bool,
        max_delay: float = 0.4,
        max_packets: int = 512,
    ) -> None:
        self._dp = depacketizer
        self._video = video
        self._max_delay = max_delay
        self._max_packets = max_packets
        self._buf: dict[int, tuple[int, bool, bytes, float]] = {}
        self._next: int | None = None  # extended sequence number expected next
        self._last_seq = 0  # last extended sequence seen (for unwrapping)
        self._ts_raw: int | None = None
        self._ts_ext = 0
        self._parts: list[bytes] = []
        self._part_ts: int | None = None
        self._part_start_ok = False
        self.waiting_keyframe = video
        #: Gaps given up on (each one costs a frame, and for video a keyframe wait).
        self.gaps = 0
        self.frames_out = 0
        self.frames_dropped = 0
        self.late_packets = 0

    def reset(self) -> None:
        """Forget the sequence space (the publisher restarted its stream: new SSRC)."""
        self._buf.clear()
        self._next = None
        self._parts = []
        self._part_ts = None
        self._ts_raw = None
        if self._video:
            self.waiting_keyframe = True

    def _extend_seq(self, seq: int) -> int:
        if self._next is None:
            self._last_seq = seq
            return seq
        delta = (seq - self._last_seq) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        ext = self._last_seq + delta
        if delta > 0:
            self._last_seq = ext
        return ext

    def _extend_ts(self, ts: int) -> int:
        if self._ts_raw is None:
            self._ts_raw = ts
            self._ts_ext = ts
            return ts
        delta = (ts - self._ts_raw) & 0xFFFFFFFF
        if delta >= 0x80000000:
            delta -= 0x100000000
        ext = self._ts_ext + delta
        if delta > 0:
            self._ts_raw = ts
            self._ts_ext = ext
        return ext

    def push(
        self, seq: int, timestamp: int, marker: bool, payload: bytes, now: float
    ) -> list[EncodedFrame]:
        """Add one packet; returns the frames it completes (possibly none), in order."""
        ext = self._extend_seq(seq)
        if self._next is None:
            self._next = ext
        elif ext < self._next:
            self.late_packets += 1  # already emitted or given up on
            return []
        if ext not in self._buf:
            self._buf[ext] = (timestamp, marker, payload, now)
        return self._drain(now, flush=False)

    def flush(self, now: float) -> list[EncodedFrame]:
        """Emit everything still buffered (end of recording), skipping gaps."""
        out = self._drain(now, flush=True)
        self._emit_partial(out, complete=False)
        return out

    def _drain(self, now: float, *, flush: bool) -> list[EncodedFrame]:
        out: list[EncodedFrame] = []
        buf = self._buf
        while buf:
            assert self._next is not None
            item = buf.pop(self._next, None)
            if item is None:
                oldest = min(buf)
                stale = now - buf[oldest][3] >= self._max_delay
                if not (flush or stale or len(buf) > self._max_packets):
                    break
                # Give up on the gap: the frame being built is broken.
                self.gaps += 1
                if self._parts:
                    self.frames_dropped += 1
                self._parts = []
                self._part_ts = None
                if self._video:
                    self.waiting_keyframe = True
                self._next = oldest
                continue
            self._next += 1
            ts, marker, payload, arrival = item
            self._take(ts, marker, payload, arrival, out)
        return out

    def _take(
        self, ts: int, marker: bool, payload: bytes, arrival: float, out: list[EncodedFrame]
    ) -> None:
        if not self._dp.multi_packet:
            self._parts = [payload]
            self._part_ts = ts
            self._part_start_ok = True
            self._emit_partial(out, complete=True, arrival=arrival)
            return
        if self._part_ts is not None and ts != self._part_ts:
            # A new timestamp without the previous marker: the marker packet was lost
            # in a way the sequence could not show (never for a well-behaved sender).
            self._emit_partial(out, complete=False)
        if not self._parts:
            self._part_ts = ts
            self._part_start_ok = self._dp.frame_start(payload)
        self._parts.append(payload)
        if marker:
            self._emit_partial(out, complete=True, arrival=arrival)

    def _emit_partial(
        self, out: list[EncodedFrame], *, complete: bool, arrival: float = 0.0
    ) -> None:
        parts, ts, ok = self._parts, self._part_ts, self._part_start_ok
        self._parts = []
        self._part_ts = None
        if not parts or ts is None:
            return
        if not (complete and ok):
            self.frames_dropped += 1
            if self._video:
                self.waiting_keyframe = True
            return
        got = self._dp.assemble(parts)
        if got is None:
            self.frames_dropped += 1
            if self._video:
                self.waiting_keyframe = True
            return
        data, key = got
        if self.waiting_keyframe:
            if not key:
                self.frames_dropped += 1
                return
            self.waiting_keyframe = False
        self.frames_out += 1
        out.append(EncodedFrame(data, self._extend_ts(ts), key, arrival))
