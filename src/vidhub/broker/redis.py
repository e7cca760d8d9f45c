"""Redis broker engine: Redis pub/sub (``PUBLISH`` / ``SUBSCRIBE``) between nodes.

Theory of operation: one client for ``PUBLISH`` (its pool reconnects on demand) and one
pub/sub connection read by a single task, which calls the handlers of each message in
order. ``subscribe`` returns once Redis has confirmed the ``SUBSCRIBE`` (the reader sees the
confirmation), so a message published afterwards by any node is delivered. When the pub/sub
connection drops, the reader logs it, waits (backoff from 50 ms up to 2 s) and opens a fresh
connection subscribed to every channel that still has handlers; what was published in
between is lost for this node (pub/sub is at most once). A handler that raises is logged and
delivery goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from vidhub.broker.base import Broker, BrokerUnavailable, Handler, Unsubscribe

__all__ = ["RedisBroker"]

log = logging.getLogger(__name__)

#: Longest wait between two reconnection attempts of the pub/sub connection.
MAX_BACKOFF_S = 2.0
#: How long ``subscribe`` waits for Redis to confirm a subscription.
SUBSCRIBE_TIMEOUT_S = 10.0


def _where(url: str) -> str:
    """``host:port`` of a Redis URL: never the password."""
    parts = urlsplit(url)
    return f"{parts.hostname or parts.path}:{parts.port or ''}"


def _channel_name(msg: dict[str, Any]) -> str:
    raw = msg.get("channel")
    return raw.decode() if isinstance(raw, bytes) else str(raw)


class RedisBroker(Broker):
    """A broker on one Redis server (the same one the Redis store uses, or another).

    Args:
        url: a ``redis://`` (``rediss://``, ``unix://``) URL, as redis-py reads it.
    """

    def __init__(self, url: str) -> None:
        self._url = url
        self._redis: aioredis.Redis | None = None
        self._sub_redis: aioredis.Redis | None = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._handlers: dict[str, list[Handler]] = {}
        #: Subscriptions sent and not yet confirmed, per channel.
        self._confirm: dict[str, list[asyncio.Future[None]]] = {}
        self._connected = asyncio.Event()
        self._closed = False
        self._private = f"__vidhub_broker_{uuid.uuid4().hex}"

    async def start(self) -> None:
        """Connect both connections.

        Raises:
            BrokerUnavailable: Redis does not answer.
        """
        if self._redis is not None or self._closed:
            return
        # PUBLISH retries once on a fresh connection (a pooled one may predate a Redis
        # restart); the pub/sub connection never retries inside redis-py: the reader owns
        # reconnection, so it can resubscribe and log it.
        client = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=5, retry=Retry(NoBackoff(), 1)
        )
        sub_client = aioredis.Redis.from_url(
            self._url, socket_connect_timeout=5, retry=Retry(NoBackoff(), 0)
        )
        try:
            await client.ping()
            pubsub = await self._open_pubsub(sub_client)
        except (RedisError, OSError, TimeoutError) as exc:
            await client.aclose()
            await sub_client.aclose()
            raise BrokerUnavailable(f"cannot reach Redis at {_where(self._url)}: {exc}") from exc
        self._redis, self._sub_redis, self._pubsub = client, sub_client, pubsub
        self._connected.set()
        self._reader = asyncio.create_task(self._read(), name="redis-broker")

    async def _open_pubsub(self, client: aioredis.Redis) -> Any:
        """A pub/sub connection subscribed to every channel with handlers, confirmed.

        Called only where nothing else reads the connection (start-up, the reader itself).
        A private channel keeps it subscribed (and readable) when no handler is; its name is
        unique to this broker, so nothing is ever published on it.

        Raises:
            RedisError / OSError / TimeoutError: Redis did not confirm in time.
        """
        pubsub: Any = client.pubsub()
        try:
            expected = {self._private, *self._handlers}
            await pubsub.subscribe(*expected)
            confirmed: set[str] = set()
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                while not expected <= confirmed:
                    msg = await pubsub.get_message(timeout=None)
                    if msg is None:
                        continue
                    if msg.get("type") == "subscribe":
                        confirmed.add(_channel_name(msg))
                    await self._dispatch(msg)
        except BaseException:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
            raise
        return pubsub

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._handlers.clear()
        for waiters in self._confirm.values():
            for fut in waiters:
                fut.cancel()
        self._confirm.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()
        for client in (self._redis, self._sub_redis):
            if client is not None:
                await client.aclose()
        self._redis = self._sub_redis = None

    async def publish(self, channel: str, payload: bytes) -> int:
        if self._redis is None:
            raise RuntimeError("RedisBroker used before start()")
        try:
            return int(await self._redis.publish(channel, payload))
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("Redis PUBLISH failed: %s", exc.__class__.__name__)
            raise BrokerUnavailable() from exc

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """All ``PUBLISH`` commands in one pipeline (one round trip, order kept)."""
        if self._redis is None:
            raise RuntimeError("RedisBroker used before start()")
        if not messages:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, payload in messages:
                    pipe.publish(channel, payload)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("Redis PUBLISH pipeline failed: %s", exc.__class__.__name__)
            raise BrokerUnavailable() from exc

    async def subscribe(self, channel: str, handler: Handler) -> Unsubscribe:
        """Subscribe; returns once Redis confirmed it.

        Raises:
            BrokerUnavailable: Redis did not confirm within ``SUBSCRIBE_TIMEOUT_S``.
        """
        if self._redis is None or self._closed:
            raise RuntimeError("RedisBroker used before start() or after close()")
        handlers = self._handlers.setdefault(channel, [])
        handlers.append(handler)
        if len(handlers) == 1:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._confirm.setdefault(channel, []).append(fut)
            try:
                await asyncio.wait_for(self._confirmed(channel, fut), SUBSCRIBE_TIMEOUT_S)
            except TimeoutError as exc:
                waiters = self._confirm.get(channel, [])
                if fut in waiters:
                    waiters.remove(fut)
                await self._forget(channel, handler)
                raise BrokerUnavailable() from exc

        async def unsubscribe() -> None:
            await self._forget(channel, handler)

        return unsubscribe

    async def _confirmed(self, channel: str, fut: asyncio.Future[None]) -> None:
        await self._connected.wait()
        try:
            await self._pubsub.subscribe(channel)
        except (RedisError, OSError) as exc:
            # the reader reconnects and subscribes every channel with handlers again
            log.warning("SUBSCRIBE %s failed (%s); waiting", channel, exc.__class__.__name__)
        await asyncio.shield(fut)

    async def _forget(self, channel: str, handler: Handler) -> None:
        handlers = self._handlers.get(channel)
        if handlers is None or handler not in handlers:
            return
        handlers.remove(handler)
        if handlers:
            return
        del self._handlers[channel]
        if self._pubsub is not None and not self._closed:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(channel)

    async def _read(self) -> None:
        backoff = 0.05
        while not self._closed:
            try:
                msg = await self._pubsub.get_message(timeout=None)
            except (RedisError, OSError) as exc:
                log.warning(
                    "Redis pub/sub connection lost (%s); reconnecting", exc.__class__.__name__
                )
                self._connected.clear()
                backoff = await self._reconnect(backoff)
                continue
            backoff = 0.05
            if msg is not None:
                await self._dispatch(msg)

    async def _reconnect(self, backoff: float) -> float:
        """Replace the pub/sub connection; returns the next backoff."""
        old, self._pubsub = self._pubsub, None
        if old is not None:
            with contextlib.suppress(RedisError, OSError):
                await old.aclose()
        assert self._sub_redis is not None
        while not self._closed:
            # a reconnection pause, not test synchronisation
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            try:
                self._pubsub = await self._open_pubsub(self._sub_redis)
            except (RedisError, OSError, TimeoutError) as exc:
                log.debug("Redis still unreachable: %s", exc.__class__.__name__)
                continue
            log.info("Redis pub/sub connection re-established")
            self._connected.set()
            break
        return backoff

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        channel = _channel_name(msg)
        if kind == "subscribe":
            for fut in self._confirm.pop(channel, []):
                if not fut.done():
                    fut.set_result(None)
            return
        if kind != "message":
            return
        payload = msg.get("data")
        if not isinstance(payload, bytes):
            return
        for handler in list(self._handlers.get(channel, ())):
            try:
                await handler(payload)
            except Exception:
                log.exception("broker handler %r failed on channel %s", handler, channel)
