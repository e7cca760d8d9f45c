"""The hub across nodes: hubs joined by a :class:`HubBridge` behave as one hub.

Each "node" is a :class:`Hub` with its bridge on a broker of one bus: memory brokers on one
:class:`MemoryBus`, or Redis brokers on a real ``redis-server`` (marked ``redis``). Clients
are in-memory outboxes; waits are on events with timeouts.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from tests.hub.test_hub import FakeOutbox, ev, sub
from tests.support.proc import MS
from vidhub.broker import Broker, BrokerUnavailable, MemoryBroker, MemoryBus
from vidhub.hub import Hub, HubBridge, HubSession

WAIT = 3000 * MS


class Box(FakeOutbox):
    """An outbox a test can wait on."""

    def __init__(self) -> None:
        super().__init__(capacity=100_000)
        self.changed = asyncio.Event()

    def send(self, frame: str) -> bool:
        self.changed.set()
        return super().send(frame)

    async def wait_for(self, n: int) -> list[dict[str, Any]]:
        async def reached() -> None:
            while len(self.frames) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), WAIT)
        return self.events()


@dataclass
class Node:
    hub: Hub
    bridge: HubBridge

    def client(self, name: str | None = None) -> tuple[HubSession, Box]:
        box = Box()
        return self.hub.open(name or uuid.uuid4().hex, "alice", box), box

    async def subscribe(self, session: HubSession, sub_id: str, expr: str, **meta: Any) -> None:
        result = self.hub.handle(session, [sub(sub_id, expr, **meta)])
        assert result.success, result.message
        if result.pending is not None:  # what the edge waits for before acking
            await asyncio.wait_for(result.pending, WAIT)


Nodes = Callable[[], Awaitable[Node]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def nodes(request: pytest.FixtureRequest) -> AsyncIterator[Nodes]:
    bus = MemoryBus()
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    made: list[tuple[Broker, HubBridge]] = []

    async def make() -> Node:
        broker: Broker
        if request.param == "memory":
            broker = MemoryBroker(bus)
        else:
            from vidhub.broker.redis import RedisBroker

            broker = RedisBroker(request.getfixturevalue("hub_redis").url)
        await broker.start()
        hub = Hub()
        bridge = HubBridge(hub, broker, f"node{len(made)}", prefix=prefix)
        await bridge.start()
        made.append((broker, bridge))
        return Node(hub, bridge)

    try:
        yield make
    finally:
        for broker, bridge in made:
            await bridge.close()
            await broker.close()


def ids(events: Sequence[dict[str, Any]]) -> list[str]:
    return [e["id"] for e in events]


async def test_an_event_published_on_one_node_reaches_subscribers_on_the_others(
    nodes: Nodes,
) -> None:
    a, b, c = await nodes(), await nodes(), await nodes()
    on_b, box_b = b.client()
    on_c, box_c = c.client()
    await b.subscribe(on_b, "s", "topic=shot.update")
    await c.subscribe(on_c, "s", "topic=shot.*")  # a wildcard: every topic goes to C
    pub, box_pub = a.client()
    assert a.hub.handle(pub, [ev("shot.update", id="e1", data={"n": 1})]).success
    assert ids(await box_b.wait_for(1)) == ["e1"]
    assert ids(await box_c.wait_for(1)) == ["e1"]
    assert box_pub.frames == []  # the publisher did not subscribe


async def test_a_node_receives_only_topics_its_subscribers_want(nodes: Nodes) -> None:
    a, b, c = await nodes(), await nodes(), await nodes()
    on_b, box_b = b.client()
    on_c, box_c = c.client()
    await b.subscribe(on_b, "s", "topic=wanted")
    await c.subscribe(on_c, "s", "topic=other")
    pub, _ = a.client()
    a.hub.handle(pub, [ev("unwanted", id="u1")])
    a.hub.handle(pub, [ev("wanted", id="w1")])
    assert ids(await box_b.wait_for(1)) == ["w1"]
    # one publisher's batches arrive in order: once C has "other", it has all it was sent
    a.hub.handle(pub, [ev("other", id="o1")])
    assert ids(await box_c.wait_for(1)) == ["o1"]
    # "unwanted" never reached B or C, and neither received the other's topic
    assert b.bridge.received_events == 1 and c.bridge.received_events == 1


async def test_each_publishers_order_is_kept_across_topics(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    on_b, box_b = b.client()
    await b.subscribe(on_b, "x", "topic=x")
    await b.subscribe(on_b, "y", "topic=y")
    await b.subscribe(on_b, "xy", "topic=x or topic=y")  # same session: still at most once
    pub, _ = a.client()
    sent = [f"{t}{i}-{j}" for i in range(50) for j, t in enumerate("xyx")]
    for eid in sent:
        a.hub.handle(pub, [ev(eid[0], id=eid)])
    assert ids(await box_b.wait_for(len(sent))) == sent


async def test_a_reply_reaches_the_publisher_on_another_node(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    asker, box_asker = a.client()
    await a.subscribe(asker, "hub-a", "topic=ftrack.meta.reply", applicationId="x")
    answerer, box_answerer = b.client()
    await b.subscribe(answerer, "hub-b", "topic=question")
    a.hub.handle(asker, [ev("question", id="q1", source={"id": "hub-a"})])
    (question,) = await box_answerer.wait_for(1)
    reply = ev(
        "ftrack.meta.reply",
        id="r1",
        target=f"id={question['source']['id']}",
        inReplyToEvent=question["id"],
        data={"answer": 42},
    )
    b.hub.handle(answerer, [reply])
    (got,) = await box_asker.wait_for(1)
    assert got["inReplyToEvent"] == "q1" and got["data"] == {"answer": 42}
    # a reply targeted at someone else is not delivered
    b.hub.handle(answerer, [dict(reply, id="r2", target="id=nobody")])
    b.hub.handle(answerer, [dict(reply, id="r3")])
    assert ids(await box_asker.wait_for(2)) == ["r1", "r3"]


async def test_server_events_reach_every_node(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    watcher, box = b.client()
    await b.subscribe(watcher, "w", "topic=vidhub.session.* and data.sessionId=s1")
    await a.hub.publish_server_event("vidhub.session.created", {"sessionId": "s1"})
    (got,) = await box.wait_for(1)
    assert got["topic"] == "vidhub.session.created"
    assert got["source"]["id"] == "vidhub-server"


async def test_moving_between_exact_and_wildcard_interest_loses_and_repeats_nothing(
    nodes: Nodes,
) -> None:
    a, b = await nodes(), await nodes()
    on_b, box = b.client()
    await b.subscribe(on_b, "exact", "topic=t")
    pub, _ = a.client()
    sent: list[str] = []

    def publish(n: int) -> None:
        for _ in range(n):
            sent.append(uuid.uuid4().hex)
            a.hub.handle(pub, [ev("t", id=sent[-1])])

    publish(20)
    result = b.hub.handle(on_b, [sub("wild", "topic=*")])  # now any topic may match
    publish(20)  # while B changes its subscriptions
    assert result.pending is not None
    await asyncio.wait_for(result.pending, WAIT)
    publish(20)
    b.hub.handle(on_b, [ev("ftrack.meta.unsubscribe", data={"subscriber": {"id": "wild"}})])
    publish(20)
    assert ids(await box.wait_for(len(sent))) == sent
    publish(1)  # later events still arrive, and nothing arrived twice
    assert ids(await box.wait_for(len(sent))) == sent


class FlakyBroker(MemoryBroker):
    """A broker whose bus is unreachable for the next ``failures`` publishes (staged fault)."""

    def __init__(self, bus: MemoryBus) -> None:
        super().__init__(bus)
        self.failures = 0
        self.failed = asyncio.Event()

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if self.failures > 0:
            self.failures -= 1
            self.failed.set()
            raise BrokerUnavailable()
        await super().publish_many(messages)


async def test_events_published_while_the_bus_is_down_go_out_when_it_returns() -> None:
    bus = MemoryBus()
    flaky, plain = FlakyBroker(bus), MemoryBroker(bus)
    hub_a, hub_b = Hub(), Hub()
    bridges = [HubBridge(hub_a, flaky, "a"), HubBridge(hub_b, plain, "b")]
    for broker in (flaky, plain):
        await broker.start()
    for bridge in bridges:
        await bridge.start()
    try:
        node_b = Node(hub_b, bridges[1])
        on_b, box = node_b.client()
        await node_b.subscribe(on_b, "s", "topic=t")
        flaky.failures = 2
        pub = hub_a.open("p", "alice", Box())
        for i in range(5):
            hub_a.handle(pub, [ev("t", id=f"e{i}")])
        assert ids(await box.wait_for(5)) == [f"e{i}" for i in range(5)]
        assert flaky.failed.is_set()
    finally:
        for bridge in bridges:
            await bridge.close()
        for broker in (flaky, plain):
            await broker.close()


async def test_an_event_id_used_again_later_is_delivered_again(nodes: Nodes) -> None:
    a, b = await nodes(), await nodes()
    on_b, box = b.client()
    await b.subscribe(on_b, "s", "topic=t")
    pub, _ = a.client()
    for _ in range(3):  # some clients number their events per run
        a.hub.handle(pub, [ev("t", id="same")])
    assert ids(await box.wait_for(3)) == ["same"] * 3


async def test_a_parked_session_resumes_on_another_node(nodes: Nodes) -> None:
    a, b, _c = await nodes(), await nodes(), await nodes()
    box_a = Box()
    parked = a.hub.open("old-sid", "alice", box_a, resumable=True)
    await a.subscribe(parked, "s", "topic=t", applicationId="app")
    pub, _ = a.client()
    a.hub.handle(pub, [ev("t", id="seen")])
    a.hub.detach(parked)  # the socket dropped: events are kept for it
    a.hub.handle(pub, [ev("t", id="missed-1")])
    a.hub.handle(pub, [ev("t", id="missed-2")])
    assert b.hub.take_over is not None
    assert await b.hub.take_over("old-sid", "mallory") is None  # another user's: refused
    assert await b.hub.take_over("unknown", "alice") is None  # every node said no
    state = await b.hub.take_over("old-sid", "alice")
    assert state is not None and "old-sid" not in a.hub.sessions
    box_b = Box()
    session, missed = b.hub.adopt(state, "new-sid", "alice", box_b, "seen")
    assert [e.split('"id":"')[1].split('"')[0] for e in missed] == ["missed-1", "missed-2"]
    assert session.registrations["s"].metadata == {"id": "s", "applicationId": "app"}
    # its subscriptions now work on the new node, for events published anywhere
    sync = b.hub.interest_synced() if b.hub.interest_synced is not None else None
    if sync is not None:
        await asyncio.wait_for(sync, WAIT)
    a.hub.handle(pub, [ev("t", id="after")])
    assert ids(await box_b.wait_for(1)) == ["after"]


async def test_events_routed_before_the_bridge_starts_go_out_when_it_does() -> None:
    bus = MemoryBus()
    brokers = [MemoryBroker(bus), MemoryBroker(bus)]
    for broker in brokers:
        await broker.start()
    hub_a, hub_b = Hub(), Hub()
    bridge_b = HubBridge(hub_b, brokers[1], "b")
    await bridge_b.start()
    bridge_a = HubBridge(hub_a, brokers[0], "a")  # built, not started (the node is starting)
    try:
        node_b = Node(hub_b, bridge_b)
        on_b, box = node_b.client()
        await node_b.subscribe(on_b, "s", "topic=vidhub.participant.left")
        await hub_a.publish_server_event("vidhub.participant.left", {"reason": "restart"})
        await bridge_a.start()
        (got,) = await box.wait_for(1)
        assert got["data"] == {"reason": "restart"}
    finally:
        for bridge in (bridge_a, bridge_b):
            await bridge.close()
        for broker in brokers:
            await broker.close()
