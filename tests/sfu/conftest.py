"""The router suite runs on both engines: the in-process Router and a media worker's.

``make_router(**settings)`` builds a router the way ``vidhub serve`` would with
``--media-workers 0`` (a :class:`~vidhub.sfu.router.Router` in this process) or with
``--media-workers 1`` (a :class:`~vidhub.media.router.WorkerRouter` whose Router lives in a
child process, driven over the control channel). Media UDP goes straight between the test's
aiortc peers and whichever process owns the router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.sfu.engines import AnyRouter, MakeRouter

from vidhub.media.channel import RouterSettings
from vidhub.media.pool import WorkerPool
from vidhub.sfu import aiortc_glue
from vidhub.sfu.router import Router


@pytest.fixture(params=["inprocess", "workers"])
async def make_router(request: pytest.FixtureRequest) -> AsyncIterator[MakeRouter]:
    """Builds routers on the engine of the test's parameter; closes them (and the pool)."""
    # the test's own peers gather on loopback only, whichever process the router is in
    aiortc_glue.install_host_addresses(["127.0.0.1"])
    made: list[AnyRouter] = []
    pool: WorkerPool | None = None
    if request.param == "workers":
        pool = await WorkerPool(1, log_level="warning").start()

    def make(**kw: Any) -> AnyRouter:
        kw.setdefault("host_addresses", ["127.0.0.1"])
        router: AnyRouter
        if pool is None:
            router = Router(**kw)
        else:
            settings = RouterSettings(
                host_addresses=tuple(kw["host_addresses"]),
                announced_address=kw.get("announced_address"),
                forced_video_codec=kw.get("forced_video_codec"),
            )
            router = pool.router("test", settings)
        made.append(router)
        return router

    try:
        yield make
    finally:
        for router in made:
            await router.close()
        if pool is not None:
            await pool.close()


@pytest.fixture
async def router(make_router: MakeRouter) -> AnyRouter:
    return make_router()
