"""openvidu-browser 2.32 in headless Chromium against a real ``vidhub serve``.

Each browser has a fresh profile and Chromium's fake camera/microphone; every address is
127.0.0.1 (signalling, media candidates, the test page).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiortc import AudioStreamTrack, VideoStreamTrack

from tests.browser.chromium import Chromium, js
from tests.support.hubwatch import watch_hub
from tests.support.proc import MS, ServerProcess
from vidhub.client import Participant

pytestmark = pytest.mark.browser

WAIT_MS = int(15_000 * MS * 1000)
WAIT_S = WAIT_MS / 1000


class Api:
    """Just enough of the REST API, over aiohttp (no blocking calls in the loop)."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base

    async def token(self, session: str, role: str = "PUBLISHER") -> str:
        async with self.http.post(f"{self.base}/sessions", json={"customSessionId": session}):
            pass
        async with self.http.post(
            f"{self.base}/sessions/{session}/connection", json={"role": role}
        ) as r:
            assert r.status == 200, await r.text()
            token: str = (await r.json())["token"]
            return token

    async def session(self, session: str) -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"{self.base}/sessions/{session}") as r:
            return r.status, (await r.json() if r.status == 200 else {})

    async def connection(self, session: str, conn: str) -> dict[str, Any]:
        async with self.http.get(f"{self.base}/sessions/{session}/connection/{conn}") as r:
            assert r.status == 200, await r.text()
            body: dict[str, Any] = await r.json()
            return body

    async def delete_connection(self, session: str, conn: str) -> int:
        async with self.http.delete(f"{self.base}/sessions/{session}/connection/{conn}") as r:
            return r.status


