"""Browser-test fixtures: a real ``vidhub serve``, the test page, and Chromium.

In CI (``CI=true``) a missing browser or npm peer is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.browser.chromium import BUNDLE, Chromium
from tests.support.browser import require_browser, running
from tests.support.proc import ServerProcess

PAGE = Path(__file__).resolve().parent / "page"


@pytest.fixture
def vidhub(tmp_path: Path) -> Iterator[ServerProcess]:
    """``vidhub serve --media-workers 2`` on 127.0.0.1 (media bound to 127.0.0.1 too).

    Two media workers, as ``vidhub serve`` starts on a 2-core machine by default: every
    openvidu-browser call here goes through a worker process (the in-process engine is
    covered by the router suite, the signalling tests and tests/web).
    """
    require_browser()
    srv = ServerProcess(
        tmp_path / "data",
        extra_env={"VIDHUB_ICE_HOST_ADDRESSES": "127.0.0.1"},
        extra_args=["--media-workers", "2"],
    ).start()
    try:
        yield srv
    finally:
        srv.stop()
        if os.environ.get("VIDHUB_TEST_SHOW_LOGS"):
            print(srv.log())


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    """The test page and the openvidu-browser bundle (from node_modules), on loopback."""
    require_browser()

    async def bundle(request: web.Request) -> web.FileResponse:
        return web.FileResponse(BUNDLE)

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE / "index.html")

    app = web.Application()
    app.router.add_get("/openvidu-browser.js", bundle)
    app.router.add_get("/", index)
    app.router.add_static("/", PAGE)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/"))
    finally:
        await server.close()


@pytest.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Chromium]:
    async with running(Chromium(tmp_path / "chromium.log")) as driver:
        yield driver
