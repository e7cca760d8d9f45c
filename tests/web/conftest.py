"""Web-page fixtures: a real ``vidhub serve``, Chromium driven by ``driver.mjs``, screenshots.

Screenshots go to ``$VIDHUB_SCREENSHOT_DIR`` when set (``docs/`` holds the committed ones),
else into the test's temporary directory. In CI a missing browser is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.browser.chromium import missing_browser_deps
from tests.support.proc import ServerProcess
from tests.web.pages import Pages


def _require_browser() -> None:
    why = missing_browser_deps()
    if why is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"browser tests cannot run in CI: {why}")
    pytest.skip(f"browser tests skipped: {why}")


@pytest.fixture
def vidhub(tmp_path: Path) -> Iterator[ServerProcess]:
    """``vidhub serve`` on 127.0.0.1 with media on 127.0.0.1 and the app endpoints on."""
    _require_browser()
    srv = ServerProcess(
        tmp_path / "data", extra_env={"VIDHUB_ICE_HOST_ADDRESSES": "127.0.0.1"}
    ).start()
    try:
        yield srv
    finally:
        srv.stop()
        if os.environ.get("VIDHUB_TEST_SHOW_LOGS"):
            print(srv.log())


@pytest.fixture
async def pages(tmp_path: Path) -> AsyncIterator[Pages]:
    _require_browser()
    driver = await Pages(tmp_path / "chromium.log").start()
    try:
        yield driver
    finally:
        await driver.stop()
        if os.environ.get("VIDHUB_TEST_SHOW_LOGS"):
            print(driver.log())


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where this test writes its screenshots."""
    out = os.environ.get("VIDHUB_SCREENSHOT_DIR")
    return Path(out) if out else tmp_path / "screenshots"
