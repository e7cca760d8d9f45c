"""Three ``vidhub serve`` nodes on one loopback ``redis-server``: one cluster.

What a user of a cluster relies on, with the real clients: the unmodified ``ftrack_api``
EventHub connected to one node receives what is published on another (replies included) and
the lifecycle events of sessions anywhere in the cluster.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.hubs import acked, pump
from tests.support.proc import ServerProcess
from tests.support.redis import RedisServer, running_redis

ftrack_hub = pytest.importorskip("ftrack_api.event.hub")
ftrack_base = pytest.importorskip("ftrack_api.event.base")

pytestmark = [pytest.mark.redis, pytest.mark.peers]

FtrackEvent = ftrack_base.Event


class Cluster:
    def __init__(self, redis: RedisServer, nodes: list[ServerProcess]) -> None:
        self.redis = redis
        self.nodes = nodes


def node_args(redis: RedisServer) -> list[str]:
    return ["--store", "redis", "--redis-url", redis.db_url(2)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root: Path = tmp_path_factory.mktemp("cluster")
    with running_redis(root / "redis") as redis:
        nodes: list[ServerProcess] = []
        try:
            for n in (1, 2, 3):
                srv = ServerProcess(
                    root / f"n{n}",
                    extra_args=node_args(redis),
                    extra_env={"VIDHUB_NODE_ID": f"n{n}"},
                )
                nodes.append(srv.start())
            yield Cluster(redis, nodes)
        finally:
            for srv in nodes:
                srv.stop()


def rest(node: ServerProcess, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, node.api + path, auth=node.auth, timeout=10, **kw)


# -- the real ftrack client ------------------------------------------------------------------
@pytest.fixture
def ftrack(cluster: Cluster) -> Iterator[Callable[[ServerProcess], Any]]:
    made: list[Any] = []

    def connect(node: ServerProcess) -> Any:
        hub = ftrack_hub.EventHub(node.url, "alice", node.secret)
        hub.connect()
        made.append(hub)
        return hub

    yield connect
    for hub in made:
        if hub.connected:
            hub.disconnect()


def test_an_ftrack_hub_receives_what_is_published_on_another_node(
    cluster: Cluster, ftrack: Callable[[ServerProcess], Any]
) -> None:
    n1, n2, _ = cluster.nodes
    listener, publisher = ftrack(n1), ftrack(n2)
    topic = f"cluster.{uuid.uuid4().hex[:8]}"
    got: list[Any] = []
    listener.subscribe(f"topic={topic}", got.append)
    assert pump([listener], acked(listener))
    for i in range(3):
        publisher.publish(FtrackEvent(topic=topic, data={"i": i}))
    assert pump([listener, publisher], lambda: len(got) == 3)
    assert [e["data"]["i"] for e in got] == [0, 1, 2]  # in publish order


def test_a_reply_reaches_the_publisher_on_another_node(
    cluster: Cluster, ftrack: Callable[[ServerProcess], Any]
) -> None:
    n1, _, n3 = cluster.nodes
    asker, answerer = ftrack(n1), ftrack(n3)
    topic = f"cluster.ask.{uuid.uuid4().hex[:8]}"
    answerer.subscribe(f"topic={topic}", lambda event: {"answer": event["data"]["q"] * 2})
    assert pump([asker, answerer], acked(asker, answerer))
    replies: list[Any] = []
    asker.publish(FtrackEvent(topic=topic, data={"q": 21}), on_reply=replies.append)
    assert pump([asker, answerer], lambda: len(replies) == 1)
    assert replies[0]["data"] == {"answer": 42}
