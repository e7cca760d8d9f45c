"""What the Redis engine promises beyond the shared suite: several nodes, one truth.

Each ``RedisStore`` here stands for one vidhub node (its own connection pool, nothing shared
but the Redis server), so "another instance" is what another process would see.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from tests.backends.test_store import conn, info, session
from tests.support.proc import free_port
from tests.support.redis import RedisServer
from vidhub.core.models import Connection, ConnectionId, MediaOptions, Publisher, SessionId
from vidhub.store import RedisStore
from vidhub.store.redis import RedisUnavailable

pytestmark = pytest.mark.redis

S1 = SessionId("s1")


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex}:"


@pytest.fixture
async def nodes(redis_server: RedisServer, prefix: str) -> AsyncIterator[list[RedisStore]]:
    """Two started stores ("node A" and "node B") over the same keys."""
    stores = [RedisStore(redis_server.url, prefix=prefix) for _ in range(2)]
    for s in stores:
        await s.start()
    try:
        yield stores
    finally:
        for s in stores:
            await s.close()


async def test_two_nodes_see_each_others_writes(nodes: list[RedisStore]) -> None:
    a, b = nodes
    await a.create_session(session("s1"))
    assert [s.id for s in await b.list_sessions()] == ["s1"]
    await b.add_connection(conn("c1"))
    got = await a.get_connection(S1, ConnectionId("c1"))
    assert got is not None and got.status == "pending"
    # a change on B is what A reads next: no copy is cached anywhere
    await b.update_connection(S1, ConnectionId("c1"), lambda c: setattr(c, "client_data", "b"))
    again = await a.get_connection(S1, ConnectionId("c1"))
    assert again is not None and again.client_data == "b"
    assert await a.activate(S1, "tok_c1", info(node="A")) is not None
    assert await b.activate(S1, "tok_c1", info(node="B")) is None  # consumed on A
    # A's node restarts: B's view loses the connection too
    assert [c.id for c in await b.deactivate_node("A")] == ["c1"]
    assert await a.list_connections(S1) == []
    removed = await a.delete_session(S1)
    assert removed is not None
    assert await b.get_session(S1) is None and await b.list_sessions() == []
    assert await b.delete_session(S1) is None


async def test_concurrent_activate_across_nodes_exactly_one_wins(
    nodes: list[RedisStore],
) -> None:
    a, b = nodes
    await a.create_session(session())
    await a.add_connection(conn("c1"))
    attempts = [
        node.activate(S1, "tok_c1", info(node=f"{name}{i}"))
        for i in range(20)
        for node, name in ((a, "A"), (b, "B"))
    ]
    results = await asyncio.gather(*attempts)
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    for node in nodes:
        stored = await node.get_connection(S1, ConnectionId("c1"))
        assert stored is not None and stored.node_id == winners[0].node_id


async def test_concurrent_updates_from_two_nodes_lose_nothing(nodes: list[RedisStore]) -> None:
    a, b = nodes
    await a.create_session(session())
    await a.add_connection(conn("c1"))
    await a.activate(S1, "tok_c1", info(node="A"))

    def publish(stream: str) -> Callable[[Connection], None]:
        def change(c: Connection) -> None:
            c.publishers.append(Publisher(stream, 1, MediaOptions()))

        return change

    updates = [
        node.update_connection(S1, ConnectionId("c1"), publish(f"{name}{i}"))
        for i in range(15)
        for node, name in ((a, "A"), (b, "B"))
    ]
    await asyncio.gather(*updates)
    final = await b.get_connection(S1, ConnectionId("c1"))
    assert final is not None
    names = sorted(p.stream_id for p in final.publishers)
    assert names == sorted(f"{n}{i}" for i in range(15) for n in "AB")


async def test_data_survives_a_new_instance(redis_server: RedisServer, prefix: str) -> None:
    first = RedisStore(redis_server.url, prefix=prefix)
    await first.start()
    await first.create_session(session("s1", media_mode="RELAYED"))
    await first.add_connection(conn("c1"))
    before = await first.list_sessions()
    await first.close()

    second = RedisStore(redis_server.url, prefix=prefix)
    await second.start()
    try:
        assert await second.list_sessions() == before
        assert await second.activate(S1, "tok_c1", info()) is not None
        assert await second.activate(S1, "tok_c1", info()) is None
    finally:
        await second.close()


async def test_prefixes_keep_deployments_apart(redis_server: RedisServer) -> None:
    one = RedisStore(redis_server.url, prefix=f"one-{uuid.uuid4().hex}:")
    two = RedisStore(redis_server.url, prefix=f"two-{uuid.uuid4().hex}:")
    for s in (one, two):
        await s.start()
    try:
        await one.create_session(session("s1"))
        await one.add_connection(conn("c1"))
        assert await two.list_sessions() == []
        assert await two.get_session(S1) is None
        await two.create_session(session("s1"))  # the same id is free there
        assert await two.activate(S1, "tok_c1", info()) is None
        assert await one.activate(S1, "tok_c1", info()) is not None
    finally:
        for s in (one, two):
            await s.close()


async def test_deleting_everything_leaves_no_keys_behind(
    nodes: list[RedisStore], redis_server: RedisServer, prefix: str
) -> None:
    a, b = nodes
    for sid in ("s1", "s2"):
        await a.create_session(session(sid))
        for cid in ("p", "x", "y"):
            await a.add_connection(conn(f"{cid}{sid}", sid))
        await b.activate(SessionId(sid), f"tok_x{sid}", info(node="B"))
        await b.activate(SessionId(sid), f"tok_y{sid}", info(node=None))
    await a.delete_connection(SessionId("s1"), ConnectionId("xs1"))
    await a.deactivate_node(None)
    await b.delete_session(SessionId("s1"))
    await b.delete_session(SessionId("s2"))
    raw = aioredis.Redis.from_url(redis_server.url)
    try:
        keys = sorted([k.decode() async for k in raw.scan_iter(match=prefix + "*")])
    finally:
        await raw.aclose()
    assert keys == [prefix + "seq"]  # the order counter only


async def test_start_names_the_unreachable_server_without_its_password() -> None:
    url = f"redis://admin:sekrit@127.0.0.1:{free_port()}/0"
    store = RedisStore(url)
    with pytest.raises(RedisUnavailable) as caught:
        await store.start()
    assert "127.0.0.1" in str(caught.value) and "sekrit" not in str(caught.value)
    await store.close()  # nothing to release, and safe


async def test_use_before_start_is_a_clear_error() -> None:
    store = RedisStore("redis://127.0.0.1:1/0")
    with pytest.raises(RuntimeError, match="before start"):
        await store.get_session(S1)
