"""Node heartbeats and death detection, on memory presence with a manual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from vidhub.broker import BrokerUnavailable
from vidhub.broker.presence import MemoryPresence, PresenceSpace
from vidhub.cluster.directory import NodeDirectory
from vidhub.protocol.cluster import NodeInfo


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Cluster:
    def __init__(self) -> None:
        self.clock = Clock()
        self.space = PresenceSpace(clock=self.clock)
        self.dead: list[tuple[str, str]] = []

    def node(
        self, node_id: str, url: str = "", presence: MemoryPresence | None = None
    ) -> NodeDirectory:
        async def on_dead(node: str) -> None:
            self.dead.append((node_id, node))

        return NodeDirectory(
            presence or MemoryPresence(self.space),
            node_id,
            lambda: NodeInfo(url, 0, 0),
            on_dead,
            interval_s=0.5,
            ttl_s=3.0,
            clock=self.clock,
        )

    async def rounds(self, nodes: Sequence[NodeDirectory]) -> None:
        await asyncio.gather(*(n.round() for n in nodes))


async def test_live_nodes_and_their_urls() -> None:
    c = Cluster()
    n1, n2 = c.node("n1", "http://127.0.0.1:1"), c.node("n2", "http://127.0.0.1:2")
    await c.rounds([n1, n2])
    await n1.round()
    assert {k: v.url for k, v in n1.live().items()} == {
        "n1": "http://127.0.0.1:1",
        "n2": "http://127.0.0.1:2",
    }


async def test_a_dead_node_is_cleaned_up_once_by_one_survivor() -> None:
    c = Cluster()
    n1, n2, n3 = c.node("n1"), c.node("n2"), c.node("n3")
    await c.rounds([n1, n2, n3])
    c.clock.now += 2.0  # n3 stops beating; its heartbeat is still valid
    await c.rounds([n1, n2])
    assert c.dead == []
    c.clock.now += 1.5  # past the TTL: n3 is dead
    await c.rounds([n1, n2])
    assert [dead for _, dead in c.dead] == ["n3"]
    assert "n3" not in n1.live() and "n3" not in await n1._presence.members()
    await c.rounds([n1, n2])
    assert len(c.dead) == 1


async def test_a_node_that_restarted_in_time_is_left_alone() -> None:
    c = Cluster()
    n1, n2 = c.node("n1"), c.node("n2")
    await c.rounds([n1, n2])
    c.clock.now += 2.9
    await n1.round()
    again = c.node("n2")  # same id, a new process
    await again.round()
    c.clock.now += 2.9
    await n1.round()
    assert c.dead == []


class Unreachable(MemoryPresence):
    def __init__(self, space: PresenceSpace) -> None:
        super().__init__(space)
        self.down = False

    async def beat(self, node_id: str, info: bytes, ttl_s: float) -> None:
        if self.down:
            raise BrokerUnavailable()
        await super().beat(node_id, info, ttl_s)


async def test_after_an_outage_a_node_waits_for_the_others_to_beat_before_reaping() -> None:
    c = Cluster()
    flaky = Unreachable(c.space)
    n1, n2 = c.node("n1", presence=flaky), c.node("n2")
    await c.rounds([n1, n2])
    c.clock.now += 4.0
    flaky.down = True  # Redis is gone for everyone; n1 notices
    await n1.round()
    assert not n1.reachable
    flaky.down = False
    c.clock.now += 10.0  # Redis is back; n2's heartbeat expired meanwhile
    await n1.round()
    assert n1.reachable and c.dead == []  # n2 gets one TTL to beat again
    await n2.round()  # n2 beats again within that TTL
    c.clock.now += 2.0
    await n1.round()
    assert c.dead == [] and "n2" in n1.live()
