"""Presence: which nodes are alive, what each reports, and small shared claims.

Theory of operation (Centrifuge's presence manager, reduced to what a cluster of vidhub nodes
needs). Each node *beats*: it writes its info under its id with a short time to live and adds
its id to the set of known nodes. A known node whose info has expired is dead: it stopped
beating (crash, ``kill -9``, lost network). Survivors race to :meth:`Presence.claim` the right
to clean up after it; exactly one wins. :meth:`Presence.assign` records a value once (the
first writer wins, everyone reads the winner): session placement uses it.

Engines: :class:`MemoryPresence` (one process; tests simulate several nodes on one
:class:`PresenceSpace`) and ``vidhub.broker.redis_presence.RedisPresence`` (keys with TTLs on
the shared Redis). Both pass ``tests/broker/test_presence.py``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

__all__ = ["MemoryPresence", "Presence", "PresenceSpace"]


class Presence(ABC):
    """Node liveness and first-writer-wins records, shared by every node."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect. Raises BrokerUnavailable when the shared server cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Disconnect. Safe to call twice."""

    @abstractmethod
    async def beat(self, node_id: str, info: bytes, ttl_s: float) -> None:
        """Record ``node_id`` as alive with ``info`` for ``ttl_s`` seconds (and as known).

        Raises:
            BrokerUnavailable: the shared server cannot be reached.
        """

    @abstractmethod
    async def members(self) -> dict[str, bytes | None]:
        """Every known node: its info while alive, ``None`` once its beat expired.

        Raises:
            BrokerUnavailable: the shared server cannot be reached.
        """

    @abstractmethod
    async def forget(self, node_id: str) -> None:
        """Remove ``node_id`` from the known nodes (after cleaning up after it)."""

    @abstractmethod
    async def claim(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take the lock ``name`` for ``ttl_s`` seconds; ``False`` if someone holds it."""

    @abstractmethod
    async def release(self, name: str) -> None:
        """Drop the lock or record ``name`` (nothing if absent)."""

    @abstractmethod
    async def assign(self, key: str, value: str) -> str:
        """Set ``key`` to ``value`` unless it is set; returns the value that is stored."""

    @abstractmethod
    async def lookup(self, keys: Sequence[str]) -> list[str | None]:
        """The values of ``keys`` (``None`` where unset), in order."""


class PresenceSpace:
    """What several :class:`MemoryPresence` share (one per simulated node)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.alive: dict[str, tuple[bytes, float]] = {}
        self.known: set[str] = set()
        self.locks: dict[str, float] = {}
        self.records: dict[str, str] = {}


class MemoryPresence(Presence):
    """Presence in process memory (a private space unless given)."""

    def __init__(self, space: PresenceSpace | None = None) -> None:
        self.space = space or PresenceSpace()

    async def beat(self, node_id: str, info: bytes, ttl_s: float) -> None:
        self.space.alive[node_id] = (info, self.space.clock() + ttl_s)
        self.space.known.add(node_id)

    async def members(self) -> dict[str, bytes | None]:
        now = self.space.clock()
        out: dict[str, bytes | None] = {}
        for node in sorted(self.space.known):
            entry = self.space.alive.get(node)
            out[node] = entry[0] if entry is not None and entry[1] > now else None
        return out

    async def forget(self, node_id: str) -> None:
        self.space.known.discard(node_id)
        self.space.alive.pop(node_id, None)

    async def claim(self, name: str, owner: str, ttl_s: float) -> bool:
        now = self.space.clock()
        until = self.space.locks.get(name)
        if until is not None and until > now:
            return False
        self.space.locks[name] = now + ttl_s
        return True

    async def release(self, name: str) -> None:
        self.space.locks.pop(name, None)
        self.space.records.pop(name, None)

    async def assign(self, key: str, value: str) -> str:
        return self.space.records.setdefault(key, value)

    async def lookup(self, keys: Sequence[str]) -> list[str | None]:
        return [self.space.records.get(k) for k in keys]
