"""The event hub's HTTP edge in-process: handshake, auth, the socket.io session, bad input."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.proc import MS
from vidhub.config import Config
from vidhub.protocol import jsoncodec
from vidhub.server.app import make_app
from vidhub.server.eventhub import EVENTHUB
from vidhub.store import MemoryStore

Client = TestClient[Any, Any]
AUTH = {"ftrack-user": "alice", "ftrack-api-key": "MY_SECRET"}
WAIT = 2000 * MS


@pytest.fixture
async def hubclient() -> AsyncIterator[Client]:
    cfg = Config(store="memory", garbage_interval_s=0, hub_keys=("second-key",))
    app = make_app(cfg, store=MemoryStore())
    async with TestClient(TestServer(app)) as c:
        yield c


async def open_socket(c: Client, headers: dict[str, str] | None = None) -> Any:
    resp = await c.get("/socket.io/1/", headers=headers or AUTH)
    assert resp.status == 200
    sid = (await resp.text()).split(":")[0]
    ws = await c.ws_connect(f"/socket.io/1/websocket/{sid}")
    assert await recv(ws) == "1::"
    return ws


async def recv(ws: Any) -> str:
    msg = await asyncio.wait_for(ws.receive(), WAIT)
    assert msg.type is aiohttp.WSMsgType.TEXT, msg
    return str(msg.data)


def packet(ack: int, topic: str, **data: Any) -> str:
    event = {"id": f"e{ack}", "topic": topic, "data": data, "source": {"id": "x"}, "target": ""}
    return f"5:{ack}+::" + jsoncodec.dumps({"name": "ftrack.event", "args": [event]})


def subscribe(ack: int, sub_id: str, expr: str) -> str:
    return packet(ack, "ftrack.meta.subscribe", subscriber={"id": sub_id}, subscription=expr)


async def test_handshake_body_and_auth_forms(hubclient: Client) -> None:
    resp = await hubclient.get("/socket.io/1/", headers=AUTH)
    assert resp.status == 200
    assert re.fullmatch(r"[0-9a-f]{32}:60:60:websocket", await resp.text())
    ok = [
        hubclient.post("/socket.io/1/", headers=AUTH),
        hubclient.get("/socket.io/1/?api_user=bob&api_key=MY_SECRET"),
        hubclient.get(
            "/socket.io/1/", headers={"ftrack-api-user": "carol", "ftrack-api-key": "second-key"}
        ),
    ]
    for call in ok:
        assert (await call).status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"ftrack-user": "alice"},
        {"ftrack-user": "alice", "ftrack-api-key": "wrong"},
        {"ftrack-api-key": "MY_SECRET"},
    ],
)
async def test_bad_credentials_get_401_without_a_trace(
    hubclient: Client, headers: dict[str, str]
) -> None:
    resp = await hubclient.get("/socket.io/1/", headers=headers)
    assert resp.status == 401
    assert await resp.text() == "Unauthorized"


async def test_unknown_or_reused_sid_is_refused(hubclient: Client) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await hubclient.ws_connect("/socket.io/1/websocket/" + "0" * 32)
    assert info.value.status == 403
    resp = await hubclient.get("/socket.io/1/", headers=AUTH)
    sid = (await resp.text()).split(":")[0]
    ws = await hubclient.ws_connect(f"/socket.io/1/websocket/{sid}")
    await ws.close()
    with pytest.raises(aiohttp.WSServerHandshakeError):
        await hubclient.ws_connect(f"/socket.io/1/websocket/{sid}")


async def test_session_flow_acks_and_delivery(hubclient: Client) -> None:
    ws = await open_socket(hubclient)
    await ws.send_str(subscribe(1, "s1", "topic=t.a"))
    assert await recv(ws) == '6:::1+[{"success":true}]'
    await ws.send_str(packet(2, "t.a", k="vé"))
    frames = {await recv(ws), await recv(ws)}
    assert '6:::2+[{"success":true}]' in frames
    (event_frame,) = [f for f in frames if f.startswith("5:::")]
    body = jsoncodec.loads(event_frame[4:])
    assert body["name"] == "ftrack.event" and body["args"][0]["data"] == {"k": "vé"}
    await ws.send_str("2:::")  # heartbeat reply: nothing comes back
    await ws.send_str(packet(3, "ftrack.meta.connected"))
    assert await recv(ws) == (
        '6:::3+[{"success":false,"message":"topic \'ftrack.meta.connected\' cannot be published"}]'
    )
    await ws.close()


async def test_bad_frames_affect_only_their_sender(hubclient: Client) -> None:
    bad = await open_socket(hubclient)
    good = await open_socket(hubclient)
    await good.send_str(subscribe(1, "g", "topic=t.b"))
    assert await recv(good) == '6:::1+[{"success":true}]'
    for frame in ["", "8::", "2:", "9::x", "5:::not json", "5:::[1]", "garbage"]:
        await bad.send_str(frame)
    await bad.send_bytes(b"\x00\x01")
    await bad.send_str(subscribe(7, "b", "topic==x"))
    nack = jsoncodec.loads((await recv(bad))[len("6:::7+") :])
    assert nack[0]["success"] is False and "invalid expression" in nack[0]["message"]
    await bad.send_str('5:8+::{"name":"other.event","args":[]}')
    assert "unknown event" in await recv(bad)
    await bad.send_str("5:9+::{not json")
    assert (await recv(bad)).startswith('6:::9+[{"success":false')
    # the bad client is still served, and so is everyone else
    await bad.send_str(packet(10, "t.b", n="1"))
    assert await recv(bad) == '6:::10+[{"success":true}]'
    assert (await recv(good)).startswith("5:::")
    await bad.close()
    await good.close()


async def test_oversized_frame_is_refused_with_an_ack(hubclient: Client) -> None:
    limit = hubclient.app[EVENTHUB].hub.limits.max_frame_bytes
    ws = await open_socket(hubclient)
    await ws.send_str(packet(4, "t.big", blob="x" * (limit + 10)))
    reply = await recv(ws)
    assert reply.startswith('6:::4+[{"success":false') and "larger than" in reply
    await ws.send_str(packet(5, "t.small"))
    assert await recv(ws) == '6:::5+[{"success":true}]'
    await ws.close()


async def test_heartbeats_and_silent_sockets(hubclient: Client) -> None:
    edge = hubclient.app[EVENTHUB]
    ws = await open_socket(hubclient)
    edge.tick()
    assert await recv(ws) == "2::"
    edge.heartbeat_timeout_s = -1.0  # everyone is now "silent for too long"
    edge.tick()
    assert await recv(ws) == "0::"  # always before the close (§3.4)
    msg = await asyncio.wait_for(ws.receive(), WAIT)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_graceful_shutdown_sends_disconnect_first() -> None:
    app = make_app(Config(store="memory", garbage_interval_s=0), store=MemoryStore())
    c: Client = TestClient(TestServer(app))
    await c.start_server()
    try:
        ws = await open_socket(c)
        await c.server.close()  # runs on_shutdown
        assert await recv(ws) == "0::"
    finally:
        await c.close()


async def test_hub_is_published_as_server_event_publisher(hubclient: Client) -> None:
    from vidhub.server.keys import HUB

    ws = await open_socket(hubclient)
    await ws.send_str(subscribe(1, "s", "topic=vidhub.test"))
    assert await recv(ws) == '6:::1+[{"success":true}]'
    await hubclient.app[HUB].publish_server_event("vidhub.test", {"n": 1})
    body = jsoncodec.loads((await recv(ws))[4:])
    assert body["args"][0]["source"]["id"] == "vidhub-server"
    await ws.close()


async def test_an_internal_error_is_a_negative_ack_not_a_dropped_socket(
    hubclient: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = hubclient.app[EVENTHUB].hub
    ws = await open_socket(hubclient)
    real = hub.handle
    calls = 0

    def flaky(session: Any, args: list[Any]) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return real(session, args)

    monkeypatch.setattr(hub, "handle", flaky)
    await ws.send_str(packet(1, "t.x"))
    assert await recv(ws) == '6:::1+[{"success":false,"message":"internal error"}]'
    await ws.send_str(packet(2, "t.x"))
    assert await recv(ws) == '6:::2+[{"success":true}]'
    await ws.close()


class FakeTransport(asyncio.WriteTransport):
    def __init__(self) -> None:
        super().__init__()
        self.buffered = 0
        self.written: list[bytes] = []

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return False


class FakeWs:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed = False
        self.release = asyncio.Event()

    async def send_str(self, text: str) -> None:
        await self.release.wait()  # a transport that does not drain until told
        self.sent.append(text)

    async def close(self) -> None:
        self.closed = True


async def test_socket_outbox_writes_direct_then_queues_then_refuses() -> None:
    from vidhub.server.eventhub import _FrameCache, _Socket

    transport, ws = FakeTransport(), FakeWs()
    sock = _Socket(ws, transport, _FrameCache(), 2, 0.0)  # type: ignore[arg-type]
    assert sock.send("1::")
    assert transport.written == [b"\x81\x031::"]  # one unmasked text frame
    transport.buffered = 10**9  # the peer stopped reading
    assert sock.send("a") and sock.send("b")
    assert sock.send("c") is False  # beyond max_frames: a slow consumer
    sock.close("slow consumer")
    ws.release.set()
    assert sock._writer is not None
    await asyncio.wait_for(sock._writer, WAIT)
    assert ws.sent == ["0::"] and ws.closed  # queued frames dropped, 0:: then close


async def test_socket_outbox_is_bounded_in_characters_too() -> None:
    from vidhub.server.eventhub import _FrameCache, _Socket

    transport, ws = FakeTransport(), FakeWs()
    transport.buffered = 10**9
    sock = _Socket(ws, transport, _FrameCache(), 100, 0.0, max_chars=10)  # type: ignore[arg-type]
    assert sock.send("x" * 8) and sock.send("y" * 8)  # over the bound only after this one
    assert sock.send("z") is False
    ws.release.set()
    assert sock._writer is not None
    await asyncio.wait_for(sock._writer, WAIT)
    assert ws.sent == ["x" * 8, "y" * 8] and sock.queued_chars == 0
