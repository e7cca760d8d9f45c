"""The web-page commands of ``tests/support/driver.mjs``: viewports, input and screenshots."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.browser.chromium import Chromium, DriverError

__all__ = ["Pages"]


class Pages(Chromium):
    """One driver process for our own pages; each named browser has a fresh profile."""

    async def open(  # type: ignore[override]
        self,
        name: str,
        url: str = "",
        *,
        width: int = 1280,
        height: int = 720,
        deny_media: bool = False,
    ) -> None:
        """Start browser ``name`` (fresh profile, ``width`` x ``height``) and load ``url``."""
        await self._call(
            60, cmd="open", name=name, url=url, width=width, height=height, deny=deny_media
        )

    async def goto(self, name: str, url: str) -> None:
        await self._call(30, cmd="goto", name=name, url=url)

    async def screenshot(self, name: str, path: Path, full_page: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self._call(30, cmd="screenshot", name=name, path=str(path), fullPage=full_page)
        return path

    async def press(self, name: str, key: str) -> None:
        await self._call(10, cmd="press", name=name, key=key)

    async def click(self, name: str, selector: str) -> None:
        await self._call(10, cmd="click", name=name, selector=selector)

    async def fill(self, name: str, selector: str, text: str) -> None:
        await self._call(10, cmd="fill", name=name, selector=selector, text=text)

    async def errors(self, name: str) -> list[str]:
        """Console errors and uncaught exceptions the page has logged so far."""
        out: list[str] = await self._call(10, cmd="errors", name=name)
        return out

    async def wait(self, name: str, condition: str, timeout_s: float, what: str = "") -> Any:
        """Poll the JS expression ``condition`` in the page until truthy; returns its value."""
        limit_ms = int(timeout_s * 1000)
        message = json.dumps("timed out waiting for " + (what or condition))
        expr = (
            f"(async () => {{ const until = Date.now() + {limit_ms}; for (;;) {{"
            f" const v = await (async () => ({condition}))(); if (v) return v;"
            f" if (Date.now() > until) throw new Error({message});"
            " await new Promise((r) => setTimeout(r, 50)); } })()"
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                return await self.eval(name, expr, timeout_s + 10)
            except DriverError as exc:
                # a navigation (form post, reload) ends the polling script: poll the new page
                if "context was destroyed" not in str(exc) or loop.time() > deadline:
                    raise
