"""Python side of ``tests/support/driver.mjs``: headless Chromium pages driven over a JSON-lines
pipe."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any, Self

__all__ = ["CHROMIUM", "PEERS", "Chromium", "missing_browser_deps"]

HERE = Path(__file__).resolve().parent
PEERS = HERE.parent / "peers" / "node_modules"
DRIVER = HERE.parent / "support" / "driver.mjs"
CHROMIUM = os.environ.get("VIDHUB_CHROMIUM", "/usr/bin/chromium")
BUNDLE = PEERS / "openvidu-browser" / "static" / "js" / "openvidu-browser-2.32.1.js"


def missing_browser_deps() -> str | None:
    """Why browser tests cannot run here, or ``None`` when everything is installed."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium, or make test-deps)"
    if shutil.which("node") is None:
        return "node is missing (apt-get install nodejs, or make test-deps)"
    for need in (PEERS / "playwright-core" / "package.json", BUNDLE):
        if not need.exists():
            return f"{need} is missing (cd tests/peers && npm install, or make test-deps)"
    return None


class DriverError(RuntimeError):
    """A command failed inside the driver or the page."""


class Chromium:
    """One driver process; each named browser has its own profile and page."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._proc: asyncio.subprocess.Process | None = None
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._log: Any = None

    async def start(self) -> Self:
        self._log = self.log_path.open("wb")  # closed in stop()
        self._proc = await asyncio.create_subprocess_exec(
            "node",
            str(DRIVER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
        )
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            msg = json.loads(line)
            fut = self._pending.pop(msg.get("id"), None)
            if fut is None or fut.done():
                continue
            if msg["ok"]:
                fut.set_result(msg["value"])
            else:
                fut.set_exception(DriverError(msg["error"]))
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(DriverError("driver exited; see " + str(self.log_path)))

    async def _call(self, timeout_s: float, **cmd: Any) -> Any:
        assert self._proc is not None and self._proc.stdin is not None
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        self._proc.stdin.write((json.dumps(dict(cmd, id=rid)) + "\n").encode())
        await self._proc.stdin.drain()
        return await asyncio.wait_for(fut, timeout_s)

    async def open(self, name: str, url: str) -> None:
        """Start browser ``name`` with a fresh profile and load ``url``."""
        await self._call(60, cmd="open", name=name, url=url)

    async def eval(self, name: str, expr: str, timeout_s: float = 30) -> Any:
        """Await the JS expression ``expr`` in ``name``'s page; returns its JSON value."""
        return await self._call(timeout_s, cmd="eval", name=name, expr=expr)

    async def close(self, name: str) -> None:
        await self._call(30, cmd="close", name=name)

    async def stop(self) -> None:
        """Close every browser and end the driver (killed if it does not exit)."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(Exception):
                await self._call(30, cmd="quit")
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._log is not None:
            self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def js(value: Any) -> str:
    """A Python value as a JS literal, for building ``eval`` expressions."""
    return json.dumps(value)
