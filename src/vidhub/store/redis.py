"""Redis store engine: sessions and connections shared by every node pointed at one Redis.

Theory of operation: Redis is the source of truth; nothing is cached in this process, so a
write on one node is what the next read on any other node sees. Records are the very bytes
the memory and SQLite engines hold (orjson of :mod:`vidhub.store.records`, through the
``encode_*``/``decode_*`` functions of :mod:`vidhub.store.memory`), so every engine stores
and rebuilds objects the same way; only where the bytes live differs. (The engine does not
subclass :class:`~vidhub.store.memory.MemoryStore`: that one reads from RAM, and a RAM copy
here would be stale as soon as another node writes.)

Keys, all under a configurable prefix ``P`` (default ``vidhub:``) so several deployments or
test runs can share one Redis::

    P seq            counter; creation order of sessions and connections
    P sessions       zset  session id -> seq           (list order)
    P s:<sid>        string, the session record
    P c:<sid>        hash  connection id -> connection record
    P o:<sid>        zset  connection id -> seq        (list order)
    P t:<sid>        hash  token id -> connection id   (pending connections only)
    P x:<sid>        hash  connection id -> its index tag ("t:<token id>" / "n:<node>")
    P n:<node>       zset  "<sid> <cid>" -> seq        (active connections per node)

``<node>`` is ``=<node id>``, or ``-`` for connections activated with no node id.

Every mutation is one Lua script, which Redis runs atomically: a cascade (session delete,
node deactivation) and the indexes (token, node) never disagree with the records, whatever
other nodes do meanwhile. Changes that need Python (``update_connection``'s callable,
``activate``'s new fields) are optimistic: read the record, compute the new one, and
compare-and-set it in a script that writes only if the record is still the bytes that were
read; on a conflict, read again and retry. A token is consumed by exactly one such write:
every concurrent ``activate`` read the same pending record, one compare-and-set succeeds, and
the others re-read a record whose token is gone and return ``None``.

Limits: a single Redis (or a primary with replicas), not Redis Cluster (the scripts touch
keys of several sessions); durability is whatever the Redis server is configured for
(``appendonly``), not an fsync per change as with SQLite.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from vidhub.core.models import Connection, ConnectionId, Session, SessionId
from vidhub.core.store import ActivationInfo, Store
from vidhub.errors import Overloaded, SessionExists, SessionNotFound
from vidhub.store.memory import (
    decode_connection,
    decode_session,
    encode_connection,
    encode_session,
)

__all__ = ["RedisStore", "RedisUnavailable"]

log = logging.getLogger(__name__)

#: Compare-and-set attempts before giving up on a connection other writers keep changing.
MAX_ATTEMPTS = 100

# Index bookkeeping shared by the scripts. ARGV[1] is always the key prefix.
_PRELUDE = """
local p = ARGV[1]
local function unindex(sid, cid)
  local x = p .. 'x:' .. sid
  local old = redis.call('HGET', x, cid)
  if not old then return end
  local kind, val = string.sub(old, 1, 1), string.sub(old, 3)
  if kind == 't' then
    redis.call('HDEL', p .. 't:' .. sid, val)
  else
    redis.call('ZREM', p .. 'n:' .. val, sid .. ' ' .. cid)
  end
  redis.call('HDEL', x, cid)
end
local function index(sid, cid, tag)
  if tag == '' then return end
  local kind, val = string.sub(tag, 1, 1), string.sub(tag, 3)
  if kind == 't' then
    redis.call('HSET', p .. 't:' .. sid, val, cid)
  else
    local seq = redis.call('ZSCORE', p .. 'o:' .. sid, cid)
    redis.call('ZADD', p .. 'n:' .. val, seq, sid .. ' ' .. cid)
  end
  redis.call('HSET', p .. 'x:' .. sid, cid, tag)
