"""``Websocket`` against a small aiohttp echo server on loopback (rtcbot.md §2, §4)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.proc import MS, free_port
from vidhub.client import SubscriptionClosed, Websocket

T = 3000 * MS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def echo_handler(request: web.Request) -> web.StreamResponse:
    """rtcbot's test server, written the way its docs recommend: echo until the peer goes."""
    ws = Websocket(request)
    ws.subscribe(ws.put_nowait)
    await ws
    return ws.response


class Loopback:
    """An aiohttp server on 127.0.0.1 with an echo route and per-test routes."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_get("/ws", echo_handler)
        self.server: TestServer | None = None

    def route(self, path: str, handler: Handler) -> None:
        self.app.router.add_get(path, handler)

    def url(self, path: str) -> str:
        assert self.server is not None
        return str(self.server.make_url(path))

    async def start(self) -> None:
        self.server = TestServer(self.app, host="127.0.0.1")
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def loopback() -> AsyncIterator[Loopback]:
    lb = Loopback()
    yield lb
    await lb.close()


# -- rtcbot's tests/test_websocket.py -----------------------------------------------------------


async def test_websocket_echo_round_trip(loopback: Loopback) -> None:
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    assert not ws.ready
    ws.put_nowait("Hello")  # before ready: queued and sent once connected
    assert await asyncio.wait_for(ws.get(), T) == "Hello"
    assert ws.ready
    ws.put_nowait({"a": 1, "b": [1, 2, None]})
    assert await asyncio.wait_for(ws.get(), T) == {"a": 1, "b": [1, 2, None]}
    s = ws.onClose()
    await asyncio.wait_for(ws.close(), T)
    await asyncio.wait_for(s, T)
    assert ws.closed
    assert not ws.ready
    assert ws.error is None


# -- client mode --------------------------------------------------------------------------------


async def test_items_put_before_ready_are_sent_in_order(loopback: Loopback) -> None:
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    items: list[Any] = ["early1", {"a": 1}, [1, 2], 3, None, True]
    for item in items:
        ws.put_nowait(item)
    got = [await asyncio.wait_for(ws.get(), T) for _ in items]
    assert got == items
    await ws.close()


async def test_http_scheme_url_works_and_ready_fires(loopback: Loopback) -> None:
    await loopback.start()
    url = loopback.url("/ws")
    assert url.startswith("http://127.0.0.1:")
    ws = Websocket(url)
    fired: list[str] = []
    ws.onReady(lambda: fired.append("ready"))
    await asyncio.wait_for(ws.onReady(), T)
    assert ws.ready
    await ws.close()
    assert fired == ["ready"]  # not again on close (our documented choice)


async def test_subscribers_of_every_kind_receive_messages(loopback: Loopback) -> None:
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    q: asyncio.Queue[Any] = asyncio.Queue()
    sync_seen: asyncio.Queue[Any] = asyncio.Queue()
    async_seen: asyncio.Queue[Any] = asyncio.Queue()

    async def on_async(msg: Any) -> None:
        async_seen.put_nowait(msg)

    assert ws.subscribe(q) is q
    ws.subscribe(sync_seen.put_nowait)
    ws.subscribe(on_async)
    ws.put_nowait({"n": 1})
    for queue in (q, sync_seen, async_seen):
        assert await asyncio.wait_for(queue.get(), T) == {"n": 1}
    ws.unsubscribe(q)
    ws.put_nowait({"n": 2})
    assert await asyncio.wait_for(sync_seen.get(), T) == {"n": 2}
    assert q.empty()
    await ws.close()


async def test_put_subscription_relays_a_queue(loopback: Loopback) -> None:
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    src: asyncio.Queue[Any] = asyncio.Queue()
    ws.putSubscription(src)
    assert ws.subscription is src
    src.put_nowait("via queue")
    assert await asyncio.wait_for(ws.get(), T) == "via queue"
    ws.put_nowait("direct")  # stops reading src
    assert ws.subscription is None
    assert await asyncio.wait_for(ws.get(), T) == "direct"
    await ws.close()


async def test_binary_frames_round_trip_as_bytes(loopback: Loopback) -> None:
    """Choice: rtcbot drops binary frames; we deliver them as ``bytes`` and send bytes."""
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    ws.put_nowait(b"\x00\x01binary")
    assert await asyncio.wait_for(ws.get(), T) == b"\x00\x01binary"
    await ws.close()


async def test_text_that_is_not_json_arrives_raw(loopback: Loopback) -> None:
    async def raw(request: web.Request) -> web.StreamResponse:
        resp = web.WebSocketResponse()
        await resp.prepare(request)
        await resp.send_str("not json {")
        await resp.send_str("[1,2]")
        await resp.send_str('"quoted"')
        await resp.receive()  # until the client closes
        return resp

    loopback.route("/raw", raw)
    await loopback.start()
    ws = Websocket(loopback.url("/raw"))
    assert await asyncio.wait_for(ws.get(), T) == "not json {"
    assert await asyncio.wait_for(ws.get(), T) == [1, 2]
    assert await asyncio.wait_for(ws.get(), T) == "quoted"
    await ws.close()


async def test_json_false_passes_strings_through(loopback: Loopback) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()

    async def raw(request: web.Request) -> web.StreamResponse:
        resp = web.WebSocketResponse()
        await resp.prepare(request)
        await resp.send_str('{"kept": "as text"}')
        async for msg in resp:
            received.put_nowait(msg.data)
        return resp

    loopback.route("/raw", raw)
    await loopback.start()
    ws = Websocket(loopback.url("/raw"), json=False)
    assert await asyncio.wait_for(ws.get(), T) == '{"kept": "as text"}'
    ws.put_nowait("5:::{}")  # socket.io 0.9 packets are raw text
    assert await asyncio.wait_for(received.get(), T) == "5:::{}"
    await ws.close()


async def test_json_false_rejects_non_strings_and_closes(loopback: Loopback) -> None:
    await loopback.start()
    ws = Websocket(loopback.url("/ws"), json=False)
    ws.put_nowait({"not": "a string"})
    err = await asyncio.wait_for(ws.onError(), T)
    assert isinstance(err, TypeError)
    await asyncio.wait_for(ws, T)
    assert ws.closed
    assert ws.error is err


async def test_unserialisable_item_sets_error_and_closes(loopback: Loopback) -> None:
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    ws.put_nowait({"fine": 1})
    assert await asyncio.wait_for(ws.get(), T) == {"fine": 1}
    ws.put_nowait({object()})
    await asyncio.wait_for(ws, T)
    assert isinstance(ws.error, TypeError)
    assert ws.closed


async def test_close_sends_what_was_already_put(loopback: Loopback) -> None:
    received: asyncio.Queue[Any] = asyncio.Queue()
    closed = asyncio.Event()

    async def sink(request: web.Request) -> web.StreamResponse:
        ws = Websocket(request)
        ws.subscribe(received)
        # TestServer cancels handlers when the peer goes, so watch the object, not the handler
        ws.onClose(closed.set)
        await ws
        return ws.response

    loopback.route("/sink", sink)
    await loopback.start()
    ws = Websocket(loopback.url("/sink"))
    await asyncio.wait_for(ws.onReady(), T)
    for i in range(20):
        ws.put_nowait(i)
    await asyncio.wait_for(ws.close(), T)
    await asyncio.wait_for(closed.wait(), T)
    assert [received.get_nowait() for _ in range(20)] == list(range(20))


async def test_get_after_close_raises_subscription_closed(loopback: Loopback) -> None:
    """Choice: rtcbot's get() blocks forever after close."""
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    ws.put_nowait("x")
    assert await asyncio.wait_for(ws.get(), T) == "x"
    pending = asyncio.ensure_future(ws.get())
    await ws.close()
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(pending, T)
    with pytest.raises(SubscriptionClosed):
        await asyncio.wait_for(ws.get(), T)


