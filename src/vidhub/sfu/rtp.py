"""Pure RTP helpers for forwarding: keyframe detection and per-consumer header rewriting.

No I/O and no aiortc here (``specs/sfu.md`` §3.3). :class:`HeaderRewriter` is the state a
consumer keeps to turn a publisher's (sequence, timestamp) into its own gap-free outgoing
numbering; :func:`pack_header` builds the 12 fixed header bytes a consumer puts in front of
its group's shared serialised remainder (:func:`patch_header` rewrites them in place).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable

__all__ = [
    "HeaderRewriter",
    "is_h264_keyframe",
    "is_keyframe",
    "is_vp8_keyframe",
    "keyframe_detector",
    "pack_header",
    "patch_header",
]

_FIXED = struct.Struct("!BHII")
_HEADER = struct.Struct("!BBHII")

#: ``pack_header(first_byte, marker_and_payload_type, seq, ts, ssrc)``: the 12 fixed header
#: bytes of an RTP packet (``first_byte`` carries version, padding, extension and CSRC count).
pack_header: Callable[[int, int, int, int, int], bytes] = _HEADER.pack


def is_vp8_keyframe(payload: bytes) -> bool:
    """True when ``payload`` (VP8 RTP payload) starts a keyframe.

    The payload descriptor must have S=1 and partition index 0, and the VP8 payload header's
    P bit (inverse keyframe flag) must be clear (RFC 7741 §4.2-4.3).
    """
    n = len(payload)
    if n < 1:
        return False
    b0 = payload[0]
    if not (b0 & 0x10) or (b0 & 0x07) != 0:
        return False
    off = 1
    if b0 & 0x80:  # X: extension byte follows
        if n < 2:
            return False
        x = payload[1]
        off = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if off >= n:
                return False
            off += 2 if payload[off] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            off += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            off += 1
    if off >= n:
        return False
    return (payload[off] & 0x01) == 0


_H264_KEY_NALS = (5, 7)  # IDR slice, SPS


def is_h264_keyframe(payload: bytes) -> bool:
    """True when ``payload`` (H.264 RTP payload, RFC 6184) starts an IDR or carries an SPS.

    Looks inside STAP-A aggregates and at the start fragment of FU-A.
    """
    n = len(payload)
    if n < 1:
        return False
    nal = payload[0] & 0x1F
    if nal in _H264_KEY_NALS:
        return True
    if nal == 24:  # STAP-A
        off = 1
        while off + 2 < n:
            size = (payload[off] << 8) | payload[off + 1]
            off += 2
            if size == 0 or off >= n:
                return False
            if (payload[off] & 0x1F) in _H264_KEY_NALS:
                return True
            off += size
        return False
    if nal == 28:  # FU-A
        return n >= 2 and bool(payload[1] & 0x80) and (payload[1] & 0x1F) in _H264_KEY_NALS
    return False


def keyframe_detector(codec_name: str) -> Callable[[bytes], bool] | None:
    """The keyframe test for a codec name (case-insensitive); None for codecs without one."""
    name = codec_name.upper()
    if name == "VP8":
        return is_vp8_keyframe
    if name == "H264":
        return is_h264_keyframe
    return None


def is_keyframe(codec_name: str, payload: bytes) -> bool:
    """Dispatch on the codec name (case-insensitive); False for codecs without keyframes."""
    detect = keyframe_detector(codec_name)
    return detect is not None and detect(payload)


def patch_header(
    buf: bytearray, marker: int, payload_type: int, seq: int, ts: int, ssrc: int
) -> None:
    """Overwrite marker+payload type, sequence number, timestamp and SSRC of a packet in place."""
    _FIXED.pack_into(buf, 1, (marker << 7) | payload_type, seq, ts, ssrc)


class HeaderRewriter:
    """Maps a publisher's sequence numbers and timestamps to one consumer's outgoing ones.

    * Sequence: ``out = in + seq_offset (mod 2**16)``; the offset is recomputed on every
      :meth:`resync` so the first packet after it is ``last sent + 1`` (no gap, no jump).
    * Timestamp: ``out = in + ts_offset (mod 2**32)`` with one random offset for the
      consumer's lifetime, so timestamps stay monotonic across resyncs.
    * Packets older than the resync point (reordered leftovers of the previous frame) map to
      None and must be dropped.

    Args:
        rng: source of the random bases (a seeded ``random.Random`` in tests).
    """

    __slots__ = ("_base_seq", "_last_out", "_seq_offset", "_started", "ts_offset")

    def __init__(self, rng: random.Random | None = None) -> None:
        r = rng or random.Random()
        self.ts_offset = r.getrandbits(32)
        # Start below 2**15 so an SRTP rollover is not hit at once (as aiortc does).
        self._last_out = (r.getrandbits(16) % 32768 - 1) & 0xFFFF
        self._seq_offset = 0
        self._base_seq = 0
        self._started = False

    @property
    def started(self) -> bool:
        """True once :meth:`resync` ran at least once."""
        return self._started

    @property
    def last_seq(self) -> int:
        """The last outgoing sequence number handed out (or the one before the first)."""
        return self._last_out

    def restarted(self) -> HeaderRewriter:
        """A rewriter that continues this one's output but waits for a new :meth:`resync`."""
        nxt = HeaderRewriter.__new__(HeaderRewriter)
        nxt.ts_offset = self.ts_offset
        nxt._last_out = self._last_out
        nxt._seq_offset = 0
        nxt._base_seq = 0
        nxt._started = False
        return nxt

    def resync(self, in_seq: int) -> None:
        """(Re)start forwarding at incoming sequence ``in_seq``: it becomes last sent + 1."""
        self._seq_offset = (self._last_out + 1 - in_seq) & 0xFFFF
        self._base_seq = in_seq
        self._started = True

    def map(self, in_seq: int, in_ts: int) -> tuple[int, int] | None:
        """Outgoing (sequence, timestamp) for an incoming packet, or None to drop it.

        Returns None before the first :meth:`resync` and for packets that precede the
        resync point by sequence number.
        """
        if not self._started:
            return None
        ahead = (in_seq - self._base_seq) & 0xFFFF
        if ahead >= 0x8000:
            return None
        if ahead > 0x4000:
            # Slide the resync point along so a long stream never wraps past it.
            self._base_seq = (in_seq - 0x1000) & 0xFFFF
        out_seq = (in_seq + self._seq_offset) & 0xFFFF
        if ((out_seq - self._last_out) & 0xFFFF) < 0x8000:
            self._last_out = out_seq
        return out_seq, (in_ts + self.ts_offset) & 0xFFFFFFFF
