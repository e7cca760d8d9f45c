"""openvidu-browser in a cluster: a token made on one node leads the browser to the host.

Two ``vidhub serve`` nodes on one loopback ``redis-server``; the session is hosted by node 2,
every token is made through node 1. The browser and a Python ``Participant`` just follow
their tokens, land in the same room on node 2 and see each other's media.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiortc import VideoStreamTrack

from tests.browser.chromium import Chromium, js
from tests.support.browser import require_browser
from tests.support.proc import MS, ServerProcess
from tests.support.redis import running_redis
from vidhub.client import Participant

pytestmark = [pytest.mark.browser, pytest.mark.redis]

WAIT_MS = int(15_000 * MS * 1000)
WAIT_S = WAIT_MS / 1000


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    require_browser()
    with running_redis(tmp_path / "redis") as redis:
        nodes: list[ServerProcess] = []
        try:
            for n in (1, 2):
                srv = ServerProcess(
                    tmp_path / f"n{n}",
                    extra_env={
                        "VIDHUB_NODE_ID": f"bn{n}",
                        "VIDHUB_ICE_HOST_ADDRESSES": "127.0.0.1",
                        "VIDHUB_SHED_BUDGET_MS": "2000",
                    },
                )
                srv.extra_args = [
                    *("--store", "redis", "--redis-url", redis.db_url(3)),
                    *("--public-url", srv.url),
                ]
                nodes.append(srv.start())
            yield nodes[0], nodes[1]
        finally:
            for srv in nodes:
                srv.stop()


async def test_a_browser_follows_its_token_to_the_hosting_node(
    two_nodes: tuple[ServerProcess, ServerProcess], page_url: str, chromium: Chromium
) -> None:
    n1, n2 = two_nodes
    cred = base64.b64encode(":".join(n1.auth).encode()).decode()
    sid = "cb_" + uuid.uuid4().hex[:10]
    async with aiohttp.ClientSession(headers={"Authorization": f"Basic {cred}"}) as http:
        async with http.post(f"{n2.api}/sessions", json={"customSessionId": sid}) as r:
            assert r.status == 200  # created through n2: hosted there

        async def token() -> str:
            async with http.post(f"{n1.api}/sessions/{sid}/connection", json={}) as r:
                assert r.status == 200, await r.text()
                tok: str = (await r.json())["token"]
            assert tok.startswith(f"ws://127.0.0.1:{n2.port}?")
            return tok

        await chromium.open("b", page_url)
        browser = await chromium.eval("b", f"vh.join({js(await token())}, 'browser')")
        stream = await chromium.eval("b", "vh.publish()")
        bot = Participant(await token(), metadata="bot", host_addresses=["127.0.0.1"])
        await bot.join()
        try:
            assert [s for c in bot.remote.values() for s in c.streams] == [stream]
            sub = await bot.subscribe(stream)
            assert sub.video is not None
            frame = await asyncio.wait_for(sub.video.recv(), WAIT_S)
            assert (frame.width, frame.height) == (320, 240)
            await bot.publish(video=VideoStreamTrack())
            seen = await chromium.eval(
                "b", f"vh.waitPlaying({js(bot.connection_id)}, {WAIT_MS})", WAIT_S + 5
            )
            assert seen["width"] == 640
            async with http.get(f"{n1.api}/sessions/{sid}") as r:
                conns = (await r.json())["connections"]["content"]
            assert sorted(c["id"] for c in conns) == sorted([browser, bot.connection_id])
        finally:
            await bot.leave()
