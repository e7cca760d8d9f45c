"""``GET /metrics``: the stats source in the Prometheus text format, behind Basic auth.

The credentials are REST's (``OPENVIDUAPP`` and the secret), so a scraper is configured with
``basic_auth: {username: OPENVIDUAPP, password: <secret>}``.
"""

from __future__ import annotations

from aiohttp import web

from vidhub.server.auth import check_basic
from vidhub.server.keys import CONFIG
from vidhub.server.stats import STATS, StatsSource

__all__ = ["CONTENT_TYPE", "setup_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: 200 text exposition; 401 with a Basic challenge without the secret."""
    if not check_basic(request.headers.get("Authorization"), request.app[CONFIG].secret):
        return web.Response(
            status=401,
            text="Unauthorized\n",
            headers={"WWW-Authenticate": 'Basic realm="vidhub metrics"'},
        )
    snap = await request.app[STATS].collect()
    resp = web.Response(body=StatsSource.render_prometheus(snap).encode())
    resp.headers["Content-Type"] = CONTENT_TYPE
    resp.headers["Cache-Control"] = "no-store"
    return resp


def setup_metrics(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics)