async def test_close_is_idempotent_and_always_awaitable(loopback: Loopback) -> None:
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    await asyncio.wait_for(ws.onReady(), T)
    first = ws.close()
    second = ws.close()
    await asyncio.wait_for(first, T)
    await asyncio.wait_for(second, T)
    await ws.close()
    assert ws.closed


async def test_close_before_connected(loopback: Loopback) -> None:
    await loopback.start()
    ws = Websocket(loopback.url("/ws"))
    await asyncio.wait_for(ws.close(), T)
    assert ws.closed
    assert ws.error is None
    with pytest.raises(SubscriptionClosed):
        await ws.onReady()


async def test_remote_close_closes_the_client(loopback: Loopback) -> None:
    async def hang_up(request: web.Request) -> web.StreamResponse:
        resp = web.WebSocketResponse()
        await resp.prepare(request)
        await resp.send_str('"bye"')
        await resp.close()
        return resp

    loopback.route("/hangup", hang_up)
    await loopback.start()
    ws = Websocket(loopback.url("/hangup"))
    closes: list[str] = []
    ws.onClose(lambda: closes.append("closed"))
    assert await asyncio.wait_for(ws.get(), T) == "bye"
    await asyncio.wait_for(ws, T)
    assert ws.closed
    assert not ws.ready
    assert ws.error is None
    assert closes == ["closed"]


