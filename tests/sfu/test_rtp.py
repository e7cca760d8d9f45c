"""Pure RTP helpers: keyframe detection and header rewriting (specs/sfu.md §3.3)."""

from __future__ import annotations

import itertools
import random
import struct

import pytest

from vidhub.sfu.rtp import (
    HeaderRewriter,
    is_h264_keyframe,
    is_keyframe,
    is_vp8_keyframe,
    keyframe_detector,
    pack_header,
    patch_header,
)


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (bytes([0x10, 0x00]), True),  # S=1, PID=0, P=0
        (bytes([0x10, 0x01]), False),  # inter frame
        (bytes([0x00, 0x00]), False),  # not a partition start
        (bytes([0x11, 0x00]), False),  # partition 1
        (bytes([0x90, 0x80, 0x05, 0x00]), True),  # X, I, 7-bit picture id
        (bytes([0x90, 0x80, 0x85, 0x05, 0x00]), True),  # 15-bit picture id
        (bytes([0x90, 0xE0, 0x85, 0x05, 0x01, 0x02, 0x00]), True),  # I+L+T
        (bytes([0x90, 0xE0, 0x85, 0x05, 0x01, 0x02, 0x01]), False),
        (bytes([0x90, 0x80, 0x85]), False),  # truncated
        (bytes([0x90]), False),
        (b"", False),
    ],
)
def test_vp8_keyframe(payload: bytes, key: bool) -> None:
    assert is_vp8_keyframe(payload) is key
    assert is_keyframe("vp8", payload) is key


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        (bytes([0x65, 0x88]), True),  # IDR
        (bytes([0x67, 0x42]), True),  # SPS
        (bytes([0x41, 0x9A]), False),  # non-IDR slice
        (bytes([0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]), True),  # STAP-A SPS+PPS
        (bytes([0x78, 0x00, 0x02, 0x41, 0x00]), False),
        (bytes([0x78, 0x00, 0x00]), False),
        (bytes([0x7C, 0x85, 0xB8]), True),  # FU-A start of IDR
        (bytes([0x7C, 0x05, 0xB8]), False),  # FU-A middle
        (bytes([0x7C, 0x81]), False),  # FU-A start of non-IDR
        (b"", False),
    ],
)
def test_h264_keyframe(payload: bytes, key: bool) -> None:
    assert is_h264_keyframe(payload) is key
    assert is_keyframe("H264", payload) is key


def test_audio_has_no_keyframes() -> None:
    assert is_keyframe("opus", b"\x10\x00") is False


def test_patch_header_rewrites_the_fixed_fields_only() -> None:
    pkt = bytearray(struct.pack("!BBHII", 0x90, 96, 1, 2, 3) + b"\xbe\xde\x00\x01xyzw" + b"pay")
    patch_header(pkt, 1, 100, 0xFFFF, 0xFFFFFFFF, 0x01020304)
    assert pkt[0] == 0x90
    assert pkt[1] == 0x80 | 100
    assert struct.unpack("!HII", pkt[2:12]) == (0xFFFF, 0xFFFFFFFF, 0x01020304)
    assert pkt[12:] == b"\xbe\xde\x00\x01xyzwpay"


def test_pack_header_matches_patching_a_serialised_packet() -> None:
    original = struct.pack("!BBHII", 0x91, 96, 1, 2, 3) + b"\x00\x00\x00\x07" + b"pay"
    patched = bytearray(original)
    patch_header(patched, 1, 100, 0xFFFF, 0xFFFFFFFF, 0x01020304)
    rebuilt = pack_header(original[0], 0x80 | 100, 0xFFFF, 0xFFFFFFFF, 0x01020304) + original[12:]
    assert rebuilt == bytes(patched)


def test_keyframe_detector_is_picked_by_codec_name() -> None:
    assert keyframe_detector("vp8") is is_vp8_keyframe
    assert keyframe_detector("H264") is is_h264_keyframe
    assert keyframe_detector("opus") is None


def test_rewriter_drops_until_resync_then_continues_gap_free() -> None:
    rw = HeaderRewriter(random.Random(1))
    assert rw.map(100, 1000) is None and not rw.started
    base = rw.last_seq
    rw.resync(100)
    out = [rw.map(s, 1000 + s) for s in (100, 101, 102)]
    assert [o[0] for o in out if o] == [(base + 1 + i) & 0xFFFF for i in range(3)]
    ts0 = out[0][1] if out[0] else 0
    assert out[2] is not None and out[2][1] == (ts0 + 2) & 0xFFFFFFFF
    assert rw.map(99, 999) is None  # older than the resync point
    # Publisher jumps (e.g. a gap, then a resync on a keyframe): output stays contiguous.
    rw.resync(5000)
    nxt = rw.map(5000, 9000)
    assert nxt is not None and nxt[0] == (base + 4) & 0xFFFF
    # The timestamp offset never changes across resyncs.
    assert nxt[1] == (9000 + rw.ts_offset) & 0xFFFFFFFF


def test_rewriter_wraps_sequence_and_timestamp() -> None:
    rw = HeaderRewriter(random.Random(2))
    rw.resync(65534)
    seqs = []
    for i, s in enumerate((65534, 65535, 0, 1)):
        mapped = rw.map(s, (0xFFFFFFFF - 1 + i) & 0xFFFFFFFF)
        assert mapped is not None
        seqs.append(mapped[0])
    assert all(((b - a) & 0xFFFF) == 1 for a, b in itertools.pairwise(seqs))


def test_rewriter_survives_a_long_stream() -> None:
    rw = HeaderRewriter(random.Random(3))
    rw.resync(0)
    last = None
    for s in range(0, 200_000, 7):
        mapped = rw.map(s & 0xFFFF, s)
        assert mapped is not None, s
        if last is not None:
            assert (mapped[0] - last) & 0xFFFF == 7
        last = mapped[0]


def test_reordered_packet_after_resync_is_forwarded_without_moving_last_seq() -> None:
    rw = HeaderRewriter(random.Random(4))
    rw.resync(10)
    a = rw.map(10, 0)
    c = rw.map(12, 0)
    b = rw.map(11, 0)
    assert a and b and c
    assert (b[0] - a[0]) & 0xFFFF == 1 and rw.last_seq == c[0]
