"""The web edge: the call page at ``/``, the operator dashboard at ``/dashboard`` and
``GET /metrics``.

``setup_web(app)`` mounts all three. The pages are static files shipped in the package
(``vidhub/web/``, no build step, nothing fetched from elsewhere); what they need from the
server is a thin edge over the existing domain: tokens come from the application endpoints,
signalling from ``/openvidu``, and the dashboard's figures from the one
:class:`~vidhub.server.stats.StatsSource` that also renders ``/metrics``.
"""

from __future__ import annotations

from aiohttp import web

from vidhub.server.stats import stats_source
from vidhub.server.web.dashboard import setup_dashboard
from vidhub.server.web.metrics import setup_metrics
from vidhub.server.web.pages import setup_pages
from vidhub.server.web.sources import feed_stats

__all__ = ["setup_web"]


def setup_web(app: web.Application) -> None:
    """Mount the call page, the dashboard and ``/metrics`` (needs CONFIG and MANAGER)."""
    feed_stats(app, stats_source(app))
    setup_pages(app)
    setup_metrics(app)
    setup_dashboard(app)
