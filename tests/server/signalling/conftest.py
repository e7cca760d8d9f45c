"""In-process signalling fixtures: the real app with a fake media router, and an RPC peer."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from tests.support.media import FakeRouter
from tests.support.proc import MS
from vidhub.clock import ManualClock
from vidhub.config import Config
from vidhub.core.events import ServerEvent
from vidhub.protocol import jsoncodec
from vidhub.server.app import make_app
from vidhub.server.keys import EVENTS
from vidhub.server.signalling import SIGNALLING
from vidhub.store import MemoryStore

SECRET = "MY_SECRET"
WAIT = 2000 * MS


class RpcPeer:
    """A scripted browser: requests with ids, notifications collected in order."""

    def __init__(self, ws: ClientWebSocketResponse) -> None:
        self.ws = ws
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.notifications: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.closed = asyncio.Event()
        #: responses that answer no pending request (e.g. errors for unreadable frames)
        self.orphans: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for msg in self.ws:
            if msg.type != WSMsgType.TEXT:
                break
            obj = jsoncodec.loads(msg.data)
            if "method" in obj:
                await self.notifications.put((obj["method"], obj["params"]))
            elif obj.get("id") in self._pending:
                self._pending.pop(obj["id"]).set_result(obj)
            else:
                await self.orphans.put(obj)
        self.closed.set()

    async def raw(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        frame: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": rid}
        if params:
            frame["params"] = params
        await self.ws.send_str(jsoncodec.dumps(frame))
        return await asyncio.wait_for(fut, WAIT)

    async def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """The result; fails the test on an error response."""
        resp = await self.raw(method, params)
        assert "result" in resp, resp
        result: dict[str, Any] = resp["result"]
        return result

    async def error(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        resp = await self.raw(method, params)
        assert "error" in resp, resp
        err: dict[str, Any] = resp["error"]
        return err

    async def next(self, method: str | None = None) -> dict[str, Any]:
        """The next notification (of ``method``, skipping others)."""
        while True:
            m, params = await asyncio.wait_for(self.notifications.get(), WAIT)
            if method is None or m == method:
                return params

    def pending_methods(self) -> list[str]:
        out = []
        while not self.notifications.empty():
            out.append(self.notifications.get_nowait()[0])
        return out

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


class Harness:
    """The app, its REST client, its fake routers and captured lifecycle events."""

    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client
        self.routers: list[FakeRouter] = []
        self.events: list[ServerEvent] = []
        self.peers: list[RpcPeer] = []
        #: the signalling state; its reconnection window is the production one (10 s), so a
        #: resume in a test never races it on a loaded machine
        self.signalling = client.server.app[SIGNALLING]

    async def token(self, session: str = "S1", role: str = "PUBLISHER", data: str = "") -> str:
        r = await self.client.post("/openvidu/api/sessions", json={"customSessionId": session})
        assert r.status in (200, 409)
        r = await self.client.post(
            f"/openvidu/api/sessions/{session}/connection", json={"role": role, "data": data}
        )
        assert r.status == 200, await r.text()
        token: str = (await r.json())["token"]
        return token

    async def peer(self) -> RpcPeer:
        ws = await self.client.ws_connect("/openvidu?sessionId=x")
        p = RpcPeer(ws)
        self.peers.append(p)
        return p

    async def joined(
        self, session: str = "S1", role: str = "PUBLISHER", metadata: str = "", data: str = ""
    ) -> tuple[RpcPeer, dict[str, Any]]:
        tok = await self.token(session, role, data)
        p = await self.peer()
        res = await p.call(
            "joinRoom",
            {
                "token": tok,
                "session": session,
                "platform": "test",
                "metadata": metadata,
                "secret": "",
            },
        )
        return p, res

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@pytest.fixture
async def sig(clock: ManualClock) -> AsyncIterator[Harness]:
    cfg = Config(store="memory", garbage_interval_s=0)
    routers: list[FakeRouter] = []

    def factory(session_id: str) -> FakeRouter:
        r = FakeRouter(session_id)
        routers.append(r)
        return r

    app = make_app(cfg, clock=clock, store=MemoryStore(), router_factory=factory)
    cred = base64.b64encode(f"OPENVIDUAPP:{SECRET}".encode()).decode()
    async with TestClient(TestServer(app), headers={"Authorization": f"Basic {cred}"}) as c:
        h = Harness(c)
        h.routers = routers

        async def capture(ev: ServerEvent) -> None:
            h.events.append(ev)

        app[EVENTS].subscribe(capture)
        yield h
        for p in h.peers:
            await p.close()
