"""Store engines behind :class:`vidhub.core.store.Store`: memory, SQLite (default), Redis."""

from __future__ import annotations

from vidhub.store.memory import MemoryStore
from vidhub.store.sqlite import SqliteStore

__all__ = ["MemoryStore", "SqliteStore"]
