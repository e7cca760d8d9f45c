"""The cluster relay routes live-participant actions to the node serving the target.

Nodes here are :class:`ClusterGateway`s on one in-memory bus, each wrapping a fake local
gateway that records what it was asked; the store says which node serves which connection.
Waits are on events with timeouts, never sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from tests.support.proc import MS
from vidhub.broker import MemoryBroker, MemoryBus
from vidhub.cluster import ClusterGateway, node_channel
from vidhub.core.models import (
    Connection,
    ConnectionId,
    MediaOptions,
    Publisher,
    Session,
    SessionId,
)
from vidhub.protocol import cluster as wire
from vidhub.protocol.openvidu_rest import ConnectionProperties, SessionProperties
from vidhub.store import MemoryStore

WAIT = 2000 * MS
SID = "s1"


@dataclass
class FakeLocal:
    """A node's own gateway: records calls; ``streams`` it can unpublish; hooks to misbehave."""

    streams: set[str] = field(default_factory=set)
    calls: list[tuple[object, ...]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    fail: bool = False
    hang: asyncio.Event | None = None

    def _record(self, *call: object) -> None:
        self.calls.append(call)
        self.changed.set()

    async def send_signal(
        self, session_id: str, to: list[str], sender: str | None, type_: str, data: str
    ) -> None:
        self._record("signal", session_id, tuple(to), sender, type_, data)

    async def evict(self, session_id: str, connection_id: str, reason: str) -> None:
        if self.fail:
            raise RuntimeError("local evict bug")
        self._record("evict", session_id, connection_id, reason)

    async def force_unpublish(self, session_id: str, stream_id: str, reason: str) -> bool:
        if self.hang is not None:
            await self.hang.wait()
        self._record("unpublish", session_id, stream_id, reason)
        return stream_id in self.streams

    async def wait_calls(self, n: int) -> list[tuple[object, ...]]:
        async def reached() -> None:
            while len(self.calls) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(reached(), WAIT)
        return self.calls


@dataclass
class Node:
    gateway: ClusterGateway
    local: FakeLocal
    broker: MemoryBroker


class Cluster:
    def __init__(self) -> None:
        self.bus = MemoryBus()
        self.store = MemoryStore()
        self.nodes: dict[str, Node] = {}

    async def node(self, node_id: str, reply_timeout_s: float = 5.0) -> Node:
        broker = MemoryBroker(self.bus)
        await broker.start()
        local = FakeLocal()
        gw = ClusterGateway(local, broker, self.store, node_id, reply_timeout_s=reply_timeout_s)
        await gw.start()
        self.nodes[node_id] = n = Node(gw, local, broker)
        return n

    async def participant(self, cid: str, node_id: str | None, stream: str | None = None) -> None:
        pubs = [Publisher(stream, 1, MediaOptions())] if stream else []
        await self.store.add_connection(
            Connection(
                id=ConnectionId(cid),
                session_id=SessionId(SID),
                token=f"ws://x?sessionId={SID}&token=tok_{cid}",
                token_id=f"tok_{cid}",
                created_at=1,
                properties=ConnectionProperties(),
                status="active",
                active_at=2,
                node_id=node_id,
                publishers=pubs,
            )
        )

    async def close(self) -> None:
        for n in self.nodes.values():
            await n.gateway.close()
            await n.broker.close()


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    c = Cluster()
    await c.store.start()
    await c.store.create_session(Session(SessionId(SID), 1, SessionProperties()))
    try:
        yield c
    finally:
        await c.close()
        await c.store.close()


async def test_signal_recipients_are_grouped_by_serving_node(cluster: Cluster) -> None:
    a, b, c = await cluster.node("A"), await cluster.node("B"), await cluster.node("C")
    for cid, node in [("a1", "A"), ("b1", "B"), ("a2", "A"), ("b2", "B"), ("x", None)]:
        await cluster.participant(cid, node)

    await a.gateway.send_signal(SID, ["a1", "b1", "a2", "b2", "x"], "a1", "signal:chat", "hi")

    # this node's recipients (and any with no node recorded) in one local call
    assert a.local.calls == [("signal", SID, ("a1", "a2", "x"), "a1", "signal:chat", "hi")]
    # one command to B for both of its recipients; C serves none and hears nothing
    assert await b.local.wait_calls(1) == [("signal", SID, ("b1", "b2"), "a1", "signal:chat", "hi")]
    assert c.local.calls == []


async def test_signals_to_another_node_keep_their_order(cluster: Cluster) -> None:
    a, b = await cluster.node("A"), await cluster.node("B")
    await cluster.participant("b1", "B")
    for i in range(30):
        await a.gateway.send_signal(SID, ["b1"], None, "t", str(i))
    calls = await b.local.wait_calls(30)
    assert [c[-1] for c in calls] == [str(i) for i in range(30)]


async def test_evict_runs_on_the_serving_node_before_returning(cluster: Cluster) -> None:
    a, b = await cluster.node("A"), await cluster.node("B")
    await cluster.participant("b1", "B")
    await a.gateway.evict(SID, "b1", "forceDisconnectByServer")
    # a request: B has evicted by the time A's call returns
    assert b.local.calls == [("evict", SID, "b1", "forceDisconnectByServer")]
    assert a.local.calls == []


async def test_actions_on_this_nodes_participants_stay_local(cluster: Cluster) -> None:
    a, b = await cluster.node("A"), await cluster.node("B")
    await cluster.participant("a1", "A", stream="str_a1")
    a.local.streams.add("str_a1")
    sent: list[bytes] = []

    async def spy(payload: bytes) -> None:
        sent.append(payload)

    await b.broker.subscribe(node_channel("vidhub:", "B"), spy)
    await a.gateway.evict(SID, "a1", "r")
    assert await a.gateway.force_unpublish(SID, "str_a1", "r") is True
    await a.gateway.send_signal(SID, ["a1"], None, "t", "d")
    assert [c[0] for c in a.local.calls] == ["evict", "unpublish", "signal"]
    assert b.local.calls == [] and sent == []


async def test_unknown_targets_fall_back_to_the_local_gateway(cluster: Cluster) -> None:
    a = await cluster.node("A")
    await a.gateway.evict(SID, "nobody", "r")
    assert await a.gateway.force_unpublish(SID, "str_nobody", "r") is False
    assert [c[0] for c in a.local.calls] == ["evict", "unpublish"]


async def test_force_unpublish_answers_with_the_serving_nodes_result(cluster: Cluster) -> None:
    a, b = await cluster.node("A"), await cluster.node("B")
    await cluster.participant("b1", "B", stream="str_b1")
    b.local.streams.add("str_b1")
    assert await a.gateway.force_unpublish(SID, "str_b1", "forceUnpublishByServer") is True
    assert b.local.calls == [("unpublish", SID, "str_b1", "forceUnpublishByServer")]

    b.local.streams.clear()  # gone from B's rooms meanwhile (store not yet updated)
    assert await a.gateway.force_unpublish(SID, "str_b1", "r") is False


async def test_a_silent_node_times_out_as_not_found(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    a = await cluster.node("A", reply_timeout_s=50 * MS)
    b = await cluster.node("B")
    b.local.hang = asyncio.Event()
    await cluster.participant("b1", "B", stream="str_b1")
    try:
        assert await a.gateway.force_unpublish(SID, "str_b1", "r") is False
        assert "did not answer" in caplog.text
    finally:
        b.local.hang.set()


async def test_a_node_that_is_down_is_not_found_at_once(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    a = await cluster.node("A", reply_timeout_s=60.0)  # a wait would fail the test's timeout
    await cluster.participant("d1", "D", stream="str_d1")
    assert await a.gateway.force_unpublish(SID, "str_d1", "r") is False
    await a.gateway.evict(SID, "d1", "r")
    await a.gateway.send_signal(SID, ["d1"], None, "t", "d")
    assert caplog.text.count("not listening") == 3
    assert a.local.calls == []


async def test_a_failing_local_action_answers_and_the_node_keeps_serving(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await cluster.node("A"), await cluster.node("B")
    await cluster.participant("b1", "B")
    b.local.fail = True
    await a.gateway.evict(SID, "b1", "r")  # answered (not a 5 s timeout), logged on both
    assert "local evict bug" in caplog.text
    assert "did not confirm" in caplog.text
    await a.gateway.send_signal(SID, ["b1"], None, "t", "after")
    assert await b.local.wait_calls(1) == [("signal", SID, ("b1",), None, "t", "after")]


async def test_malformed_messages_are_ignored(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = await cluster.node("A"), await cluster.node("B")
    await cluster.participant("b1", "B")
    channel = node_channel("vidhub:", "B")
    for junk in [b"not json", b"[]", b'{"op":"reboot"}', b'{"op":"signal","to":"b1"}']:
        await a.broker.publish(channel, junk)
    # a stray reply for a request nobody made is dropped too
    await a.broker.publish(channel, wire.encode(wire.Reply("nobody-asked", True)))
    await a.gateway.send_signal(SID, ["b1"], None, "t", "ok")
    assert await b.local.wait_calls(1) == [("signal", SID, ("b1",), None, "t", "ok")]
    assert caplog.text.count("ignoring a cluster message") == 4


async def test_close_answers_waiting_requests_and_is_idempotent(cluster: Cluster) -> None:
    a = await cluster.node("A")
    await cluster.participant("b1", "B", stream="str_b1")
    # "B" is a listener that never answers
    silent_b = MemoryBroker(cluster.bus)
    await silent_b.start()
    arrived = asyncio.Event()

    async def silent(payload: bytes) -> None:
        arrived.set()

    await silent_b.subscribe(node_channel("vidhub:", "B"), silent)
    try:
        waiting = asyncio.create_task(a.gateway.force_unpublish(SID, "str_b1", "r"))
        await asyncio.wait_for(arrived.wait(), WAIT)
        await a.gateway.close()
        await a.gateway.close()
        assert await asyncio.wait_for(waiting, WAIT) is False
    finally:
        await silent_b.close()
