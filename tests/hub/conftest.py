"""Fixtures for the hub tests: a loopback ``redis-server`` for the bridge suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis import RedisServer, running_redis


@pytest.fixture(scope="session")
def hub_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` shared by the bridge tests; each test uses its own prefix."""
    with running_redis(tmp_path_factory.mktemp("hub-redis")) as srv:
        yield srv
