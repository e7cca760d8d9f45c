"""Fixtures for the engine conformance suites: a loopback ``redis-server`` for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis import RedisServer, running_redis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` shared by the backend tests; each test uses its own key prefix."""
    with running_redis(tmp_path_factory.mktemp("redis")) as srv:
        yield srv