end
local function drop_connection(sid, cid)
  unindex(sid, cid)
  redis.call('HDEL', p .. 'c:' .. sid, cid)
  redis.call('ZREM', p .. 'o:' .. sid, cid)
end
"""

# ARGV: prefix, sid, blob -> 1, or 0 when the id is taken
_CREATE_SESSION = """
local sid = ARGV[2]
if redis.call('EXISTS', p .. 's:' .. sid) == 1 then return 0 end
redis.call('SET', p .. 's:' .. sid, ARGV[3])
redis.call('ZADD', p .. 'sessions', redis.call('INCR', p .. 'seq'), sid)
return 1
"""

# ARGV: prefix -> session records in creation order
_LIST_SESSIONS = """
local out = {}
for _, sid in ipairs(redis.call('ZRANGE', p .. 'sessions', 0, -1)) do
  local blob = redis.call('GET', p .. 's:' .. sid)
  if blob then out[#out + 1] = blob end
end
return out
"""

# ARGV: prefix, sid -> {session record, {connection records}}, or nil
_DELETE_SESSION = """
local sid = ARGV[2]
local blob = redis.call('GET', p .. 's:' .. sid)
if not blob then return false end
local conns = {}
for _, cid in ipairs(redis.call('ZRANGE', p .. 'o:' .. sid, 0, -1)) do
  local c = redis.call('HGET', p .. 'c:' .. sid, cid)
  if c then conns[#conns + 1] = c end
  unindex(sid, cid)
end
redis.call('DEL', p .. 's:' .. sid, p .. 'c:' .. sid, p .. 'o:' .. sid, p .. 't:' .. sid,
           p .. 'x:' .. sid)
redis.call('ZREM', p .. 'sessions', sid)
return {blob, conns}
"""

# ARGV: prefix, sid -> connection records in creation order, or nil without the session
_LIST_CONNECTIONS = """
local sid = ARGV[2]
if redis.call('EXISTS', p .. 's:' .. sid) == 0 then return false end
local out = {}
for _, cid in ipairs(redis.call('ZRANGE', p .. 'o:' .. sid, 0, -1)) do
  local c = redis.call('HGET', p .. 'c:' .. sid, cid)
  if c then out[#out + 1] = c end
end
return out
"""

# ARGV: prefix, sid, cid, blob, index tag -> 1, or 0 without the session
_ADD_CONNECTION = """
local sid, cid = ARGV[2], ARGV[3]
if redis.call('EXISTS', p .. 's:' .. sid) == 0 then return 0 end
redis.call('HSET', p .. 'c:' .. sid, cid, ARGV[4])
redis.call('ZADD', p .. 'o:' .. sid, 'NX', redis.call('INCR', p .. 'seq'), cid)
unindex(sid, cid)
index(sid, cid, ARGV[5])
return 1
"""

# ARGV: prefix, sid, token id -> the record of the pending connection, or nil
_BY_TOKEN = """
local sid = ARGV[2]
local cid = redis.call('HGET', p .. 't:' .. sid, ARGV[3])
if not cid then return false end
return redis.call('HGET', p .. 'c:' .. sid, cid)
"""

# ARGV: prefix, sid, cid, expected record, new record, new index tag
#   -> 1 when written, 0 when the stored record is no longer the expected one (or is gone)
_COMPARE_AND_SET = """
local sid, cid = ARGV[2], ARGV[3]
if redis.call('HGET', p .. 'c:' .. sid, cid) ~= ARGV[4] then return 0 end
redis.call('HSET', p .. 'c:' .. sid, cid, ARGV[5])
unindex(sid, cid)
index(sid, cid, ARGV[6])
return 1
"""

# ARGV: prefix, sid, cid -> the removed record, or nil
_DELETE_CONNECTION = """
local sid, cid = ARGV[2], ARGV[3]
local blob = redis.call('HGET', p .. 'c:' .. sid, cid)
if not blob then return false end
drop_connection(sid, cid)
return blob
"""

# ARGV: prefix, node key -> records of the removed active connections, in creation order
_DEACTIVATE_NODE = """
local key = p .. 'n:' .. ARGV[2]
local out = {}
for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
  local at = string.find(member, ' ', 1, true)
  local sid, cid = string.sub(member, 1, at - 1), string.sub(member, at + 1)
  local blob = redis.call('HGET', p .. 'c:' .. sid, cid)
  if blob then out[#out + 1] = blob end
  drop_connection(sid, cid)
end
redis.call('DEL', key)
return out
"""


class RedisUnavailable(Overloaded):
    """The Redis server named by the configuration cannot be reached.

    A 503 with ``Retry-After`` at the REST edge: the request may succeed once Redis is back.
    """

    def __init__(self, message: str = "State store unavailable") -> None:
        super().__init__(message, retry_after=2)


class RedisStore(Store):
    """Sessions and connections in Redis, shared by every node using the same URL and prefix.

    Args:
        url: a ``redis://`` (or ``rediss://``, ``unix://``) URL, as redis-py reads it.
        prefix: prepended to every key; deployments sharing a Redis use different prefixes.
    """

    def __init__(self, url: str, prefix: str = "vidhub:") -> None:
        self._url = url
        self._prefix = prefix
        self._redis: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        #: One update at a time per connection from this process: then ``change`` reruns
        #: only when another node wrote the same connection meanwhile.
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}

    @property
    def prefix(self) -> str:
        return self._prefix

    async def start(self) -> None:
        """Connect and ``PING``.

        Raises:
            RedisUnavailable: the server does not answer (the URL is named without password).
        """
        if self._redis is not None:
            return
        client = aioredis.Redis.from_url(self._url, socket_connect_timeout=5)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise RedisUnavailable(f"cannot reach Redis at {redacted(self._url)}: {exc}") from exc
        self._redis = client
        for name, body in _SCRIPTS.items():
            self._scripts[name] = client.register_script(_PRELUDE + body)

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    async def _run(self, script: str, *args: str | bytes) -> Any:
        if self._redis is None:
            raise RuntimeError("RedisStore used before start()")
        try:
            return await self._scripts[script](args=[self._prefix, *args])
        except (RedisError, OSError) as exc:
            log.warning("Redis call %s failed: %s", script, exc.__class__.__name__)
            raise RedisUnavailable() from exc

    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise RuntimeError("RedisStore used before start()")
        return self._redis

    async def _get(self, key: str) -> bytes | None:
        # the client is built without decode_responses: replies are bytes
        try:
            return cast("bytes | None", await self._client().get(key))
        except (RedisError, OSError) as exc:
            raise RedisUnavailable() from exc

    async def _hget(self, key: str, field: str) -> bytes | None:
        try:
            return cast("bytes | None", await self._client().hget(key, field))
        except (RedisError, OSError) as exc:
            raise RedisUnavailable() from exc

    # -- sessions ------------------------------------------------------------------------
    async def create_session(self, session: Session) -> None:
        if not await self._run("create_session", session.id, encode_session(session)):
            raise SessionExists()

    async def get_session(self, session_id: SessionId) -> Session | None:
        blob = await self._get(f"{self._prefix}s:{session_id}")
        return decode_session(blob) if blob is not None else None

    async def list_sessions(self) -> list[Session]:
        return [decode_session(b) for b in await self._run("list_sessions")]

    async def delete_session(
        self, session_id: SessionId
    ) -> tuple[Session, list[Connection]] | None:
        got = await self._run("delete_session", session_id)
        if got is None:
            return None
        blob, conns = got
        return decode_session(blob), [decode_connection(b) for b in conns]

    # -- connections ---------------------------------------------------------------------
    async def add_connection(self, conn: Connection) -> None:
        blob = encode_connection(conn)
        if not await self._run("add_connection", conn.session_id, conn.id, blob, _tag(conn)):
            raise SessionNotFound()

    async def get_connection(
        self, session_id: SessionId, conn_id: ConnectionId
    ) -> Connection | None:
        blob = await self._hget(f"{self._prefix}c:{session_id}", conn_id)
        return decode_connection(blob) if blob is not None else None

    async def list_connections(self, session_id: SessionId) -> list[Connection] | None:
        blobs = await self._run("list_connections", session_id)
        return None if blobs is None else [decode_connection(b) for b in blobs]

    async def update_connection(
        self, session_id: SessionId, conn_id: ConnectionId, change: Callable[[Connection], None]
    ) -> Connection | None:
        """See :meth:`Store.update_connection`.

        ``change`` gets a fresh copy each time it runs, and runs again (on a new copy) if
        another node changed the connection between the read and the write; an exception
        from it stores nothing and propagates.
        """
        with self._lock_table_entry(session_id, conn_id) as lock:
            async with lock:
                key = f"{self._prefix}c:{session_id}"
                for _ in range(MAX_ATTEMPTS):
                    old = await self._hget(key, conn_id)
                    if old is None:
                        return None
                    work = decode_connection(old)
                    token_id = work.token_id
                    change(work)
                    # identity fields are not the caller's to change
                    work.id, work.session_id, work.token_id = conn_id, session_id, token_id
                    if await self._compare_and_set(work, old):
                        return work
        raise _contended(session_id)

    async def delete_connection(
        self, session_id: SessionId, conn_id: ConnectionId
    ) -> Connection | None:
        blob = await self._run("delete_connection", session_id, conn_id)
        return decode_connection(blob) if blob is not None else None

    async def activate(
        self, session_id: SessionId, token_id: str, info: ActivationInfo
    ) -> Connection | None:
        for _ in range(MAX_ATTEMPTS):
            old = await self._run("by_token", session_id, token_id)
            if old is None:
                return None
            c = decode_connection(old)
            info.apply(c)
            if await self._compare_and_set(c, old):
                return c
        raise _contended(session_id)

    async def deactivate_node(self, node_id: str | None) -> list[Connection]:
        return [decode_connection(b) for b in await self._run("deactivate_node", _node(node_id))]

    # -- helpers -------------------------------------------------------------------------
    async def _compare_and_set(self, c: Connection, old: bytes) -> bool:
        written = await self._run(
            "compare_and_set", c.session_id, c.id, old, encode_connection(c), _tag(c)
        )
        return bool(written)

    @contextmanager
    def _lock_table_entry(self, session_id: str, conn_id: str) -> Iterator[asyncio.Lock]:
        """The per-connection lock, dropped from the table once nobody holds or awaits it."""
        k = (session_id, conn_id)
        entry = self._locks.get(k)
        if entry is None:
            entry = self._locks[k] = (asyncio.Lock(), [0])
        lock, users = entry
        users[0] += 1
        try:
            yield lock
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[k]


_SCRIPTS = {
    "create_session": _CREATE_SESSION,
    "list_sessions": _LIST_SESSIONS,
    "delete_session": _DELETE_SESSION,
    "list_connections": _LIST_CONNECTIONS,
    "add_connection": _ADD_CONNECTION,
    "by_token": _BY_TOKEN,
    "compare_and_set": _COMPARE_AND_SET,
    "delete_connection": _DELETE_CONNECTION,
    "deactivate_node": _DEACTIVATE_NODE,
}


def _node(node_id: str | None) -> str:
    return "-" if node_id is None else "=" + node_id


def _tag(c: Connection) -> str:
    """How a connection is indexed: by its token while pending, by its node while active."""
    if c.status == "pending":
        return "t:" + c.token_id
    if c.status == "active":
        return "n:" + _node(c.node_id)
    return ""


def _contended(session_id: str) -> RuntimeError:
    return RuntimeError(
        f"connection of session {session_id!r} kept changing under {MAX_ATTEMPTS} attempts"
    )


def redacted(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))
