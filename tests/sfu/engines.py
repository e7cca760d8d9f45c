"""Helpers the router suite uses on both engines (see ``conftest.py``)."""

from __future__ import annotations

from collections.abc import Callable

from vidhub.media.router import WorkerRouter
from vidhub.sfu.router import Router
from vidhub.sfu.stats import RouterStats

__all__ = ["AnyRouter", "MakeRouter", "consumer_ids", "producer_ids", "stats_of"]

AnyRouter = Router | WorkerRouter
MakeRouter = Callable[..., AnyRouter]


async def stats_of(router: AnyRouter) -> RouterStats:
    """The router's counters now (a worker-backed router asks its worker)."""
    if isinstance(router, WorkerRouter):
        return await router.fetch_stats()
    return router.stats()


async def producer_ids(router: AnyRouter) -> list[str]:
    return [p.producer_id for p in (await stats_of(router)).producers]


async def consumer_ids(router: AnyRouter) -> list[str]:
    return [c.consumer_id for c in (await stats_of(router)).consumers]
