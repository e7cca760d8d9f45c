"""``AsyncEventHub`` against a real ``vidhub serve``: the ftrack scenarios on asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.hubs import acked, apump
from tests.support.proc import MS, ServerProcess
from vidhub.client import Event
from vidhub.client.eventhub_async import AsyncEventHub
from vidhub.client.eventhub_types import EventHubConnectionError


@pytest.fixture
async def hubs(server: ServerProcess) -> AsyncIterator[list[AsyncEventHub]]:
    made: list[AsyncEventHub] = []
    yield made
    for hub in made:
        await hub.close()


async def connected(
    server: ServerProcess, made: list[AsyncEventHub], user: str = "alice", **kw: Any
) -> AsyncEventHub:
    hub = AsyncEventHub(server.url, user, server.secret, **kw)
    hub._auto_reconnect_delay = 0.2  # and up to a minute of tries, as in test_ftrack_peer
    hub._auto_reconnect_attempts = 300
    made.append(hub)
    await hub.connect()
    return hub


async def test_publish_subscribe_reply_and_coroutine_callbacks(
    server: ServerProcess, hubs: list[AsyncEventHub]
) -> None:
    a = await connected(server, hubs)
    b = await connected(server, hubs, "bob")
    got: list[Event] = []

    async def answer(event: Event) -> dict[str, str]:
        got.append(event)
        return {"answer": "42"}

    await b.subscribe("topic=async.q", answer)
    assert await apump([a, b], acked(a, b))
    replies: list[Event] = []
    question = Event(topic="async.q", data={"q": "vé"})
    await a.publish(question, on_reply=replies.append)
    assert await apump([a, b], lambda: bool(replies))
    assert got[0]["data"] == {"q": "vé"}
    assert replies[0]["data"] == {"answer": "42"}
    assert replies[0]["in_reply_to_event"] == question["id"]


async def test_priorities_stop_and_synchronous_publish(server: ServerProcess) -> None:
    hub = AsyncEventHub(server.url, "alice", server.secret)
    order: list[str] = []

    def first(event: Event) -> str:
        order.append("first")
        return "A"

    await hub.subscribe("topic=async.sync", lambda e: "C", priority=70)
    await hub.subscribe("topic=async.sync", first, priority=10)
    await hub.subscribe("topic=async.sync", lambda e: "B", priority=50)
    assert await hub.publish(Event(topic="async.sync"), synchronous=True) == ["A", "B", "C"]
    stopped = Event(topic="async.sync")
    stopped.stop()
    assert await hub.publish(stopped, synchronous=True) == ["A"]
    with pytest.raises(EventHubConnectionError):
        await hub.publish(Event(topic="x"))
    await hub.close()


async def test_subscription_context_and_unsubscribe(
    server: ServerProcess, hubs: list[AsyncEventHub]
) -> None:
    a = await connected(server, hubs)
    got: list[Event] = []
    async with a.subscription("topic=async.ctx", got.append):
        assert await apump([a], acked(a))
        await a.publish(Event(topic="async.ctx"))
        assert await apump([a], lambda: len(got) == 1)
    assert await apump([a], acked(a))
    await a.publish(Event(topic="async.ctx"))
    assert await apump([a], acked(a))
    assert await apump([a], lambda: len(got) > 1, 300 * MS) is False


async def test_resume_replays_missed_events(
    server: ServerProcess, hubs: list[AsyncEventHub]
) -> None:
    listener = await connected(server, hubs, resume=True)
    publisher = await connected(server, hubs, "bob")
    got: list[Event] = []
    await listener.subscribe("topic=async.resume", got.append)
    assert await apump([listener], acked(listener))
    await publisher.publish(Event(topic="async.resume", data={"n": "0"}))
    assert await apump([listener, publisher], lambda: len(got) == 1)
    await listener.disconnect(unsubscribe=False, reconnect=True)
    for n in range(1, 4):
        await publisher.publish(Event(topic="async.resume", data={"n": str(n)}))
    assert await apump([publisher], acked(publisher))
    await listener.connect()
    assert await apump([listener], lambda: len(got) >= 4)
    assert await apump([listener], lambda: len(got) > 4, 300 * MS) is False
    assert [e["data"]["n"] for e in got] == ["0", "1", "2", "3"]


async def test_reconnects_after_server_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    made: list[AsyncEventHub] = []
    try:
        listener = await connected(server, made)
        publisher = await connected(server, made, "bob")
        got: list[Event] = []
        await listener.subscribe("topic=async.restart", got.append)
        assert await apump([listener], acked(listener))
        await asyncio.to_thread(server.restart)
        assert await apump(
            [listener, publisher], lambda: listener.connected and publisher.connected, 60
        )
        assert await apump([listener], acked(listener))

        # the listener has resubscribed on its new socket (all its packets are acked)
        await publisher.publish(Event(topic="async.restart"))
        assert await apump([listener, publisher], lambda: bool(got))
    finally:
        for hub in made:
            await hub.close()
        server.stop()
