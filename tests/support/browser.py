"""What every Chromium-driven test package needs: the browser check and a loopback server.

Made available as fixtures by the ``conftest.py`` of ``tests/browser`` and ``tests/web``.
In CI (``CI=true``) a missing browser or npm peer is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import missing_browser_deps
from tests.support.proc import ServerProcess

__all__ = ["require_browser", "vidhub"]


def require_browser() -> None:
    """Skip the test when Chromium or the npm peers are missing (fail instead in CI)."""
    why = missing_browser_deps()
    if why is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run in CI: {why}")
    pytest.skip(f"browser tests skipped: {why}")


@pytest.fixture
def vidhub(tmp_path: Path) -> Iterator[ServerProcess]:
    """``vidhub serve`` on 127.0.0.1 with media on 127.0.0.1 and the app endpoints on."""
    require_browser()
    srv = ServerProcess(
        tmp_path / "data", extra_env={"VIDHUB_ICE_HOST_ADDRESSES": "127.0.0.1"}
    ).start()
    try:
        yield srv
    finally:
        srv.stop()
        if os.environ.get("VIDHUB_TEST_SHOW_LOGS"):
            print(srv.log())