async def test_connection_refused_reports_error_and_closes() -> None:
    """Choice: rtcbot leaves a failed Websocket un-closed (``await ws`` hangs) and leaks the
    client session; ours reports the error, closes, and releases the session."""
    url = f"http://127.0.0.1:{free_port()}/ws"
    ws = Websocket(url)
    errors: list[BaseException] = []
    ws.onError(errors.append)
    ready = asyncio.ensure_future(ws.onReady())
    await asyncio.wait_for(ws, T)
    assert ws.closed
    assert not ws.ready
    assert isinstance(ws.error, aiohttp.ClientConnectionError)
    assert errors == [ws.error]
    with pytest.raises(aiohttp.ClientConnectionError):
        await asyncio.wait_for(ready, T)
    assert await ws.onError() is ws.error
    await ws.close()  # harmless


async def test_headers_are_sent_in_client_mode(loopback: Loopback) -> None:
    async def whoami(request: web.Request) -> web.StreamResponse:
        ws = Websocket(request)
        ws.put_nowait(request.headers.get("Authorization", ""))
        ws.subscribe(lambda _: None)
        await ws
        return ws.response

    loopback.route("/whoami", whoami)
    await loopback.start()
    ws = Websocket(loopback.url("/whoami"), headers={"Authorization": "Bearer t"})
    assert await asyncio.wait_for(ws.get(), T) == "Bearer t"
    await ws.close()


# -- server mode --------------------------------------------------------------------------------


async def test_server_side_sees_client_close(loopback: Loopback) -> None:
    server_side: asyncio.Queue[Websocket] = asyncio.Queue()

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = Websocket(request)
        server_side.put_nowait(ws)
        await ws
        return ws.response

    loopback.route("/track", handler)
    await loopback.start()
    client = Websocket(loopback.url("/track"))
    server = await asyncio.wait_for(server_side.get(), T)
    await asyncio.wait_for(server.onReady(), T)
    server.put_nowait({"from": "server"})
    assert await asyncio.wait_for(client.get(), T) == {"from": "server"}
    await client.close()
    await asyncio.wait_for(server, T)
    assert server.closed
    assert server.error is None


async def test_message_sent_before_the_server_reads_is_kept(loopback: Loopback) -> None:
    """Choice: rtcbot drops a message that arrives before the first get(); we hold it."""
    gate = asyncio.Event()

    async def late_reader(request: web.Request) -> web.StreamResponse:
        ws = Websocket(request)
        await ws.onReady()
        await gate.wait()
        ws.put_nowait({"echo": await ws.get()})
        await ws
        return ws.response

    loopback.route("/late", late_reader)
    await loopback.start()
    ws = Websocket(loopback.url("/late"))
    ws.put_nowait("early")
    # usually "early" is held before the server's first get(); either order must work, and
    # tests/client/test_subscriptions.py pins the hold itself
    gate.set()
    assert await asyncio.wait_for(ws.get(), T) == {"echo": "early"}
    await ws.close()


async def test_plain_http_request_to_a_websocket_handler_gets_400(loopback: Loopback) -> None:
    await loopback.start()
    async with aiohttp.ClientSession() as http, http.get(loopback.url("/ws")) as r:
        assert r.status == 400
        assert "upgrade" in (await r.text()).lower()
