"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.fixtures import hubs as hubs
from tests.support.fixtures import shared_server as shared_server
from tests.support.proc import ServerProcess
from vidhub.clock import ManualClock
from vidhub.config import Config
from vidhub.server.app import make_app
from vidhub.store import MemoryStore

SECRET = "MY_SECRET"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def client(clock: ManualClock) -> AsyncIterator[TestClient[object, object]]:
    """An in-process vidhub app over a memory store, with Basic auth set."""
    import base64

    cfg = Config(store="memory", garbage_interval_s=0)
    app = make_app(cfg, clock=clock, store=MemoryStore())
    cred = base64.b64encode(f"OPENVIDUAPP:{SECRET}".encode()).decode()
    async with TestClient(TestServer(app), headers={"Authorization": f"Basic {cred}"}) as c:
        yield c


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A real ``vidhub serve`` process with SQLite under a temp dir."""
    srv = ServerProcess(tmp_path / "data").start()
    try:
        yield srv
    finally:
        srv.stop()
