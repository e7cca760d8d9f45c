"""Codec preferences pinning a transceiver to the producer's codec."""

from __future__ import annotations

from vidhub.protocol.sdp import SdpCodec
from vidhub.sfu.negotiation import capabilities, preferences_for


def test_vp8_gets_vp8_and_rtx() -> None:
    prefs = preferences_for("video", SdpCodec(96, "VP8", 90000))
    assert [c.mimeType for c in prefs] == ["video/VP8", "video/rtx"]
    assert all(c in capabilities("video") for c in prefs)


def test_h264_matches_profile() -> None:
    base = SdpCodec(
        102, "H264", 90000, None, (("packetization-mode", "1"), ("profile-level-id", "42e01f"))
    )
    prefs = preferences_for("video", base)
    assert prefs[0].parameters["profile-level-id"] == "42e01f"
    cb = SdpCodec(
        102, "H264", 90000, None, (("packetization-mode", "1"), ("profile-level-id", "42001f"))
    )
    assert preferences_for("video", cb)[0].parameters["profile-level-id"] == "42001f"
    high = SdpCodec(
        102, "H264", 90000, None, (("packetization-mode", "1"), ("profile-level-id", "640c1f"))
    )
    assert preferences_for("video", high) == []


def test_opus_has_no_rtx_and_unknown_codecs_none() -> None:
    assert [c.mimeType for c in preferences_for("audio", SdpCodec(111, "opus", 48000, 2))] == [
        "audio/opus"
    ]
    assert preferences_for("video", SdpCodec(98, "VP9", 90000)) == []
