"""The composition root builds a broker and the cluster relay only for a shared Redis."""

from __future__ import annotations

from vidhub.cluster import ClusterGateway
from vidhub.cluster.placement import ClusterPlacement, LocalPlacement
from vidhub.config import Config
from vidhub.server.app import DIRECTORY, make_app, make_broker, node_url
from vidhub.server.keys import MANAGER
from vidhub.store import MemoryStore


def test_one_node_has_no_broker_and_talks_to_its_rooms_directly() -> None:
    for store in ("memory", "sqlite"):
        assert make_broker(Config(store=store)) is None
    app = make_app(Config(store="memory", garbage_interval_s=0), store=MemoryStore())
    assert not isinstance(app[MANAGER].live, ClusterGateway)
    assert isinstance(app[MANAGER].placement, LocalPlacement) and DIRECTORY not in app


def test_a_redis_deployment_routes_through_the_cluster_gateway() -> None:
    from vidhub.broker.redis import RedisBroker

    cfg = Config(store="redis", redis_url="redis://127.0.0.1:1/0", garbage_interval_s=0)
    assert isinstance(make_broker(cfg), RedisBroker)
    # nothing connects until the app starts
    app = make_app(cfg, store=MemoryStore())
    live = app[MANAGER].live
    assert isinstance(live, ClusterGateway)
    assert live.node_id == cfg.effective_node_id
    assert type(live.local).__name__ == "Rooms"
    # sessions are placed across the cluster; the node heartbeats how to reach it
    assert isinstance(app[MANAGER].placement, ClusterPlacement)
    assert app[DIRECTORY].node_id == cfg.effective_node_id


def test_each_node_heartbeats_its_own_url() -> None:
    assert node_url(Config(public_url="https://n2.example:4443/")) == "https://n2.example:4443"
    assert node_url(Config(host="10.0.0.7", port=5443)) == "http://10.0.0.7:5443"
    assert node_url(Config(host="::1", port=1)) == "http://[::1]:1"
    assert node_url(Config(host="0.0.0.0")) == ""  # nobody can dial a wildcard address
