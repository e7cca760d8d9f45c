"""Fixtures for the broker suite: a loopback ``redis-server`` for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis import RedisServer, running_redis


@pytest.fixture(scope="session")
def broker_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` shared by the broker tests; each test uses its own channels."""
    with running_redis(tmp_path_factory.mktemp("broker-redis")) as srv:
        yield srv
