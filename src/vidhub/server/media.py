"""The media plane of ``vidhub serve``: routers in this process, or in media worker processes.

``--media-workers N`` (``VIDHUB_MEDIA_WORKERS``) with N > 0 starts a
:class:`~vidhub.media.pool.WorkerPool` with the app and stops it after the rooms have closed
their routers; each new session's router is then placed on the least loaded worker. ``/health``
shows each worker's state and load (:func:`media_health`) and ``/metrics`` has them per worker.
With 0 the caller keeps the in-process SFU routers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from vidhub.config import Config
from vidhub.media.channel import RouterSettings
from vidhub.media.pool import WorkerPool
from vidhub.protocol.openvidu_rest import IceServer

__all__ = ["MEDIA_WORKERS", "media_health", "setup_media_workers"]

MEDIA_WORKERS = web.AppKey("media_workers", WorkerPool)


def setup_media_workers(
    app: web.Application,
    cfg: Config,
    *,
    ice_servers: Sequence[IceServer],
    host_addresses: Sequence[str] | None,
) -> WorkerPool | None:
    """With ``cfg.media_workers`` > 0: the pool whose ``router`` is the RouterFactory, started
    and stopped with ``app`` (register before the rooms, so it stops after them). Else None.
    """
    if cfg.media_workers <= 0:
        return None
    settings = RouterSettings(
        ice_servers=tuple(
            {"urls": s.url, "username": s.username, "credential": s.credential} for s in ice_servers
        ),
        host_addresses=tuple(host_addresses) if host_addresses is not None else None,
        announced_address=cfg.ice_announced_address or None,
        forced_video_codec=cfg.forced_video_codec,
    )
    pool = WorkerPool(cfg.media_workers, settings, log_level=cfg.log_level)
    app[MEDIA_WORKERS] = pool

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        _add_metrics(app, pool)
        await pool.start()
        yield
        await pool.close()

    app.cleanup_ctx.append(lifetime)
    return pool


def media_health(app: web.Application) -> dict[str, Any]:
    """``{"mediaWorkers": [...]}`` for ``/health`` when media runs in workers, else ``{}``."""
    pool = app.get(MEDIA_WORKERS)
    if pool is None:
        return {}
    return {"mediaWorkers": [w.as_json() for w in pool.loads()]}


def _add_metrics(app: web.Application, pool: WorkerPool) -> None:
    """Per-worker figures in ``/metrics``, when the app has a stats source (web feature)."""
    from vidhub.server.stats import STATS

    source = app.get(STATS)
    if source is None:
        return

    def per_worker(attr: str) -> Any:
        return lambda: {str(w.index): float(getattr(w, attr)) for w in pool.loads()}

    for name, help_, attr in (
        ("vidhub_media_worker_sessions", "Sessions whose media a worker forwards.", "sessions"),
        (
            "vidhub_media_worker_forwarded_packets_per_second",
            "RTP packets a worker forwarded per second (last report).",
            "forwarded_pps",
        ),
        (
            "vidhub_media_worker_cpu_percent",
            "CPU a worker used, in % of one core (last report).",
            "cpu_percent",
        ),
        ("vidhub_media_worker_restarts", "Times a worker was replaced.", "restarts"),
    ):
        source.add_metric(name, help_, per_worker(attr), kind="gauge", label="worker")
