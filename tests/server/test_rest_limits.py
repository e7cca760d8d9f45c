"""REST door limits: session and per-session connection caps, and the bounded cost of
``GET /openvidu/api/sessions`` (issue 13: 50 000 sessions were one 25 MB response)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from vidhub.config import Config
from vidhub.server.app import make_app
from vidhub.server.keys import MANAGER
from vidhub.server.rest import sessions as rest_sessions
from vidhub.store import MemoryStore

AUTH = {"Authorization": "Basic " + base64.b64encode(b"OPENVIDUAPP:MY_SECRET").decode()}


async def _client(**cfg: Any) -> TestClient[Any, Any]:
    app = make_app(Config(store="memory", garbage_interval_s=0, **cfg), store=MemoryStore())
    return TestClient(TestServer(app), headers=AUTH)


@pytest.fixture
async def capped() -> AsyncIterator[TestClient[Any, Any]]:
    async with await _client(max_sessions=3, max_connections_per_session=2) as c:
        yield c


async def test_sessions_beyond_the_cap_get_429_and_a_freed_slot_is_reusable(
    capped: TestClient[Any, Any],
) -> None:
    for i in range(3):
        r = await capped.post("/openvidu/api/sessions", json={"customSessionId": f"s{i}"})
        assert r.status == 200
    r = await capped.post("/openvidu/api/sessions", json={"customSessionId": "s3"})
    assert r.status == 429
    assert "VIDHUB_MAX_SESSIONS" in (await r.json())["message"]
    assert (await capped.delete("/openvidu/api/sessions/s0")).status == 204
    r = await capped.post("/openvidu/api/sessions", json={"customSessionId": "s3"})
    assert r.status == 200


async def test_connections_beyond_the_per_session_cap_get_429(
    capped: TestClient[Any, Any],
) -> None:
    await capped.post("/openvidu/api/sessions", json={"customSessionId": "a"})
    await capped.post("/openvidu/api/sessions", json={"customSessionId": "b"})
    for _ in range(2):
        assert (await capped.post("/openvidu/api/sessions/a/connection", json={})).status == 200
    r = await capped.post("/openvidu/api/sessions/a/connection", json={})
    assert r.status == 429
    assert "VIDHUB_MAX_CONNECTIONS_PER_SESSION" in (await r.json())["message"]
    # another session is not affected
    assert (await capped.post("/openvidu/api/sessions/b/connection", json={})).status == 200


async def test_a_long_listing_is_streamed_whole_and_shared_by_concurrent_callers() -> None:
    n = rest_sessions.LIST_CHUNK * 3 + 7
    async with await _client() as c:
        for i in range(n):
            r = await c.post("/openvidu/api/sessions", json={"customSessionId": f"s{i:05}"})
            assert r.status == 200
        calls = 0
        real = c.app[MANAGER].list_sessions

        async def counted() -> Any:
            nonlocal calls
            calls += 1
            return await real()

        c.app[MANAGER].list_sessions = counted  # type: ignore[method-assign]
        answers = await asyncio.gather(*(c.get("/openvidu/api/sessions") for _ in range(5)))
        bodies = [await a.json() for a in answers]
    assert all(a.status == 200 for a in answers)
    for body in bodies:
        assert body["numberOfElements"] == n
        assert [s["id"] for s in body["content"]] == [f"s{i:05}" for i in range(n)]
    assert calls < 5  # concurrent listings shared a rendering
