"""Fixtures used by several test packages (made available to all by ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.proc import ServerProcess

__all__ = ["hubs", "shared_server"]


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real ``vidhub serve`` for all the tests of a module (they use distinct ids)."""
    srv = ServerProcess(tmp_path_factory.mktemp("shared") / "data").start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def hubs(shared_server: ServerProcess) -> Iterator[list[Any]]:
    """Thread-based event hubs (ours or ftrack_api's) a test connects: disconnected after it,
    before the module's server stops."""
    made: list[Any] = []
    yield made
    for hub in made:
        if hub.connected:
            hub.disconnect()