@pytest.fixture
async def api(vidhub: ServerProcess) -> AsyncIterator[Api]:
    cred = base64.b64encode(":".join(vidhub.auth).encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {cred}"}) as http:
        yield Api(http, vidhub.api)


async def _join(chromium: Chromium, name: str, url: str, token: str) -> str:
    await chromium.open(name, url)
    cid: str = await chromium.eval(name, f"vh.join({js(token)}, {js(name)})")
    return cid


async def test_two_browsers_publish_see_each_other_and_leave_like_openvidu(
    vidhub: ServerProcess, api: Api, page_url: str, chromium: Chromium
) -> None:
    a_tok, b_tok = await api.token("B1"), await api.token("B1")
    a, b = await asyncio.gather(
        _join(chromium, "a", page_url, a_tok), _join(chromium, "b", page_url, b_tok)
    )
    a_stream, b_stream = await asyncio.gather(
        chromium.eval("a", "vh.publish()"), chromium.eval("b", "vh.publish()")
    )
    seen_by_a, seen_by_b = await asyncio.gather(
        chromium.eval("a", f"vh.waitPlaying({js(b)}, {WAIT_MS})", WAIT_S + 5),
        chromium.eval("b", f"vh.waitPlaying({js(a)}, {WAIT_MS})", WAIT_S + 5),
    )
    latency = (seen_by_a["firstFrameMs"], seen_by_b["firstFrameMs"])
    print(f"streamCreated -> first frame: {latency[0]} / {latency[1]} ms")
    assert seen_by_a["width"] == 320 and seen_by_a["t1"] > seen_by_a["t0"]
    assert seen_by_b["width"] == 320 and seen_by_b["t1"] > seen_by_b["t0"]

    # REST reflects who publishes and who receives what
    ca, cb = await api.connection("B1", a), await api.connection("B1", b)
    assert [p["streamId"] for p in ca["publishers"]] == [a_stream]
    assert [s["streamId"] for s in ca["subscribers"]] == [b_stream]
    assert [s["streamId"] for s in cb["subscribers"]] == [a_stream]
    assert ca["publishers"][0]["mediaOptions"]["videoDimensions"] == '{"width":320,"height":240}'

    # unpublish: the other side's stream goes away with reason "unpublish"
    await chromium.eval("b", "vh.unpublish()")
    ev = await chromium.eval(
        "a", f"vh.waitEvent('streamDestroyed', {{connectionId: {js(b)}}}, {WAIT_MS})"
    )
    assert ev["reason"] == "unpublish"
    cb = await api.connection("B1", b)
    assert cb["publishers"] == []
    assert (await api.connection("B1", a))["subscribers"] == []

    # a dropped signalling socket resumes: same participant, still reachable
    await chromium.eval("b", "vh.dropSocket()")
    await chromium.eval("b", f"vh.waitEvent('reconnected', {{}}, {WAIT_MS})")
    await chromium.eval("b", f"vh.signal('after-resume', 'chat', [{js(a)}])")
    sig = await chromium.eval("a", f"vh.waitEvent('signal', {{data: 'after-resume'}}, {WAIT_MS})")
    assert sig["from"] == b and sig["signalType"] == "signal:chat"
    assert chromium_events(await chromium.eval("a", "vh.events"), "connectionDestroyed") == []

    # REST DELETE of a live connection evicts it, as OpenVidu does
    assert await api.delete_connection("B1", b) == 204
    ev = await chromium.eval("b", f"vh.waitEvent('sessionDisconnected', {{}}, {WAIT_MS})")
    assert ev["reason"] == "forceDisconnectByServer"
    ev = await chromium.eval(
        "a", f"vh.waitEvent('connectionDestroyed', {{connectionId: {js(b)}}}, {WAIT_MS})"
    )
    assert ev["reason"] == "forceDisconnectByServer"

    # the last one leaving closes the session
    destroyed = "topic=vidhub.session.destroyed and data.sessionId=B1"
    async with watch_hub(vidhub.url, vidhub.secret, destroyed) as closed:
        await chromium.eval("a", "vh.leave()")
        await asyncio.wait_for(closed.wait(), WAIT_MS / 1000)
    status, _body = await api.session("B1")
    assert status == 404


def chromium_events(events: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_]


async def test_browser_and_python_participant_see_each_others_media(
    vidhub: ServerProcess, api: Api, page_url: str, chromium: Chromium
) -> None:
    a = await _join(chromium, "a", page_url, await api.token("B2"))
    a_stream = await chromium.eval("a", "vh.publish()")
    bot = Participant(await api.token("B2"), metadata="bot", host_addresses=["127.0.0.1"])
    await bot.join()
    try:
        assert [s for c in bot.remote.values() for s in c.streams] == [a_stream]
        await bot.publish(audio=AudioStreamTrack(), video=VideoStreamTrack())
        seen = await chromium.eval(
            "a", f"vh.waitPlaying({js(bot.connection_id)}, {WAIT_MS})", WAIT_S + 5
        )
        assert seen["width"] == 640 and seen["height"] == 480

        sub = await bot.subscribe(a_stream)
        assert sub.video is not None
        frame = await asyncio.wait_for(sub.video.recv(), WAIT_S)
        assert (frame.width, frame.height) == (320, 240)

        got = asyncio.ensure_future(bot.wait_event("sendMessage", wait_s=WAIT_S))
        await chromium.eval("a", f"vh.signal('to-bot', 'chat', [{js(bot.connection_id)}])")
        assert (await got).data == {"data": "to-bot", "type": "signal:chat", "from": a}
        await bot.signal("to-browser", "chat", to=[a])
        ev = await chromium.eval("a", f"vh.waitEvent('signal', {{data: 'to-browser'}}, {WAIT_MS})")
        assert ev["from"] == bot.connection_id

        body = await api.connection("B2", bot.connection_id)
        assert [s["streamId"] for s in body["subscribers"]] == [a_stream]
    finally:
        await bot.leave()
    ev = await chromium.eval("a", f"vh.waitEvent('connectionDestroyed', {{}}, {WAIT_MS})")
    assert ev["reason"] == "disconnect"


async def test_moderator_browser_force_unpublishes_and_disconnects_a_publisher(
    vidhub: ServerProcess, api: Api, page_url: str, chromium: Chromium
) -> None:
    m_tok, p_tok = await api.token("B3", role="MODERATOR"), await api.token("B3")
    m, p = await asyncio.gather(
        _join(chromium, "m", page_url, m_tok), _join(chromium, "p", page_url, p_tok)
    )
    await chromium.eval("p", "vh.publish()")
    await chromium.eval("m", f"vh.waitPlaying({js(p)}, {WAIT_MS})", WAIT_S + 5)
    # a PUBLISHER may not moderate: openvidu-browser reports the server's 401 as denied
    denied = await chromium.eval("p", f"vh.errorName(() => vh.forceDisconnect({js(m)}))")
    assert denied == "OPENVIDU_PERMISSION_DENIED"

    await chromium.eval("m", f"vh.forceUnpublish({js(p)})")
    ev = await chromium.eval("p", f"vh.waitEvent('publisherStreamDestroyed', {{}}, {WAIT_MS})")
    assert ev["reason"] == "forceUnpublishByUser"
    assert (await api.connection("B3", p))["publishers"] == []

    await chromium.eval("m", f"vh.forceDisconnect({js(p)})")
    ev = await chromium.eval("p", f"vh.waitEvent('sessionDisconnected', {{}}, {WAIT_MS})")
    assert ev["reason"] == "forceDisconnectByUser"
    ev = await chromium.eval(
        "m", f"vh.waitEvent('connectionDestroyed', {{connectionId: {js(p)}}}, {WAIT_MS})"
    )
    assert ev["reason"] == "forceDisconnectByUser"
    _status, body = await api.session("B3")
    assert [c["id"] for c in body["connections"]["content"]] == [m]
