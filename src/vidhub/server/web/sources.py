"""What feeds the stats source: live routers, sockets, the hub, webhooks and REST statuses.

Each reader looks its feature up when it is read, so the order in which features are mounted
does not matter, and a feature that is off (webhooks) reads as zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from vidhub.errors import VidhubError
from vidhub.server.eventhub import EVENTHUB
from vidhub.server.signalling import SIGNALLING
from vidhub.server.stats import StatsSource
from vidhub.server.web.dashboard import DASHBOARD_USER
from vidhub.server.webhooks import WEBHOOKS
from vidhub.sfu.stats import RouterStats

__all__ = ["feed_stats", "rest_status_middleware"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def rest_status_middleware(counts: Counter[str]) -> Middleware:
    """Count REST requests (``/openvidu/api``, ``/api``) by final status into ``counts``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if not (path.startswith("/openvidu/api") or path.startswith("/api/")):
            return await handler(request)
        status = 500
        try:
            resp = await handler(request)
            status = resp.status
            return resp
        except web.HTTPException as exc:
            status = exc.status
            raise
        except VidhubError as exc:
            status = exc.http_status
            raise
        finally:
            counts[str(status)] += 1

    return middleware


def feed_stats(app: web.Application, source: StatsSource) -> None:
    """Connect ``source`` to this app's features (call during set-up, before freezing)."""

    def media(session_id: str) -> RouterStats | None:
        if SIGNALLING not in app:
            return None
        room = app[SIGNALLING].rooms.room(session_id)
        if room is None:
            return None
        return room.router.stats()

    source.media = media
    source.live_sessions = lambda: app[SIGNALLING].rooms.session_ids() if SIGNALLING in app else []
    source.add_sockets(
        "signalling", lambda: len(app[SIGNALLING].sockets) if SIGNALLING in app else 0
    )

    def hub_sockets() -> int:
        if EVENTHUB not in app:
            return 0
        return sum(
            1
            for s in app[EVENTHUB].hub.sessions.values()
            if s.outbox is not None and s.user != DASHBOARD_USER
        )

    source.add_sockets("hub", hub_sockets)

    def hub_sessions() -> float:
        if EVENTHUB not in app:
            return 0
        return sum(1 for s in app[EVENTHUB].hub.sessions.values() if s.user != DASHBOARD_USER)

    def hub_published() -> float:
        return app[EVENTHUB].hub.published if EVENTHUB in app else 0

    def hub_delivered() -> float:
        return app[EVENTHUB].hub.delivered if EVENTHUB in app else 0

    source.add_metric(
        "vidhub_hub_connections",
        "Event hub sessions (open or parked).",
        hub_sessions,
        kind="gauge",
    )
    source.add_metric(
        "vidhub_hub_events_published_total", "Events routed by the hub.", hub_published
    )
    source.add_metric(
        "vidhub_hub_deliveries_total", "Event deliveries to hub sessions.", hub_delivered
    )

    def webhook(attr: str) -> Callable[[], float]:
        def read() -> float:
            if WEBHOOKS not in app:
                return 0
            return float(sum(getattr(s, attr) for s in app[WEBHOOKS].stats().values()))

        return read

    source.add_metric(
        "vidhub_webhook_deliveries_total", "Webhook events delivered (2xx).", webhook("delivered")
    )
    source.add_metric(
        "vidhub_webhook_failures_total", "Webhook events given up on or refused.", webhook("failed")
    )

    counts: Counter[str] = Counter()
    app.middlewares.insert(0, rest_status_middleware(counts))
    source.add_metric(
        "vidhub_rest_requests_total",
        "REST requests by response status.",
        lambda: dict(counts),
        label="status",
    )
