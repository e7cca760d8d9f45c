"""The in-process engines keep records out of the cyclic GC's way.

A store of live objects made every full collection walk all sessions (≈50 ms per 15 k
sessions, a stall of the whole event loop); the engines hold encoded records instead. This
checks the property directly: adding many sessions and connections adds (almost) no
GC-tracked objects.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from vidhub.core.models import Connection, ConnectionId, Session, SessionId
from vidhub.core.store import ActivationInfo, Store
from vidhub.protocol.openvidu_rest import ConnectionProperties, SessionProperties
from vidhub.store import MemoryStore, SqliteStore


@pytest.mark.parametrize("engine", ["memory", "sqlite"])
async def test_records_are_not_gc_tracked(engine: str, tmp_path: Path) -> None:
    store: Store = MemoryStore() if engine == "memory" else SqliteStore(tmp_path / "db.sqlite")
    await store.start()
    try:
        n = 2000
        gc.collect()
        before = len(gc.get_objects())
        for i in range(n):
            sid = SessionId(f"s{i}")
            await store.create_session(Session(sid, i, SessionProperties()))
            await store.add_connection(
                Connection(
                    ConnectionId(f"c{i}"), sid, "ws://x", f"tok{i}", i, ConnectionProperties()
                )
            )
            if i % 2:
                await store.activate(sid, f"tok{i}", ActivationInfo(i, "127.0.0.1", "p", "d"))
        gc.collect()
        grown = len(gc.get_objects()) - before
        assert grown < n // 10, f"{grown} GC-tracked objects for {n} sessions"
    finally:
        await store.close()
