"""Store engines behind :class:`vidhub.core.store.Store`: memory, SQLite (default), Redis.

``RedisStore`` is imported on first use, so the ``redis`` package (the ``vidhub[redis]``
extra) is needed only by deployments that choose it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vidhub.store.memory import MemoryStore
from vidhub.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from vidhub.store.redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "SqliteStore"]


def __getattr__(name: str) -> Any:
    if name == "RedisStore":
        from vidhub.store.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
