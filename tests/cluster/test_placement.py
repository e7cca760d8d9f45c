"""Session placement: the lightest live node hosts a session, and its tokens lead there."""

from __future__ import annotations

from vidhub.broker.presence import MemoryPresence, PresenceSpace
from vidhub.cluster.directory import NodeDirectory
from vidhub.cluster.placement import ClusterPlacement, LocalPlacement, ws_url
from vidhub.protocol.cluster import NodeInfo


class Node:
    def __init__(self, space: PresenceSpace, node_id: str, url: str) -> None:
        self.load = (0, 0)

        async def on_dead(node: str) -> None:
            return None

        self.directory = NodeDirectory(
            MemoryPresence(space), node_id, lambda: NodeInfo(url, *self.load), on_dead
        )
        self.placement = ClusterPlacement(MemoryPresence(space), self.directory)


async def test_sessions_go_to_the_lightest_node_and_tokens_carry_its_url() -> None:
    space = PresenceSpace()
    n1, n2 = Node(space, "n1", "https://a.example"), Node(space, "n2", "http://b.example:4443")
    n1.load = (3, 900)  # n1 has publishers and forwards packets; n2 is idle
    for node in (n1, n2, n1):
        await node.directory.round()
    assert await n1.placement.place("s1") == "n2"
    # whichever node makes the token, it points at the host
    for node in (n1, n2):
        assert await node.placement.ws_base("s1", "ws://asked:1") == "ws://b.example:4443"
    # equal load: the node asked keeps the session (no needless hop)
    n1.load = (0, 0)
    await n1.directory.round()
    assert await n1.placement.place("s2") == "n1"
    assert await n2.placement.ws_base("s2", "ws://asked:1") == "wss://a.example"
    assert await n2.placement.hosts(["s1", "s2", "s3"]) == ["n2", "n1", None]
    # a host that heartbeats no URL: the caller's own
    silent = Node(space, "n3", "")
    await silent.directory.round()
    await MemoryPresence(space).assign("host:s4", "n3")
    assert await n1.placement.ws_base("s4", "ws://asked:1") == "ws://asked:1"
    # a session made before placement is placed by its first token
    assert await n2.placement.ws_base("s3", "ws://asked:1") == "ws://b.example:4443"
    await n1.placement.forget("s1")
    assert await n2.placement.hosts(["s1", "s3"]) == [None, "n2"]


async def test_a_stale_placement_on_a_dead_node_is_replaced() -> None:
    space = PresenceSpace()
    n1 = Node(space, "n1", "http://a:1")
    await n1.directory.round()
    await MemoryPresence(space).assign("host:s1", "gone-node")  # a session of that id, once
    assert await n1.placement.place("s1") == "n1"


async def test_one_node_places_nothing() -> None:
    local = LocalPlacement()
    assert await local.place("s") is None
    assert await local.ws_base("s", "ws://here:1") == "ws://here:1"
    assert await local.hosts(["s"]) == [None]
    assert ws_url("https://x/") == "wss://x" and ws_url("http://x:1") == "ws://x:1"
