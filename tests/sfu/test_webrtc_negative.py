"""WebRTC checks at the media door, with a real aiortc peer against an in-process Router:
a DTLS certificate that does not match the SDP fingerprint tears the leg down, and STUN
binding requests without the right MESSAGE-INTEGRITY are refused (401). Both are enforced
by aiortc/aioice; these tests pin that behaviour so an upgrade cannot silently drop it.
(SDP size and m-section limits are ours: ``tests/fuzz/test_sdp_fuzz.py``.)"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator

import pytest
from aioice import stun
from aiortc import RTCSessionDescription
from tests.sfu.bots import PublisherBot

from vidhub.sfu.router import Router

WITHIN_S = 15.0


@pytest.fixture
async def router() -> AsyncIterator[Router]:
    r = Router(host_addresses=["127.0.0.1"])
    try:
        yield r
    finally:
        await r.close()


def _flip_fingerprint(sdp: str) -> str:
    def flip(m: re.Match[str]) -> str:
        first = m.group(2)[:2]
        other = "00" if first != "00" else "11"
        return m.group(1) + other + m.group(2)[2:]

    out, n = re.subn(r"(a=fingerprint:sha-256 )([0-9A-F:]+)", flip, sdp)
    assert n >= 1
    return out


async def test_dtls_fingerprint_mismatch_tears_the_leg_down(router: Router) -> None:
    failed: asyncio.Queue[str] = asyncio.Queue()
    router.on_endpoint_failed = failed.put_nowait
    bot = PublisherBot(router, "pub")
    offer = _flip_fingerprint(await bot.offer())  # the client's certificate will not match
    answer = await router.publish("pub", offer)
    await bot.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    try:
        assert await asyncio.wait_for(failed.get(), WITHIN_S) == "pub"
    finally:
        await bot.close()


def _attr(sdp: str, name: str) -> str:
    m = re.search(rf"^a={name}:(\S+)", sdp, re.M)
    assert m is not None, name
    return m.group(1)


async def test_stun_checks_need_the_right_message_integrity(router: Router) -> None:
    bot = PublisherBot(router, "pub")
    offer = await bot.offer()
    answer = await router.publish("pub", offer)
    port = int(re.search(r"a=candidate:\S+ 1 udp \d+ 127\.0\.0\.1 (\d+) typ host", answer).group(1))  # type: ignore[union-attr]
    username = f"{_attr(answer, 'ice-ufrag')}:{_attr(offer, 'ice-ufrag')}"

    def binding(key: bytes) -> stun.Message:
        msg = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        msg.attributes["USERNAME"] = username
        msg.attributes["PRIORITY"] = 1
        msg.attributes["ICE-CONTROLLING"] = 1
        msg.add_message_integrity(key)
        msg.add_fingerprint()
        return msg

    forged = binding(b"not-the-password")
    genuine = binding(_attr(answer, "ice-pwd").encode())
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        answers: dict[bytes, stun.Message] = {}
        for msg in (forged, genuine):
            await loop.sock_sendto(s, bytes(msg), ("127.0.0.1", port))
        while len(answers) < 2:
            data = await asyncio.wait_for(loop.sock_recv(s, 2048), WITHIN_S)
            reply = stun.parse_message(data)
            answers[reply.transaction_id] = reply
    assert answers[forged.transaction_id].message_class == stun.Class.ERROR
    assert answers[forged.transaction_id].attributes["ERROR-CODE"][0] == 401
    assert answers[genuine.transaction_id].message_class == stun.Class.RESPONSE
    await bot.close()
