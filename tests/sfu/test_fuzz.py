"""Bounded hypothesis runs over the SFU's parsers and rewriting: documented errors only."""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vidhub.protocol.sdp import (
    SdpError,
    announce_address,
    candidate_addresses,
    drop_mdns_candidates,
    parse_media_sections,
    pick_codec,
)
from vidhub.sfu.rtp import HeaderRewriter, is_h264_keyframe, is_vp8_keyframe

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sdp_lines = st.sampled_from(
    [
        "v=0",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=sendonly",
        "a=recvonly",
        "a=mid:0",
        "a=candidate:1 1 udp 1 10.0.0.1 5000 typ host",
        "a=candidate:1 1 udp 1 x.local 5000 typ host",
        "a=candidate:",
    ]
)


@FAST
@given(st.lists(sdp_lines | st.text(max_size=40), max_size=25))
def test_sdp_parser_raises_only_sdp_error(lines: list[str]) -> None:
    text = "\r\n".join(["v=0", *lines])
    try:
        sections = parse_media_sections(text)
    except SdpError:
        return
    for section in sections:
        picked = pick_codec(section)
        assert picked is None or picked in section.codecs
    candidate_addresses(text)
    drop_mdns_candidates(text)
    announced = announce_address(text, "192.0.2.1")
    assert all(a == "192.0.2.1" for a in candidate_addresses(announced, "host"))


@FAST
@given(st.binary(max_size=40))
def test_keyframe_detectors_never_raise(payload: bytes) -> None:
    assert is_vp8_keyframe(payload) in (True, False)
    assert is_h264_keyframe(payload) in (True, False)


@FAST
@given(
    st.integers(0, 0xFFFF),
    st.lists(st.integers(1, 3), min_size=1, max_size=300),
    st.integers(0, 2**32 - 1),
)
def test_rewriter_keeps_gaps_and_order(start: int, steps: list[int], seed: int) -> None:
    """Output sequence numbers move exactly as the input ones do (gaps kept, no jumps)."""
    rw = HeaderRewriter(random.Random(seed))
    rw.resync(start)
    seq = start
    prev = rw.map(seq, 0)
    assert prev is not None
    for step in steps:
        seq = (seq + step) & 0xFFFF
        out = rw.map(seq, 0)
        assert out is not None
        assert (out[0] - prev[0]) & 0xFFFF == step
        prev = out
