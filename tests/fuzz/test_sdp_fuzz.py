"""SDP offers at the trust boundary: a Chromium-shaped offer (``corpus/chromium_offer.sdp``)
and a fresh aiortc offer, mutated line by line, through the parser and the router's offer
check. Goal: a parsed offer or a 400 (``BadRequest``), never anything else; oversized offers
and offers with too many m-sections are refused before aiortc reads them."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidhub.errors import BadRequest
from vidhub.protocol.sdp import (
    MAX_M_SECTIONS,
    MAX_SDP_CHARS,
    SdpError,
    parse_media_sections,
    pick_codec,
)
from vidhub.sfu.router import Router

CHROMIUM = (Path(__file__).parent / "corpus" / "chromium_offer.sdp").read_text()


def _aiortc_offer() -> str:
    from aiortc import RTCConfiguration, RTCPeerConnection

    async def make() -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pc.addTransceiver("audio", direction="sendonly")
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


@pytest.fixture(scope="module")
def offers() -> list[str]:
    return [CHROMIUM, _aiortc_offer()]


def _check(sdp: str) -> None:
    try:
        sections = parse_media_sections(sdp)
    except SdpError:
        pass
    else:
        for s in sections:
            picked = pick_codec(s)
            assert picked is None or picked in s.codecs
    with contextlib.suppress(BadRequest):
        Router._sections(sdp)


def test_real_offers_parse(offers: list[str]) -> None:
    for sdp in offers:
        kinds = [s.kind for s in parse_media_sections(sdp)]
        assert kinds == ["audio", "video"]
        assert [c.name.upper() for c in Router._sections(sdp)[1].codecs][:1] == ["VP8"]


mutation = st.tuples(
    st.sampled_from(["drop", "dup", "truncate", "replace", "insert", "swap"]),
    st.integers(0, 10_000),
    st.text(max_size=40),
)


@given(which=st.integers(0, 1), mutations=st.lists(mutation, min_size=1, max_size=8))
def test_mutated_offers_parse_or_give_400(
    offers: list[str], which: int, mutations: list[tuple[str, int, str]]
) -> None:
    lines = offers[which].splitlines()
    for op, at, text in mutations:
        i = at % max(len(lines), 1)
        if not lines:
            lines = [text]
        elif op == "drop":
            del lines[i]
        elif op == "dup":
            lines.insert(i, lines[i])
        elif op == "truncate":
            lines[i] = lines[i][: at % (len(lines[i]) + 1)]
        elif op == "replace":
            lines[i] = lines[i][:2] + text
        elif op == "insert":
            lines.insert(i, text)
        else:
            j = (at // 7) % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
    _check("\r\n".join(lines))


def test_oversized_offer_is_refused_before_parsing(offers: list[str]) -> None:
    padding = "a=x-padding:" + "p" * 1000 + "\r\n"
    sdp = offers[0] + padding * (MAX_SDP_CHARS // len(padding) + 1)
    with pytest.raises(SdpError, match="larger than"):
        parse_media_sections(sdp)
    with pytest.raises(BadRequest):
        Router._sections(sdp)


def test_too_many_m_sections_are_refused(offers: list[str]) -> None:
    video = CHROMIUM[CHROMIUM.index("m=video") :]
    sdp = CHROMIUM + video * MAX_M_SECTIONS
    assert len(sdp) <= MAX_SDP_CHARS
    with pytest.raises(SdpError, match="m-sections"):
        parse_media_sections(sdp)
    with pytest.raises(BadRequest):
        Router._sections(sdp)
