"""Door limits of the event hub socket: the open-socket cap (1013) and the per-socket frame
rate (negative acks beyond it, other clients unaffected)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from tests.server.test_eventhub import AUTH, WAIT, open_socket, packet, recv
from vidhub.config import Config
from vidhub.protocol import jsoncodec
from vidhub.server.app import make_app
from vidhub.server.limits import LIMITS
from vidhub.store import MemoryStore


def _app(**cfg: Any) -> Any:
    return make_app(Config(store="memory", garbage_interval_s=0, **cfg), store=MemoryStore())


def _ack(frame: str) -> tuple[int, dict[str, Any]]:
    head, _, body = frame.partition("+")
    return int(head.split(":")[3]), jsoncodec.loads(body)[0]


async def test_hub_sockets_beyond_the_cap_are_closed_with_1013() -> None:
    async with TestClient(TestServer(_app(max_websockets_per_ip=2))) as c:
        held = [await open_socket(c) for _ in range(2)]
        resp = await c.get("/socket.io/1/", headers=AUTH)
        sid = (await resp.text()).split(":")[0]
        extra = await c.ws_connect(f"/socket.io/1/websocket/{sid}")
        msg = await asyncio.wait_for(extra.receive(), WAIT)
        assert msg.type is aiohttp.WSMsgType.CLOSE
        assert extra.close_code == 1013
        assert c.app[LIMITS].count("websocket_refused") == 1
        await held[0].send_str(packet(1, "t.a"))
        assert _ack(await recv(held[0])) == (1, {"success": True})
        for ws in held:
            await ws.close()


async def test_a_flooding_hub_socket_gets_negative_acks_and_others_are_served() -> None:
    async with TestClient(TestServer(_app(hub_rate=10.0))) as c:  # bursts of 20
        flood, other = await open_socket(c), await open_socket(c)
        for i in range(60):
            await flood.send_str(packet(i, "t.a"))
        acks = [_ack(await recv(flood)) for _ in range(60)]
        refused = [a for a in acks if not a[1]["success"]]
        assert 20 <= len(refused) <= 40
        assert all("too many frames" in a[1]["message"] for a in refused)
        await other.send_str(packet(1, "t.b"))
        assert _ack(await recv(other)) == (1, {"success": True})
        assert c.app[LIMITS].count("hub_rate") == len(refused)
        await flood.close()
        await other.close()
