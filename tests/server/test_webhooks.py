"""OpenVidu webhooks (openvidu.md §4) delivered to a real aiohttp receiver on loopback."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.support.events import sample_event
from tests.support.proc import MS, free_port
from vidhub.client import Participant, WebhookSignatureError, verify_webhook
from vidhub.clock import ManualClock
from vidhub.config import Config, WebhookConfig
from vidhub.core.events import ServerEvent
from vidhub.protocol import jsoncodec
from vidhub.server.app import make_app
from vidhub.server.webhooks import WEBHOOKS, WebhookSender
from vidhub.store import MemoryStore

SECRET = "MY_SECRET"
T = 5000 * MS


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return jsoncodec.loads(self.body)


class Receiver:
    """A webhook endpoint: records every request, answers scripted statuses (then 200)."""

    def __init__(self) -> None:
        self.got: asyncio.Queue[Delivery] = asyncio.Queue()
        self.statuses: list[int] = []
        #: while set to an unset Event, requests wait on it before answering
        self.gate: asyncio.Event | None = None
        #: requests (counted from 1) that never answer until the client gives up
        self.hang: set[int] = set()
        self.count = 0
        self._server: TestServer | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.count += 1
        n = self.count
        self.got.put_nowait(Delivery(dict(request.headers), await request.read()))
        if n in self.hang:
            await asyncio.Event().wait()  # the client times out and drops the connection
        if self.gate is not None:
            await self.gate.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return str(self._server.make_url("/hook"))

    async def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        if self._server is not None:
            await self._server.close()

    async def next(self) -> Delivery:
        return await asyncio.wait_for(self.got.get(), T)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    await r.close()


@asynccontextmanager
async def vidhub(
    endpoint: str, clock: ManualClock | None = None, **webhook: Any
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """An in-process vidhub with webhooks on, configured by injection (no env vars)."""
    cfg = Config(
        store="memory",
        garbage_interval_s=0,
        webhook=WebhookConfig(enabled=True, endpoint=endpoint, **webhook),
    )
    app = make_app(cfg, clock=clock or ManualClock(), store=MemoryStore())
    cred = base64.b64encode(f"OPENVIDUAPP:{SECRET}".encode()).decode()
    async with TestClient(TestServer(app), headers={"Authorization": f"Basic {cred}"}) as c:
        yield c


async def create_session(c: TestClient[web.Request, web.Application], sid: str) -> Any:
    r = await c.post("/openvidu/api/sessions", json={"customSessionId": sid})
    assert r.status == 200
    return await r.json()


def event(name: str, sid: str) -> ServerEvent:
    return sample_event(name, sid)


# -- through the app -------------------------------------------------------------------------


async def test_session_created_arrives_signed_with_openvidu_fields(receiver: Receiver) -> None:
    url = await receiver.start()
    clock = ManualClock()
    async with vidhub(url, clock) as c:
        session = await create_session(c, "s1")
        d = await receiver.next()
    assert d.json == {
        "sessionId": "s1",
        "uniqueSessionId": f"s1_{session['createdAt']}",
        "timestamp": session["createdAt"],
        "event": "sessionCreated",
    }
    assert list(d.json)[-1] == "event"
    assert d.headers["Content-Type"] == "application/json"
    # the default signing key is the server secret; the timestamp is the app's clock
    now_s = clock.now_ms() / 1000
    assert verify_webhook(SECRET, d.headers, d.body, now_s=now_s) == d.json
    with pytest.raises(WebhookSignatureError):
        verify_webhook("not the secret", d.headers, d.body, now_s=now_s)


async def test_events_arrive_in_order(receiver: Receiver) -> None:
    url = await receiver.start()
    clock = ManualClock()
    async with vidhub(url, clock) as c:
        for sid in ("a", "b", "c"):
            await create_session(c, sid)
        clock.advance(5)
        r = await c.delete("/openvidu/api/sessions/b")
        assert r.status == 204
        got = [(await receiver.next()).json for _ in range(4)]
    assert [(e["event"], e["sessionId"]) for e in got] == [
        ("sessionCreated", "a"),
        ("sessionCreated", "b"),
        ("sessionCreated", "c"),
        ("sessionDestroyed", "b"),
    ]
    destroyed = got[3]
    assert destroyed["reason"] == "sessionClosedByServer"
    assert destroyed["startTime"] == got[1]["timestamp"]
    assert destroyed["duration"] == 5
    assert destroyed["timestamp"] == got[1]["timestamp"] + 5000


async def test_custom_headers_and_signing_key(receiver: Receiver) -> None:
    url = await receiver.start()
    headers = (("Authorization", "Basic T1BFTlZJRFVBUFA6c2VjcmV0"), ("X-Tenant", "blue"))
    clock = ManualClock()
    async with vidhub(url, clock, headers=headers, signing_key="hook-key") as c:
        await create_session(c, "s1")
        d = await receiver.next()
    assert d.headers["Authorization"] == "Basic T1BFTlZJRFVBUFA6c2VjcmV0"
    assert d.headers["X-Tenant"] == "blue"
    now_s = clock.now_ms() / 1000
    assert verify_webhook("hook-key", d.headers, d.body, now_s=now_s)["sessionId"] == "s1"
    with pytest.raises(WebhookSignatureError):
        verify_webhook(SECRET, d.headers, d.body, now_s=now_s)


async def test_only_selected_events_are_sent(receiver: Receiver) -> None:
    url = await receiver.start()
    async with vidhub(url, events=("sessionDestroyed",)) as c:
        await create_session(c, "s1")
        await create_session(c, "s2")
        assert (await c.delete("/openvidu/api/sessions/s1")).status == 204
        first = await receiver.next()
    # serial delivery: had a sessionCreated been sent, it would have come first
    assert first.json["event"] == "sessionDestroyed"
    assert first.json["sessionId"] == "s1"
    assert receiver.got.empty()


async def test_retried_after_a_503(receiver: Receiver) -> None:
    receiver.statuses = [503]
    url = await receiver.start()
    async with vidhub(url) as c:
        sender = c.app[WEBHOOKS]
        sender.backoff_s = 10 * MS
        await create_session(c, "s1")
        await create_session(c, "s2")
        first, second, third = [await receiver.next() for _ in range(3)]
    # the app's shutdown drained the queue, so the counters are final
    stats = next(iter(sender.stats().values()))
    assert (stats.delivered, stats.retried, stats.failed) == (2, 1, 0)
    assert first.body == second.body  # the same event again
    assert second.json["sessionId"] == "s1"
    assert third.json["sessionId"] == "s2"  # order kept across the retry


@pytest.mark.parametrize("status", [400, 404, 307])
async def test_a_refusal_is_logged_and_dropped_not_retried(
    receiver: Receiver, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [status]
    url = await receiver.start()
    with caplog.at_level(logging.WARNING, logger="vidhub.server.webhooks"):
        async with vidhub(url) as c:
            await create_session(c, "s1")
            await create_session(c, "s2")
            first, second = await receiver.next(), await receiver.next()
            sender = c.app[WEBHOOKS]
    stats = next(iter(sender.stats().values()))  # final: shutdown drained the queue
    assert (stats.delivered, stats.retried, stats.failed) == (1, 0, 1)
    assert (first.json["sessionId"], second.json["sessionId"]) == ("s1", "s2")
    assert f"answered {status}" in caplog.text


async def test_a_stuck_receiver_does_not_slow_rest(receiver: Receiver) -> None:
    receiver.gate = asyncio.Event()
    url = await receiver.start()
    async with vidhub(url) as c:
        await create_session(c, "s0")
        await receiver.next()  # the first delivery is now held by the receiver
        for i in range(1, 20):
            await asyncio.wait_for(create_session(c, f"s{i}"), T)
        # every REST call answered while the first webhook is still unanswered
        assert not receiver.gate.is_set()
        assert receiver.got.empty()
        receiver.gate.set()
        ids = [(await receiver.next()).json["sessionId"] for _ in range(1, 20)]
    assert ids == [f"s{i}" for i in range(1, 20)]


async def test_an_unreachable_receiver_does_not_fail_rest() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    async with vidhub(url) as c:
        c.app[WEBHOOKS].drain_s = 0
        for i in range(5):
            await create_session(c, f"s{i}")
        r = await c.get("/openvidu/api/sessions")
        assert r.status == 200
        assert (await r.json())["numberOfElements"] == 5


async def test_webhooks_off_by_default(client: TestClient[web.Request, web.Application]) -> None:
    assert WEBHOOKS not in client.app


# -- the sender on its own ------------------------------------------------------------------------


def make_sender(url: str, **kw: Any) -> WebhookSender:
    kw.setdefault("events", ("sessionCreated", "sessionDestroyed"))
    kw.setdefault("signing_key", "k")
    kw.setdefault("drain_s", T)
    return WebhookSender([url], **kw)


async def test_connection_errors_are_retried_with_backoff_then_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sender = make_sender(f"http://127.0.0.1:{free_port()}/hook", max_attempts=3, backoff_s=MS)
    await sender.start()
    sender.on_event(event("sessionCreated", "s1"))
    with caplog.at_level(logging.INFO, logger="vidhub.server.webhooks"):
        await asyncio.wait_for(sender.stop(), T)  # drains: all attempts made
    stats = next(iter(sender.stats().values()))
    assert (stats.delivered, stats.retried, stats.failed) == (0, 2, 1)
    assert "failed 3 times" in caplog.text


async def test_a_timeout_is_retried(receiver: Receiver) -> None:
    receiver.hang = {1}
    url = await receiver.start()
    sender = make_sender(url, timeout_s=200 * MS, backoff_s=MS)
    await sender.start()
    sender.on_event(event("sessionCreated", "s1"))
    first, second = await receiver.next(), await receiver.next()
    await sender.stop()  # drains: the counters are final
    assert first.body == second.body
    stats = next(iter(sender.stats().values()))
    assert (stats.delivered, stats.retried) == (1, 1)


async def test_full_queue_drops_the_oldest_with_a_warning(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    url = await receiver.start()
    sender = make_sender(url, queue_size=3)
    with caplog.at_level(logging.WARNING, logger="vidhub.server.webhooks"):
        for i in range(5):  # not started yet: nothing is taken off the queue
            sender.on_event(event("sessionCreated", f"s{i}"))
    stats = next(iter(sender.stats().values()))
    assert stats.dropped == 2
    assert "dropped the oldest" in caplog.text
    await sender.start()
    ids = [(await receiver.next()).json["sessionId"] for _ in range(3)]
    await sender.stop()
    assert ids == ["s2", "s3", "s4"]
    assert receiver.got.empty()


async def test_events_not_selected_are_ignored(receiver: Receiver) -> None:
    url = await receiver.start()
    sender = make_sender(url, events=("sessionDestroyed",))
    await sender.start()
    sender.on_event(event("sessionCreated", "s1"))
    sender.on_event(event("sessionDestroyed", "s1"))
    d = await receiver.next()
    await sender.stop()
    assert d.json["event"] == "sessionDestroyed"
    assert next(iter(sender.stats().values())).queued == 1


async def test_shutdown_drains_queued_events(receiver: Receiver) -> None:
    url = await receiver.start()
    sender = make_sender(url)
    await sender.start()
    for i in range(10):
        sender.on_event(event("sessionCreated", f"s{i}"))
    await asyncio.wait_for(sender.stop(), T)
    assert receiver.got.qsize() == 10
    sender.on_event(event("sessionCreated", "late"))  # after stop: ignored
    assert next(iter(sender.stats().values())).queued == 10


async def test_shutdown_with_a_stuck_receiver_is_bounded(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.gate = asyncio.Event()
    url = await receiver.start()
    sender = make_sender(url, drain_s=50 * MS)
    await sender.start()
    sender.on_event(event("sessionCreated", "s1"))
    sender.on_event(event("sessionCreated", "s2"))
    await receiver.next()
    with caplog.at_level(logging.WARNING, logger="vidhub.server.webhooks"):
        await asyncio.wait_for(sender.stop(), T)
    assert "2 webhook events undelivered" in caplog.text  # the held one and the queued one


async def test_secrets_in_headers_and_url_are_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    sender = make_sender(
        f"http://user:pw-in-url@127.0.0.1:{port}/hook?token=qs-secret",
        headers=[("Authorization", "Bearer header-secret")],
        max_attempts=2,
        backoff_s=MS,
    )
    await sender.start()
    sender.on_event(event("sessionCreated", "s1"))
    with caplog.at_level(logging.DEBUG, logger="vidhub.server.webhooks"):
        await asyncio.wait_for(sender.stop(), T)
    assert f"127.0.0.1:{port}/hook" in caplog.text
    for secret in ("pw-in-url", "qs-secret", "header-secret"):
        assert secret not in caplog.text


async def test_participant_life_arrives_in_openvidu_order(receiver: Receiver) -> None:
    url = await receiver.start()
    async with vidhub(url) as c:
        await create_session(c, "room")
        r = await c.post("/openvidu/api/sessions/room/connection", json={"data": "srv"})
        conn = await r.json()
        bot = Participant(conn["token"], metadata="alice")
        await bot.join()
        r = await c.post(
            "/openvidu/api/signal",
            json={"session": "room", "type": "chat", "data": "hi", "to": [conn["id"]]},
        )
        assert r.status == 200
        await bot.leave()
        got = [(await receiver.next()).json for _ in range(5)]
    assert [e["event"] for e in got] == [
        "sessionCreated",
        "participantJoined",
        "signalSent",
        "participantLeft",
        "sessionDestroyed",
    ]
    joined, signal, left, destroyed = got[1:]
    assert joined["connectionId"] == joined["participantId"] == conn["id"]
    assert joined["clientData"] == "alice"
    assert joined["serverData"] == "srv"
    assert {"sessionId", "uniqueSessionId", "timestamp", "location", "ip", "platform"} <= set(
        joined
    )
    assert (signal["from"], signal["to"], signal["type"], signal["data"]) == (
        None,
        [conn["id"]],
        "chat",
        "hi",
    )
    assert left["connectionId"] == conn["id"]
    assert left["reason"] == "disconnect"
    assert {"startTime", "duration"} <= set(left)
    assert destroyed["reason"] == "lastParticipantLeft"
