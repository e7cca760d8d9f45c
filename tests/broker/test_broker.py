"""One behavioural suite for every :class:`vidhub.broker.Broker` engine.

The ``nodes`` fixture yields a factory of started brokers attached to one bus, as several
vidhub nodes would be: memory brokers on one :class:`MemoryBus`, or Redis brokers on a real
``redis-server`` on loopback (marked ``redis``). Tests use only the ABC and wait on events
with timeouts, never on sleeps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.proc import MS
from vidhub.broker import Broker, MemoryBroker, MemoryBus

#: How long a delivery may take before the test fails (loopback Redis answers in < 1 ms).
WAIT = 2000 * MS

Nodes = Callable[[], Awaitable[Broker]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    made: list[Broker] = []
    bus = MemoryBus()

    async def make() -> Broker:
        broker: Broker
        if request.param == "memory":
            broker = MemoryBroker(bus)
        else:
            from vidhub.broker.redis import RedisBroker

            broker = RedisBroker(request.getfixturevalue("broker_redis").url)
        await broker.start()
        made.append(broker)
        return broker

    try:
        yield make
    finally:
        for broker in made:
            await broker.close()


def channel() -> str:
    return f"test:{uuid.uuid4().hex}"


class Inbox:
    """A handler that records payloads and lets a test wait for a count of them."""

    def __init__(self) -> None:
        self.got: list[bytes] = []
        self._changed = asyncio.Event()

    async def __call__(self, payload: bytes) -> None:
        self.got.append(payload)
        self._changed.set()

    async def wait_for(self, n: int) -> list[bytes]:
        async def reached() -> None:
            while len(self.got) < n:
                self._changed.clear()
                await self._changed.wait()

        await asyncio.wait_for(reached(), WAIT)
        return self.got


async def test_a_message_reaches_a_subscriber_on_another_node(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    ch, inbox = channel(), Inbox()
    await b.subscribe(ch, inbox)
    assert await a.publish(ch, b"hello \x00 bytes") == 1
    assert await inbox.wait_for(1) == [b"hello \x00 bytes"]


async def test_publishing_to_nobody_reports_zero(nodes: Nodes) -> None:
    a = await nodes()
    assert await a.publish(channel(), b"x") == 0


async def test_every_subscribed_node_receives_it_the_publisher_included(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    ch, on_a, on_b = channel(), Inbox(), Inbox()
    await a.subscribe(ch, on_a)
    await b.subscribe(ch, on_b)
    assert await a.publish(ch, b"all") == 2
    assert await on_a.wait_for(1) == [b"all"]
    assert await on_b.wait_for(1) == [b"all"]


async def test_two_handlers_on_one_node_count_as_one_receiver(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    ch, first, second = channel(), Inbox(), Inbox()
    await b.subscribe(ch, first)
    await b.subscribe(ch, second)
    assert await a.publish(ch, b"m") == 1
    assert await first.wait_for(1) == [b"m"]
    assert await second.wait_for(1) == [b"m"]


async def test_messages_arrive_in_publish_order(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    ch, inbox = channel(), Inbox()
    await b.subscribe(ch, inbox)
    sent = [f"m{i}".encode() for i in range(200)]
    for payload in sent:
        await a.publish(ch, payload)
    assert await inbox.wait_for(len(sent)) == sent


async def test_channels_are_separate(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    ch1, ch2, in1, in2 = channel(), channel(), Inbox(), Inbox()
    await b.subscribe(ch1, in1)
    await b.subscribe(ch2, in2)
    await a.publish(ch1, b"one")
    await a.publish(ch2, b"two")
    assert await in2.wait_for(1) == [b"two"]
    assert await in1.wait_for(1) == [b"one"]


async def test_a_failing_handler_never_stops_delivery(
    nodes: Nodes, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await nodes(), await nodes()
    ch, inbox = channel(), Inbox()

    async def broken(payload: bytes) -> None:
        raise RuntimeError("listener bug")

    await b.subscribe(ch, broken)
    await b.subscribe(ch, inbox)
    await a.publish(ch, b"1")
    await a.publish(ch, b"2")
    assert await inbox.wait_for(2) == [b"1", b"2"]
    assert "listener bug" in caplog.text


async def test_unsubscribe_stops_delivery_and_is_idempotent(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    ch, gone, stays = channel(), Inbox(), Inbox()
    unsubscribe = await b.subscribe(ch, gone)
    await b.subscribe(ch, stays)
    await unsubscribe()
    await unsubscribe()
    assert await a.publish(ch, b"after") == 1
    assert await stays.wait_for(1) == [b"after"]
    assert gone.got == []


async def test_the_last_unsubscribe_leaves_the_channel(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    ch, inbox = channel(), Inbox()
    unsubscribe = await b.subscribe(ch, inbox)
    await unsubscribe()
    # a marker on a channel b still holds orders this check after the UNSUBSCRIBE
    marker, seen = channel(), Inbox()
    await b.subscribe(marker, seen)
    await a.publish(marker, b"m")
    await seen.wait_for(1)
    assert await a.publish(ch, b"x") == 0


async def test_close_is_idempotent_and_leaves_every_channel(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    ch, inbox = channel(), Inbox()
    await b.subscribe(ch, inbox)
    await b.close()
    await b.close()
    assert await a.publish(ch, b"x") == 0
    assert inbox.got == []


async def test_a_handler_may_publish(nodes: Nodes) -> None:
    """Request/reply: a handler answers on another channel from inside delivery."""
    a, b = await nodes(), await nodes()
    requests, replies, inbox = channel(), channel(), Inbox()

    async def answer(payload: bytes) -> None:
        await b.publish(replies, payload + b"!")

    await b.subscribe(requests, answer)
    await a.subscribe(replies, inbox)
    await a.publish(requests, b"ping")
    assert await inbox.wait_for(1) == [b"ping!"]


async def test_publish_many_keeps_the_order_across_channels(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    one, two = channel(), channel()
    inbox = Inbox()
    await b.subscribe(one, inbox)
    await b.subscribe(two, inbox)
    messages = [(one if i % 3 else two, f"m{i}".encode()) for i in range(30)]
    await a.publish_many(messages)
    await a.publish_many([])
    assert await inbox.wait_for(30) == [payload for _, payload in messages]
