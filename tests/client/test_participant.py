"""The Participant bot against an in-process vidhub with the real SFU (loopback media)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import AudioStreamTrack, VideoStreamTrack

from tests.support.proc import MS
from vidhub.client import Participant, ParticipantError
from vidhub.client.participant import signalling_url
from vidhub.config import Config
from vidhub.server.app import make_app
from vidhub.store import MemoryStore

WAIT = 10_000 * MS


@pytest.fixture
async def api() -> AsyncIterator[TestClient[Any, Any]]:
    app = make_app(Config(store="memory", garbage_interval_s=0), store=MemoryStore())
    cred = base64.b64encode(b"OPENVIDUAPP:MY_SECRET").decode()
    async with TestClient(
        TestServer(app, host="127.0.0.1"), headers={"Authorization": f"Basic {cred}"}
    ) as c:
        yield c


async def _token(api: TestClient[Any, Any], role: str = "PUBLISHER", session: str = "P1") -> str:
    await api.post("/openvidu/api/sessions", json={"customSessionId": session})
    r = await api.post(f"/openvidu/api/sessions/{session}/connection", json={"role": role})
    token: str = (await r.json())["token"]
    return token


def test_signalling_url_is_derived_like_openvidu_browser() -> None:
    assert signalling_url("ws://127.0.0.1:4443?sessionId=S&token=tok_A") == (
        "ws://127.0.0.1:4443/openvidu?sessionId=S",
        "S",
    )
    assert signalling_url("wss://h/some/path?sessionId=S2&token=t")[0] == (
        "wss://h/openvidu?sessionId=S2"
    )
    with pytest.raises(ValueError, match="Token not valid"):
        signalling_url("tok_only")


async def test_two_bots_exchange_media_signals_and_events(api: TestClient[Any, Any]) -> None:
    alice = Participant(await _token(api), metadata="alice")
    bob = Participant(await _token(api), metadata="bob")
    await alice.join()
    joined = asyncio.ensure_future(alice.wait_event("participantJoined", wait_s=WAIT))
    res = await bob.join()
    try:
        assert (await joined).data["metadata"] == "bob"
        assert [p.id for p in res.value] == [alice.connection_id]

        published = asyncio.ensure_future(bob.wait_event("participantPublished", wait_s=WAIT))
        stream = await alice.publish(audio=AudioStreamTrack(), video=VideoStreamTrack())
        ev = await published
        assert ev.data["streams"][0]["id"] == stream.id
        sub = await bob.subscribe(stream.id)
        assert sub.video is not None and sub.audio is not None
        frame = await asyncio.wait_for(sub.video.recv(), WAIT)
        assert frame.width == 640 and frame.height == 480
        await asyncio.wait_for(sub.audio.recv(), WAIT)

        r = await api.get(f"/openvidu/api/sessions/P1/connection/{bob.connection_id}")
        assert [s["streamId"] for s in (await r.json())["subscribers"]] == [stream.id]

        got = asyncio.ensure_future(alice.wait_event("sendMessage", wait_s=WAIT))
        await bob.signal("hello", "chat", to=[alice.connection_id])
        assert (await got).data == {
            "data": "hello",
            "type": "signal:chat",
            "from": bob.connection_id,
        }

        gone = asyncio.ensure_future(bob.wait_event("participantUnpublished", wait_s=WAIT))
        await alice.unpublish()
        assert (await gone).data["reason"] == "unpublish"
        assert bob.remote[alice.connection_id].streams == {}
    finally:
        left = asyncio.ensure_future(bob.wait_event("participantLeft", wait_s=WAIT))
        await alice.leave()
        assert (await left).data["reason"] == "disconnect"
        await bob.leave()


async def test_events_iterator_callbacks_and_errors(api: TestClient[Any, Any]) -> None:
    sub_only = Participant(await _token(api, role="SUBSCRIBER"))
    await sub_only.join()
    seen: list[str] = []
    sub_only.on("*", lambda ev: seen.append(ev.type))
    with pytest.raises(ParticipantError) as info:
        await sub_only.publish(video=VideoStreamTrack())
    assert info.value.code == 401
    other = Participant(await _token(api))
    await other.join()
    await other.signal("x")
    await sub_only.leave()
    types = [ev.type async for ev in sub_only]
    assert types[:2] == ["participantJoined", "sendMessage"]
    assert types[-1] == "closed"
    assert seen == types
    await other.leave()
    used = Participant(other.token)
    with pytest.raises(ParticipantError) as info:
        await used.join()
    assert info.value.code in (401, 202)


async def test_evicted_bot_releases_itself(api: TestClient[Any, Any]) -> None:
    bot = Participant(await _token(api, session="P3"))
    stay = Participant(await _token(api, session="P3"))
    await bot.join()
    await stay.join()
    evicted = asyncio.ensure_future(bot.wait_event("participantEvicted", wait_s=WAIT))
    r = await api.delete(f"/openvidu/api/sessions/P3/connection/{bot.connection_id}")
    assert r.status == 204
    assert (await evicted).data["reason"] == "forceDisconnectByServer"
    await asyncio.wait_for(bot.closed.wait(), WAIT)
    await bot.leave()  # safe after eviction
    await stay.leave()
