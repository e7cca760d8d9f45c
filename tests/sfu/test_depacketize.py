"""The recorder's frame assembler and payload formats, on hand-made packets (no I/O)."""

from __future__ import annotations

from vidhub.sfu.depacketize import (
    FrameAssembler,
    H264Depacketizer,
    OpusDepacketizer,
    Vp8Depacketizer,
    vp8_dimensions,
)

KEY = bytes([0x9D, 0x01, 0x2A]) + (640).to_bytes(2, "little") + (480).to_bytes(2, "little")


def vp8(start: bool, body: bytes, picture_id: int | None = None) -> bytes:
    """A VP8 RTP payload: descriptor (S bit, optional 15-bit picture id) + body."""
    if picture_id is None:
        return bytes([0x10 if start else 0x00]) + body
    return (
        bytes([0x90 if start else 0x80, 0x80, 0x80 | (picture_id >> 8), picture_id & 0xFF]) + body
    )


def keyframe(n: int) -> list[bytes]:
    """A keyframe in two packets (first byte's bit 0 clear = key)."""
    return [vp8(True, b"\x00\x00\x00" + KEY[:7], n), vp8(False, KEY[7:] + b"kk", n)]


def delta(n: int) -> list[bytes]:
    return [vp8(True, b"\x01dd", n), vp8(False, b"ee", n)]


def feed(a: FrameAssembler, frames: list[list[bytes]], seq0: int, ts0: int, order=None):
    packets = []
    seq = seq0
    for i, parts in enumerate(frames):
        for j, p in enumerate(parts):
            packets.append((seq & 0xFFFF, (ts0 + i * 3000) & 0xFFFFFFFF, j == len(parts) - 1, p))
            seq += 1
    if order is not None:
        packets = [packets[k] for k in order]
    out = []
    for s, t, m, p in packets:
        out += a.push(s, t, m, p, 0.0)
    return out


def test_frames_come_out_whole_and_in_order_across_reordering_and_wrap() -> None:
    a = FrameAssembler(Vp8Depacketizer(), video=True)
    frames = [keyframe(1), delta(2), delta(3)]
    got = feed(a, frames, seq0=65534, ts0=2**32 - 3000, order=[0, 2, 1, 4, 3, 5])
    assert [f.keyframe for f in got] == [True, False, False]
    assert [f.timestamp - got[0].timestamp for f in got] == [0, 3000, 6000]
    assert got[0].data.startswith(b"\x00\x00\x00\x9d\x01\x2a")
    assert vp8_dimensions(got[0].data) == (640, 480)


def test_video_waits_for_a_keyframe() -> None:
    a = FrameAssembler(Vp8Depacketizer(), video=True)
    got = feed(a, [delta(1), delta(2), keyframe(3), delta(4)], seq0=10, ts0=0)
    assert [f.keyframe for f in got] == [True, False]
    assert a.frames_dropped == 2


def test_a_gap_is_waited_for_then_skipped_until_the_next_keyframe() -> None:
    a = FrameAssembler(Vp8Depacketizer(), video=True, max_delay=0.5)
    k, d = keyframe(1), delta(2)
    assert [f.keyframe for f in a.push(1, 0, False, k[0], 0.0) + a.push(2, 0, True, k[1], 0.0)] == [
        True
    ]
    # packet 3 (first half of the delta frame) is lost; 4 and a later delta wait for it
    assert a.push(4, 3000, True, d[1], 0.1) == []
    assert a.push(5, 6000, True, vp8(True, b"\x01x", 3), 0.2) == []
    # the retransmission arrives in time: everything comes out
    got = a.push(3, 3000, False, d[0], 0.3)
    assert [f.timestamp for f in got] == [3000, 6000]
    # another loss, never repaired: after max_delay it is skipped, and deltas wait for a key
    assert a.push(7, 9000, True, vp8(True, b"\x01y", 4), 1.0) == []
    assert a.push(8, 12000, True, vp8(True, b"\x01z", 5), 1.6) == []
    assert a.gaps == 1 and a.waiting_keyframe
    k2 = keyframe(6)
    got = a.push(9, 15000, False, k2[0], 1.7) + a.push(10, 15000, True, k2[1], 1.7)
    assert [(f.timestamp, f.keyframe) for f in got] == [(15000, True)]


def test_opus_packets_are_frames_and_gaps_are_skipped() -> None:
    a = FrameAssembler(OpusDepacketizer(), video=False, max_delay=0.1)
    assert [f.data for f in a.push(100, 0, True, b"a", 0.0)] == [b"a"]
    assert a.push(102, 1920, True, b"c", 0.0) == []
    assert [f.data for f in a.push(103, 2880, True, b"d", 0.2)] == [b"c", b"d"]
    assert a.push(101, 960, True, b"b", 0.3) == []  # too late
    assert a.late_packets == 1
    assert [f.data for f in a.flush(0.3)] == []


def test_h264_single_stap_a_and_fu_a_become_annex_b() -> None:
    dp = H264Depacketizer()
    sps, pps, idr = b"\x67\x42", b"\x68\xce", b"\x65" + b"x" * 10
    stap = b"\x18" + len(sps).to_bytes(2, "big") + sps + len(pps).to_bytes(2, "big") + pps
    fu_start = bytes([0x7C, 0x85]) + idr[1:6]
    fu_end = bytes([0x7C, 0x45]) + idr[6:]
    got = dp.assemble([stap, fu_start, fu_end])
    sc = b"\x00\x00\x00\x01"
    assert got == (sc + sps + sc + pps + sc + idr, True)
    assert dp.assemble([bytes([0x7C, 0x05]) + b"zz"]) is None  # middle fragment only
    assert dp.assemble([b"\x41abc"]) == (sc + b"\x41abc", False)
    assert not dp.frame_start(bytes([0x7C, 0x05]))
