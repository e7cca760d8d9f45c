"""Web-page fixtures: a real ``vidhub serve``, Chromium (``tests/support/driver.mjs``), screenshots.

Screenshots go to ``$VIDHUB_SCREENSHOT_DIR`` when set (``docs/`` holds the committed ones),
else into the test's temporary directory. In CI a missing browser is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.browser import running
from tests.support.browser import vidhub as vidhub
from tests.web.pages import Pages


@pytest.fixture
async def pages(tmp_path: Path) -> AsyncIterator[Pages]:
    async with running(Pages(tmp_path / "chromium.log")) as driver:
        yield driver


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where this test writes its screenshots."""
    out = os.environ.get("VIDHUB_SCREENSHOT_DIR")
    return Path(out) if out else tmp_path / "screenshots"
