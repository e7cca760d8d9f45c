"""Pure SDP helpers: m-section parsing, codec choice, candidate policing."""

from __future__ import annotations

import pytest

from vidhub.protocol.sdp import (
    MediaSection,
    SdpCodec,
    SdpError,
    announce_address,
    candidate_addresses,
    check_candidates,
    drop_mdns_candidates,
    h264_profile_ok,
    parse_media_sections,
    pick_codec,
)

OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendonly",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:0 PCMU/8000",
        "a=candidate:1 1 udp 2130706431 192.168.1.5 50000 typ host",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 127",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=sendonly",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=rtpmap:102 H264/90000",
        "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
        "a=rtpmap:103 rtx/90000",
        "a=fmtp:103 apt=102",
        "a=rtpmap:127 H264/90000",
        "a=fmtp:127 packetization-mode=1;profile-level-id=640c1f",
        "a=candidate:2 1 udp 2130706431 192.168.1.5 50001 typ host",
        "",
    ]
)


def test_parse_sections_kinds_mids_directions_codecs() -> None:
    audio, video = parse_media_sections(OFFER)
    assert (audio.kind, audio.mid, audio.direction, audio.index) == ("audio", "0", "sendonly", 0)
    assert [c.name for c in audio.codecs] == ["opus", "PCMU"]
    assert audio.codecs[0].channels == 2
    assert audio.codecs[0].param("USEINBANDFEC") == "1"
    assert [c.payload_type for c in video.media_codecs] == [96, 102, 127]
    rtx = video.rtx_for(102)
    assert rtx is not None and rtx.payload_type == 103 and rtx.is_rtx
    assert video.rtx_for(127) is None


def test_session_level_direction_applies_when_section_has_none() -> None:
    sdp = "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\na=recvonly\nm=video 9 RTP/AVP 96\n"
    sdp += "a=rtpmap:96 VP8/90000\n"
    (video,) = parse_media_sections(sdp)
    assert video.direction == "recvonly" and video.mid is None


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "hello",
        "v=0\r\ns=-\r\n",
        "v=0\r\nm=video\r\n",
        "v=0\r\nm=video 9 RTP/AVP x\r\n",
        "v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:96 VP8\r\n",
        "v=0\r\nm=video 9 RTP/AVP 96\r\na=rtpmap:x VP8/90000\r\n",
        "v=0\r\nm=video 9 RTP/AVP 96\r\na=fmtp:zz apt=1\r\n",
    ],
)
def test_malformed_sdp_raises_sdp_error(bad: str) -> None:
    with pytest.raises(SdpError):
        parse_media_sections(bad)


def test_pick_codec_follows_offer_order_and_forced_codec() -> None:
    audio, video = parse_media_sections(OFFER)
    picked = pick_codec(audio)
    assert picked is not None and picked.name == "opus"
    picked = pick_codec(video)
    assert picked is not None and picked.name == "VP8"
    picked = pick_codec(video, "MEDIA_SERVER_PREFERRED")
    assert picked is not None and picked.name == "VP8"
    forced = pick_codec(video, "h264")
    assert forced is not None and forced.payload_type == 102
    assert pick_codec(video, "VP9") is None


def test_h264_only_baseline_with_packetization_mode_1() -> None:
    def h264(params: tuple[tuple[str, str], ...]) -> SdpCodec:
        return SdpCodec(100, "H264", 90000, None, params)

    assert h264_profile_ok(h264((("packetization-mode", "1"), ("profile-level-id", "42e01f"))))
    assert h264_profile_ok(h264((("packetization-mode", "1"), ("profile-level-id", "42001F"))))
    assert not h264_profile_ok(h264((("packetization-mode", "0"), ("profile-level-id", "42e01f"))))
    assert not h264_profile_ok(h264((("packetization-mode", "1"), ("profile-level-id", "4d001f"))))
    assert not h264_profile_ok(h264((("packetization-mode", "1"),)))
    section = MediaSection(
        0, "video", "0", "sendonly", 9, (h264((("profile-level-id", "42e01f"),)),)
    )
    assert pick_codec(section) is None


def test_candidates_are_listed_checked_and_announced() -> None:
    assert candidate_addresses(OFFER) == ["192.168.1.5", "192.168.1.5"]
    check_candidates(OFFER, ["192.168.1.5"])
    with pytest.raises(SdpError, match=r"192\.168\.1\.5"):
        check_candidates(OFFER, ["127.0.0.1"])
    rewritten = announce_address(OFFER, "203.0.113.9")
    assert candidate_addresses(rewritten) == ["203.0.113.9", "203.0.113.9"]
    assert "c=IN IP4 203.0.113.9" in rewritten and "\r\n" in rewritten
    assert "50001 typ host" in rewritten
    v6 = announce_address(OFFER.replace("\r\n", "\n"), "2001:db8::1")
    assert "c=IN IP6 2001:db8::1" in v6 and "\r\n" not in v6


def test_mdns_candidates_are_dropped() -> None:
    sdp = OFFER.replace("192.168.1.5 50001", "1f2e3d4c-aaaa-bbbb.local 50001")
    out = drop_mdns_candidates(sdp)
    assert candidate_addresses(out) == ["192.168.1.5"]
    assert out.count("\r\n") == sdp.count("\r\n") - 1
    assert drop_mdns_candidates(OFFER) == OFFER


def test_only_host_candidates_are_policed_and_announced() -> None:
    srflx = "a=candidate:3 1 udp 1694498815 198.51.100.4 50002 typ srflx raddr 10.0.0.1 rport 5"
    sdp = OFFER.replace("a=candidate:2 ", srflx + "\r\na=candidate:2 ")
    assert candidate_addresses(sdp, "srflx") == ["198.51.100.4"]
    assert candidate_addresses(sdp, "host") == ["192.168.1.5", "192.168.1.5"]
    check_candidates(sdp, ["192.168.1.5"])
    out = announce_address(sdp, "203.0.113.9")
    assert candidate_addresses(out, "srflx") == ["198.51.100.4"]
    assert candidate_addresses(out, "host") == ["203.0.113.9", "203.0.113.9"]
