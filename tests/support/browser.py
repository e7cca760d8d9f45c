"""What every Chromium-driven test package needs: the browser check and a loopback server.

Made available as fixtures by the ``conftest.py`` of ``tests/browser`` and ``tests/web``.
In CI (``CI=true``) a missing browser or npm peer is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.browser.chromium import Chromium, missing_browser_deps
from tests.support.proc import ServerProcess

__all__ = ["require_browser", "running", "serving", "vidhub"]

D = TypeVar("D", bound=Chromium)


def require_browser() -> None:
    """Skip the test when Chromium or the npm peers are missing (fail instead in CI)."""
    why = missing_browser_deps()
    if why is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run in CI: {why}")
    pytest.skip(f"browser tests skipped: {why}")


@contextlib.asynccontextmanager
async def running(driver: D) -> AsyncIterator[D]:
    """``driver`` started for the duration (the test skips when there is no browser); its
    log is printed afterwards when ``VIDHUB_TEST_SHOW_LOGS`` is set."""
    require_browser()
    await driver.start()
    try:
        yield driver
    finally:
        await driver.stop()
        if os.environ.get("VIDHUB_TEST_SHOW_LOGS"):
            print(driver.log())


@contextlib.contextmanager
def serving(
    data_dir: Path, extra_env: dict[str, str] | None = None, extra_args: list[str] | None = None
) -> Iterator[ServerProcess]:
    """``vidhub serve`` for Chromium tests: on 127.0.0.1 with media on 127.0.0.1, plus
    ``extra_env`` and ``extra_args``; its log is printed afterwards when
    ``VIDHUB_TEST_SHOW_LOGS`` is set."""
    require_browser()
    env = {
        "VIDHUB_ICE_HOST_ADDRESSES": "127.0.0.1",
        # Chromium, aiortc peers and the server share the test machine's cores, so the
        # loop often runs more than the default 50 ms late; these tests are about the
        # pages and clients, and shedding has its own tests
        "VIDHUB_SHED_BUDGET_MS": "2000",
        **(extra_env or {}),
    }
    srv = ServerProcess(data_dir, extra_env=env, extra_args=extra_args).start()
    try:
        yield srv
    finally:
        srv.stop()
        if os.environ.get("VIDHUB_TEST_SHOW_LOGS"):
            print(srv.log())


@pytest.fixture
def vidhub(tmp_path: Path) -> Iterator[ServerProcess]:
    """``vidhub serve`` on 127.0.0.1 with media on 127.0.0.1 and the app endpoints on."""
    with serving(tmp_path / "data") as srv:
        yield srv
