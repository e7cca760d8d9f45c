"""One behavioural suite for every :class:`~vidhub.broker.presence.Presence` engine.

Memory presences share one :class:`PresenceSpace` with a manual clock; Redis presences share
a real ``redis-server`` on loopback (marked ``redis``), each test under its own key prefix.
Expiry on Redis is real time, so the TTLs there are short and waited on by polling.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from tests.support.proc import MS
from vidhub.broker.presence import MemoryPresence, Presence, PresenceSpace


@dataclass
class Engine:
    make: Callable[[], Awaitable[Presence]]
    #: lets at least ``seconds`` pass for the engine's TTLs
    elapse: Callable[[float], Awaitable[None]]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def engine(request: pytest.FixtureRequest) -> AsyncIterator[Engine]:
    made: list[Presence] = []
    if request.param == "memory":
        now = [0.0]
        space = PresenceSpace(clock=lambda: now[0])

        async def make() -> Presence:
            p = MemoryPresence(space)
            made.append(p)
            return p

        async def elapse(seconds: float) -> None:
            now[0] += seconds

        yield Engine(make, elapse)
    else:
        from vidhub.broker.redis_presence import RedisPresence

        url = request.getfixturevalue("broker_redis").url
        prefix = f"p{uuid.uuid4().hex[:8]}:"

        async def make() -> Presence:
            p = RedisPresence(url, prefix)
            await p.start()
            made.append(p)
            return p

        async def elapse(seconds: float) -> None:
            # Redis expires keys in real time: the one place this suite waits on the clock
            await asyncio.sleep(seconds)

        yield Engine(make, elapse)
    for p in made:
        await p.close()


TTL = 200 * MS


async def test_a_beating_node_is_alive_with_its_info_then_dead_when_it_stops(
    engine: Engine,
) -> None:
    a, b = await engine.make(), await engine.make()
    await a.beat("n1", b"info-1", TTL)
    await b.beat("n2", b"info-2", 60)
    assert await b.members() == {"n1": b"info-1", "n2": b"info-2"}
    await engine.elapse(TTL * 2)
    assert await a.members() == {"n1": None, "n2": b"info-2"}  # known, but dead
    await a.beat("n1", b"back", 60)  # a restart with the same id
    assert (await b.members())["n1"] == b"back"
    await b.forget("n1")
    assert await a.members() == {"n2": b"info-2"}


async def test_one_claimant_wins_until_the_claim_expires_or_is_released(engine: Engine) -> None:
    a, b = await engine.make(), await engine.make()
    results = await asyncio.gather(
        *(p.claim("reap:n9", f"o{i}", 60) for i, p in enumerate([a, b] * 5))
    )
    assert sorted(results) == [False] * 9 + [True]
    await a.release("reap:n9")
    assert await b.claim("reap:n9", "b", TTL)
    assert not await a.claim("reap:n9", "a", TTL)
    await engine.elapse(TTL * 2)
    assert await a.claim("reap:n9", "a", 60)


async def test_assign_keeps_the_first_value(engine: Engine) -> None:
    a, b = await engine.make(), await engine.make()
    got = await asyncio.gather(a.assign("host:s1", "n1"), b.assign("host:s1", "n2"))
    assert got[0] == got[1] and got[0] in ("n1", "n2")
    assert await b.lookup(["host:s1", "host:none"]) == [got[0], None]
    await a.release("host:s1")
    assert await b.lookup(["host:s1"]) == [None]
    assert await b.assign("host:s1", "n3") == "n3"
    assert await a.lookup([]) == []
