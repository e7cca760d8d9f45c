"""One behavioural suite for every :class:`vidhub.core.store.Store` engine.

The ``engine`` fixture yields each engine in turn; tests use only the ABC. The Redis engine
runs against a real ``redis-server`` on loopback (``tests/backends/conftest.py``), marked
``redis``; each test gets its own key prefix, and ``open()`` again means a new ``RedisStore``
(a new connection, as another node or a restart would have) over the same keys.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from vidhub.core.models import (
    Connection,
    ConnectionId,
    MediaOptions,
    Publisher,
    Session,
    SessionId,
    Subscriber,
)
from vidhub.core.store import ActivationInfo, Store
from vidhub.errors import SessionExists, SessionNotFound
from vidhub.protocol.openvidu_rest import (
    ConnectionProperties,
    IceServer,
    KurentoOptions,
    RecordingProperties,
    SessionProperties,
)
from vidhub.store import MemoryStore, RedisStore, SqliteStore


@dataclass
class Engine:
    """A store engine under test; each ``open()`` gives a started store over the same data."""

    name: str
    persistent: bool
    open: Callable[[], Awaitable[Store]]


def _memory(request: pytest.FixtureRequest, tmp: Path) -> Engine:
    async def open_() -> Store:
        s = MemoryStore()
        await s.start()
        return s

    return Engine("memory", False, open_)


def _sqlite(request: pytest.FixtureRequest, tmp: Path) -> Engine:
    async def open_() -> Store:
        s = SqliteStore(tmp / "vidhub.db")
        await s.start()
        return s

    return Engine("sqlite", True, open_)


def _redis(request: pytest.FixtureRequest, tmp: Path) -> Engine:
    url = request.getfixturevalue("redis_server").url  # started only when a test needs it
    prefix = f"test-{uuid.uuid4().hex}:"

    async def open_() -> Store:
        s = RedisStore(url, prefix=prefix)
        await s.start()
        return s

    return Engine("redis", True, open_)


#: name -> factory (given the requesting test, for the fixtures it needs, and a temp dir).
ENGINES: dict[str, Callable[[pytest.FixtureRequest, Path], Engine]] = {
    "memory": _memory,
    "redis": _redis,
    "sqlite": _sqlite,
}
PERSISTENT = ("redis", "sqlite")
_MARKS = {"redis": [pytest.mark.redis]}


def _params(names: list[str]) -> list[object]:
    return [pytest.param(n, marks=_MARKS.get(n, [])) for n in sorted(names)]


@pytest.fixture(params=_params(list(ENGINES)))
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    factory = ENGINES[request.param]
    return factory(request, tmp_path)


@pytest.fixture
async def store(engine: Engine) -> AsyncIterator[Store]:
    s = await engine.open()
    try:
        yield s
    finally:
        await s.close()


# -- builders ------------------------------------------------------------------------------
def session(sid: str = "s1", created_at: int = 1000, **props: object) -> Session:
    return Session(SessionId(sid), created_at, SessionProperties(**props))  # type: ignore[arg-type]


RICH_PROPS = ConnectionProperties(
    type="WEBRTC",
    data="alice",
    record=False,
    role="MODERATOR",
    kurento_options=KurentoOptions(video_max_recv_bandwidth=500, allowed_filters=("F",)),
    custom_ice_servers=(IceServer("turn:127.0.0.1:3478", "u", "p"), IceServer("stun:127.0.0.1")),
)


def conn(cid: str = "c1", sid: str = "s1", tok: str | None = None, **kw: object) -> Connection:
    token_id = tok or f"tok_{cid}"
    return Connection(
        id=ConnectionId(cid),
        session_id=SessionId(sid),
        token=f"ws://127.0.0.1:4443?sessionId={sid}&token={token_id}",
        token_id=token_id,
        created_at=2000,
        properties=kw.pop("properties", ConnectionProperties()),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def info(node: str | None = None, at: int = 3000) -> ActivationInfo:
    return ActivationInfo(at, "127.0.0.1", "Chrome", '{"name":"x"}', "unknown", node)


# -- sessions ------------------------------------------------------------------------------
async def test_create_get_list_sessions(store: Store) -> None:
    rich = session(
        "custom",
        5,
        media_mode="RELAYED",
        custom_session_id="custom",
        forced_video_codec="VP8",
        default_recording_properties=RecordingProperties(name="r", output_mode="INDIVIDUAL"),
    )
    await store.create_session(rich)
    await store.create_session(session("s2", 6))
    await store.create_session(session("s0", 7))
    assert await store.get_session(SessionId("custom")) == rich
    assert await store.get_session(SessionId("nope")) is None
    assert [s.id for s in await store.list_sessions()] == ["custom", "s2", "s0"]  # creation order
    assert await store.list_connections(SessionId("s2")) == []


async def test_duplicate_session(store: Store) -> None:
    await store.create_session(session("dup", 1))
    with pytest.raises(SessionExists):
        await store.create_session(session("dup", 2))
    got = await store.get_session(SessionId("dup"))
    assert got is not None and got.created_at == 1  # the first one stays


async def test_delete_session_cascades(store: Store) -> None:
    await store.create_session(session("s1"))
    await store.create_session(session("s2"))
    await store.add_connection(conn("c1", "s1"))
    await store.add_connection(conn("c2", "s1"))
    await store.add_connection(conn("c3", "s2"))
    await store.activate(SessionId("s1"), "tok_c2", info())
    removed = await store.delete_session(SessionId("s1"))
    assert removed is not None
    gone_session, gone_conns = removed
    assert gone_session.id == "s1"
    assert sorted(c.id for c in gone_conns) == ["c1", "c2"]
    assert await store.get_session(SessionId("s1")) is None
    assert await store.list_connections(SessionId("s1")) is None
    assert await store.get_connection(SessionId("s1"), ConnectionId("c1")) is None
    # the pending token died with its session, even if the id is reused
    await store.create_session(session("s1"))
    assert await store.activate(SessionId("s1"), "tok_c1", info()) is None
    assert await store.delete_session(SessionId("never")) is None
    assert [c.id for c in await store.list_connections(SessionId("s2")) or []] == ["c3"]


# -- connections ---------------------------------------------------------------------------
async def test_add_get_list_connections(store: Store) -> None:
    await store.create_session(session())
    rich = conn("c1", properties=RICH_PROPS)
    await store.add_connection(rich)
    await store.add_connection(conn("c0"))
    assert await store.get_connection(SessionId("s1"), ConnectionId("c1")) == rich
    assert await store.get_connection(SessionId("s1"), ConnectionId("zz")) is None
    assert await store.get_connection(SessionId("zz"), ConnectionId("c1")) is None
    assert [c.id for c in await store.list_connections(SessionId("s1")) or []] == ["c1", "c0"]
    with pytest.raises(SessionNotFound):
        await store.add_connection(conn("c9", "missing"))


async def test_update_connection(store: Store) -> None:
    await store.create_session(session())
    await store.add_connection(conn("c1"))

    def change(c: Connection) -> None:
        c.properties = replace(c.properties, role="SUBSCRIBER", record=False)
        c.id = ConnectionId("hijack")  # identity fields are not the caller's to change
        c.token_id = "tok_hijack"

    updated = await store.update_connection(SessionId("s1"), ConnectionId("c1"), change)
    assert updated is not None
    assert (updated.id, updated.token_id) == ("c1", "tok_c1")
    assert (updated.properties.role, updated.properties.record) == ("SUBSCRIBER", False)
    assert await store.get_connection(SessionId("s1"), ConnectionId("c1")) == updated
    assert await store.get_connection(SessionId("s1"), ConnectionId("hijack")) is None

    called = []
    missing = await store.update_connection(
        SessionId("s1"), ConnectionId("nope"), lambda c: called.append(c)
    )
    assert missing is None and called == []
    # the token still works after an update of a pending connection
    assert await store.activate(SessionId("s1"), "tok_c1", info()) is not None


async def test_publishers_and_subscribers_round_trip(store: Store) -> None:
    await store.create_session(session())
    await store.add_connection(conn("c1"))
    await store.activate(SessionId("s1"), "tok_c1", info())
    pub = Publisher(
        "str_CAM_Abcd_c1",
        4000,
        MediaOptions(frame_rate=30, video_dimensions='{"width":640,"height":480}'),
    )
    sub = Subscriber("str_MIC_Wxyz_c2", 4500)

    def add(c: Connection) -> None:
        c.publishers.append(pub)
        c.subscribers.append(sub)

    await store.update_connection(SessionId("s1"), ConnectionId("c1"), add)
    got = await store.get_connection(SessionId("s1"), ConnectionId("c1"))
    assert got is not None
    assert got.publishers == [pub] and got.subscribers == [sub]


async def test_delete_connection(store: Store) -> None:
    await store.create_session(session())
    await store.add_connection(conn("c1"))
    await store.add_connection(conn("c2"))
    gone = await store.delete_connection(SessionId("s1"), ConnectionId("c1"))
    assert gone is not None and gone.id == "c1"
    assert await store.delete_connection(SessionId("s1"), ConnectionId("c1")) is None
    assert await store.delete_connection(SessionId("zz"), ConnectionId("c2")) is None
    assert [c.id for c in await store.list_connections(SessionId("s1")) or []] == ["c2"]
    # a revoked token can no longer be used
    assert await store.activate(SessionId("s1"), "tok_c1", info()) is None


# -- tokens --------------------------------------------------------------------------------
async def test_activate_is_single_use(store: Store) -> None:
    await store.create_session(session())
    await store.add_connection(conn("c1"))
    first = await store.activate(SessionId("s1"), "tok_c1", info(node="n1", at=3333))
    assert first is not None
    assert first.status == "active" and first.active
    assert (first.active_at, first.ip, first.platform) == (3333, "127.0.0.1", "Chrome")
    assert (first.client_data, first.location, first.node_id) == ('{"name":"x"}', "unknown", "n1")
    assert await store.activate(SessionId("s1"), "tok_c1", info()) is None
    stored = await store.get_connection(SessionId("s1"), ConnectionId("c1"))
    assert stored == first


async def test_activate_needs_the_right_session_and_token(store: Store) -> None:
    await store.create_session(session("s1"))
    await store.create_session(session("s2"))
    await store.add_connection(conn("c1", "s1"))
    assert await store.activate(SessionId("s2"), "tok_c1", info()) is None
    assert await store.activate(SessionId("s1"), "tok_other", info()) is None
    assert await store.activate(SessionId("zz"), "tok_c1", info()) is None
    assert await store.activate(SessionId("s1"), "tok_c1", info()) is not None


async def test_concurrent_activate_exactly_one_wins(store: Store) -> None:
    await store.create_session(session())
    await store.add_connection(conn("c1"))
    results = await asyncio.gather(
        *(store.activate(SessionId("s1"), "tok_c1", info(node=f"n{i}")) for i in range(25))
    )
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    stored = await store.get_connection(SessionId("s1"), ConnectionId("c1"))
    assert stored is not None and stored.node_id == winners[0].node_id


async def test_deactivate_node(store: Store) -> None:
    await store.create_session(session())
    for cid in ("a", "b", "c", "d"):
        await store.add_connection(conn(cid))
    await store.activate(SessionId("s1"), "tok_a", info(node="n1"))
    await store.activate(SessionId("s1"), "tok_b", info(node="n2"))
    await store.activate(SessionId("s1"), "tok_c", info(node=None))
    gone = await store.deactivate_node("n1")
    assert [c.id for c in gone] == ["a"]
    left = {c.id: c.status for c in await store.list_connections(SessionId("s1")) or []}
    assert left == {"b": "active", "c": "active", "d": "pending"}
    assert [c.id for c in await store.deactivate_node(None)] == ["c"]
    assert await store.deactivate_node("unknown") == []


# -- isolation -----------------------------------------------------------------------------
async def test_returns_copies_not_references(store: Store) -> None:
    s = session()
    await store.create_session(s)
    s.created_at = 999_999  # the caller's object is not the stored one
    got = await store.get_session(SessionId("s1"))
    assert got is not None and got.created_at == 1000
    got.created_at = 1
    listed = await store.list_sessions()
    assert listed[0].created_at == 1000

    c = conn("c1")
    await store.add_connection(c)
    c.publishers.append(Publisher("x", 1, MediaOptions()))
    c.client_data = "mutated"
    g = await store.get_connection(SessionId("s1"), ConnectionId("c1"))
    assert g is not None and g.publishers == [] and g.client_data is None
    g.subscribers.append(Subscriber("y", 2))
    for view in await store.list_connections(SessionId("s1")) or []:
        view.ip = "10.0.0.1"
    activated = await store.activate(SessionId("s1"), "tok_c1", info())
    assert activated is not None
    activated.publishers.append(Publisher("z", 3, MediaOptions()))
    updated = await store.update_connection(SessionId("s1"), ConnectionId("c1"), lambda _: None)
    assert updated is not None
    updated.subscribers.append(Subscriber("w", 4))
    final = await store.get_connection(SessionId("s1"), ConnectionId("c1"))
    assert final is not None
    assert final.publishers == [] and final.subscribers == [] and final.ip == "127.0.0.1"


async def test_failed_change_leaves_the_stored_value(store: Store) -> None:
    await store.create_session(session())
    await store.add_connection(conn("c1"))
    before = copy.deepcopy(await store.get_connection(SessionId("s1"), ConnectionId("c1")))

    def boom(c: Connection) -> None:
        c.client_data = "half-done"
        raise RuntimeError("change failed")

    with pytest.raises(RuntimeError):
        await store.update_connection(SessionId("s1"), ConnectionId("c1"), boom)
    assert await store.get_connection(SessionId("s1"), ConnectionId("c1")) == before


async def test_close_twice(engine: Engine) -> None:
    s = await engine.open()
    await s.close()
    await s.close()


# -- persistence (persistent engines only) ---------------------------------------------------
@pytest.fixture(params=_params(list(PERSISTENT)))
def persistent(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    eng = ENGINES[request.param](request, tmp_path)
    assert eng.persistent
    return eng


async def test_reopen_sees_everything(persistent: Engine) -> None:
    engine = persistent
    a = await engine.open()
    await a.create_session(session("s1", media_mode="RELAYED", custom_session_id="s1"))
    await a.create_session(session("s2"))
    await a.create_session(session("s3"))
    await a.add_connection(conn("p1", "s1", properties=RICH_PROPS))
    await a.add_connection(conn("p2", "s1"))
    await a.add_connection(conn("act", "s1"))
    await a.add_connection(conn("gone", "s2"))
    await a.activate(SessionId("s1"), "tok_act", info(node="n1"))
    await a.update_connection(
        SessionId("s1"),
        ConnectionId("act"),
        lambda c: c.publishers.append(Publisher("str_CAM_Aaaa_act", 5, MediaOptions())),
    )
    await a.delete_connection(SessionId("s1"), ConnectionId("p2"))
    await a.delete_session(SessionId("s3"))
    sessions_before = await a.list_sessions()
    conns_before = await a.list_connections(SessionId("s1"))
    await a.close()

    b = await engine.open()
    try:
        assert await b.list_sessions() == sessions_before
        assert await b.list_connections(SessionId("s1")) == conns_before
        assert await b.get_session(SessionId("s3")) is None
        # pending tokens survive; the consumed one stays consumed
        assert await b.activate(SessionId("s1"), "tok_act", info()) is None
        assert await b.activate(SessionId("s1"), "tok_p2", info()) is None
        assert await b.activate(SessionId("s1"), "tok_p1", info()) is not None
        # ids stay taken, and new records order after the old ones
        with pytest.raises(SessionExists):
            await b.create_session(session("s1"))
        await b.create_session(session("s4"))
        assert [s.id for s in await b.list_sessions()] == ["s1", "s2", "s4"]
        # a node restart drops its active connections, durably
        assert [c.id for c in await b.deactivate_node("n1")] == ["act"]
    finally:
        await b.close()
    c = await engine.open()
    try:
        ids = [x.id for x in await c.list_connections(SessionId("s1")) or []]
        assert ids == ["p1"]
    finally:
        await c.close()
