"""Redis presence engine: heartbeat keys with a TTL, a set of known nodes, ``SET NX`` claims.

Keys, under the prefix ``P`` (default ``vidhub:``)::

    P alive:<node>   string, the node's info; expires ``ttl`` after its last beat
    P nodes          set of every node that has beaten and was not forgotten
    P lock:<name>    string, a claim's owner; expires with the claim
    P rec:<key>      string, a first-writer-wins record (session placement)

Every call is one command or one pipeline; a failure raises
:class:`~vidhub.broker.base.BrokerUnavailable` (the caller retries on its next beat).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from vidhub.broker.base import BrokerUnavailable
from vidhub.broker.presence import Presence

__all__ = ["RedisPresence"]

log = logging.getLogger(__name__)


class RedisPresence(Presence):
    """Presence on one Redis server.

    Args:
        url: a ``redis://`` URL, as redis-py reads it.
        prefix: prepended to every key.
    """

    def __init__(self, url: str, prefix: str = "vidhub:") -> None:
        self._url = url
        self._p = prefix
        self._redis: aioredis.Redis | None = None

    async def start(self) -> None:
        if self._redis is not None:
            return
        # short timeouts: a beat that cannot get through must fail well within the TTL
        client = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=1, socket_timeout=1, retry=Retry(NoBackoff(), 1)
        )
        try:
            await client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            await client.aclose()
            raise BrokerUnavailable(f"cannot reach Redis: {exc.__class__.__name__}") from exc
        self._redis = client

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    def _r(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisPresence used before start()")
        return self._redis

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except (RedisError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable() from exc

    async def beat(self, node_id: str, info: bytes, ttl_s: float) -> None:
        async def run() -> None:
            async with self._r().pipeline(transaction=True) as pipe:
                pipe.set(f"{self._p}alive:{node_id}", info, px=max(1, int(ttl_s * 1000)))
                pipe.sadd(f"{self._p}nodes", node_id)
                await pipe.execute()

        await self._call(run())

    async def members(self) -> dict[str, bytes | None]:
        raw = await self._call(self._r().smembers(f"{self._p}nodes"))
        nodes = sorted(n.decode() if isinstance(n, bytes) else str(n) for n in raw)
        if not nodes:
            return {}
        infos = await self._call(self._r().mget([f"{self._p}alive:{n}" for n in nodes]))
        return dict(zip(nodes, infos, strict=True))

    async def forget(self, node_id: str) -> None:
        await self._call(self._r().srem(f"{self._p}nodes", node_id))

    async def claim(self, name: str, owner: str, ttl_s: float) -> bool:
        key = f"{self._p}lock:{name}"
        got = await self._call(self._r().set(key, owner, nx=True, px=max(1, int(ttl_s * 1000))))
        return bool(got)

    async def release(self, name: str) -> None:
        await self._call(self._r().delete(f"{self._p}lock:{name}", f"{self._p}rec:{name}"))

    async def assign(self, key: str, value: str) -> str:
        async def run() -> Any:
            async with self._r().pipeline(transaction=True) as pipe:
                pipe.set(f"{self._p}rec:{key}", value, nx=True)
                pipe.get(f"{self._p}rec:{key}")
                return await pipe.execute()

        _, stored = await self._call(run())
        return stored.decode() if isinstance(stored, bytes) else str(stored)

    async def lookup(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        raw = await self._call(self._r().mget([f"{self._p}rec:{k}" for k in keys]))
        return [v.decode() if isinstance(v, bytes) else None for v in raw]
