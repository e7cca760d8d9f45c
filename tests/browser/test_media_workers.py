"""Media workers with real clients: ``vidhub serve --media-workers 2`` and a worker killed mid-call.

Two sessions land on different workers (least load). ``kill -9`` of the worker of the first
one gives its browsers OpenVidu's ``streamDestroyed`` with reason ``mediaServerDisconnect``
(and the server's webrtcConnectionDestroyed events carry that reason), a republish works on
the replacement router, and the second session, on the other worker, keeps its media.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
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


@pytest.fixture
async def http(vidhub: ServerProcess) -> AsyncIterator[aiohttp.ClientSession]:
    cred = base64.b64encode(":".join(vidhub.auth).encode()).decode()
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {cred}"}) as session:
        yield session


async def _token(http: aiohttp.ClientSession, vidhub: ServerProcess, session: str) -> str:
    async with http.post(f"{vidhub.api}/sessions", json={"customSessionId": session}):
        pass
    async with http.post(f"{vidhub.api}/sessions/{session}/connection", json={}) as r:
        assert r.status == 200, await r.text()
        token: str = (await r.json())["token"]
        return token


def _placement(vidhub: ServerProcess) -> dict[str, int]:
    """Session id -> worker index, from the server's log lines."""
    found = re.findall(r"session (\S+) placed on media worker (\d+)", vidhub.log())
    return {session: int(index) for session, index in found}


async def _health(http: aiohttp.ClientSession, vidhub: ServerProcess) -> dict[str, object]:
    async with http.get(f"{vidhub.url}/health") as r:
        assert r.status == 200
        body: dict[str, object] = await r.json()
        return body


async def _workers_once_up(
    http: aiohttp.ClientSession, vidhub: ServerProcess
) -> list[dict[str, Any]]:
    """``/health``'s workers once all are up (polled: the server pushes nothing for it)."""
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while True:
        workers = (await _health(http, vidhub))["mediaWorkers"]
        assert isinstance(workers, list)
        if all(w["state"] == "up" for w in workers):
            return workers
        assert asyncio.get_running_loop().time() < deadline, workers
        await asyncio.sleep(0.1)


async def test_a_killed_worker_ends_its_streams_with_media_server_disconnect_and_spares_the_other(
    vidhub: ServerProcess, http: aiohttp.ClientSession, page_url: str, chromium: Chromium
) -> None:
    # session K: two browsers publishing to each other
    await chromium.open("a", page_url)
    await chromium.open("b", page_url)
    a = await chromium.eval("a", f"vh.join({js(await _token(http, vidhub, 'K'))}, 'a')")
    b = await chromium.eval("b", f"vh.join({js(await _token(http, vidhub, 'K'))}, 'b')")
    await asyncio.gather(chromium.eval("a", "vh.publish()"), chromium.eval("b", "vh.publish()"))
    await asyncio.gather(
        chromium.eval("a", f"vh.waitPlaying({js(b)}, {WAIT_MS})", WAIT_S + 5),
        chromium.eval("b", f"vh.waitPlaying({js(a)}, {WAIT_MS})", WAIT_S + 5),
    )
    # session S: Python participants, one publishing, one watching
    pub = Participant(await _token(http, vidhub, "S"), host_addresses=["127.0.0.1"])
    watcher = Participant(await _token(http, vidhub, "S"), host_addresses=["127.0.0.1"])
    await pub.join()
    await pub.publish(audio=AudioStreamTrack(), video=VideoStreamTrack())
    await watcher.join()
    try:
        assert pub.stream is not None
        sub = await watcher.subscribe(pub.stream)
        assert sub.video is not None
        await asyncio.wait_for(sub.video.recv(), WAIT_S)

        placed = _placement(vidhub)
        assert placed["K"] != placed["S"], placed
        health = await _health(http, vidhub)
        workers = health["mediaWorkers"]
        assert isinstance(workers, list) and [w["sessions"] for w in workers] == [1, 1]
        doomed = workers[placed["K"]]["pid"]

        destroyed = "topic=vidhub.webrtc.destroyed and data.reason=mediaServerDisconnect"
        async with watch_hub(vidhub.url, vidhub.secret, destroyed) as seen:
            os.kill(doomed, signal.SIGKILL)
            for page, other in (("a", b), ("b", a)):
                ev = await chromium.eval(
                    page,
                    f"vh.waitEvent('streamDestroyed', {{connectionId: {js(other)}}}, {WAIT_MS})",
                )
                assert ev["reason"] == "mediaServerDisconnect"
                ev = await chromium.eval(
                    page, f"vh.waitEvent('publisherStreamDestroyed', {{}}, {WAIT_MS})"
                )
                assert ev["reason"] == "mediaServerDisconnect"
            await asyncio.wait_for(seen.wait(), WAIT_S)

        # the other session never noticed: its frames keep coming
        for _ in range(10):
            await asyncio.wait_for(sub.video.recv(), WAIT_S)
        assert (
            await chromium.eval("a", "vh.events.filter(e => e.type === 'sessionDisconnected')")
            == []
        )

        # republish on the replacement router: b sees a's new stream playing
        await chromium.eval("a", "vh.publish()")
        seen_again = await chromium.eval("b", f"vh.waitPlaying({js(a)}, {WAIT_MS})", WAIT_S + 5)
        assert seen_again["width"] == 320
        # the lost worker was replaced (its start may still be under way on a loaded machine)
        workers = await _workers_once_up(http, vidhub)
        assert sum(w["restarts"] for w in workers) == 1
        assert doomed not in [w["pid"] for w in workers]
    finally:
        await watcher.leave()
        await pub.leave()
