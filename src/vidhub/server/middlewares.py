"""Middlewares: error translation, load shedding, CORS and REST authentication.

Every :class:`VidhubError` becomes OpenVidu's status and body here, once; anything else
becomes a logged 500 with a generic body and never a stack trace.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from vidhub.errors import Overloaded, VidhubError
from vidhub.protocol import jsoncodec
from vidhub.server.auth import check_basic
from vidhub.server.limits import LimitCounters, LoopLag
from vidhub.server.tcpguard import GuardedRequestHandler

__all__ = [
    "auth_middleware",
    "cors_middleware",
    "error_middleware",
    "error_response",
    "shed_middleware",
]

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Shedding by waiting time needs a queue: more requests than this arrived and unanswered.
#: An isolated request on a starved host (a late loop, nobody else waiting) is served.
SHED_MIN_QUEUE = 8

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Requested-With",
    "Access-Control-Max-Age": "3600",
}

PUBLIC_PATHS = frozenset({"/openvidu/api/config/openvidu-publicurl"})


def error_response(status: int, message: str, path: str, *, empty: bool = False) -> web.Response:
    """OpenVidu's error body ``{timestamp,status,error,message,path}``, or an empty body."""
    if empty:
        return web.Response(status=status)
    body = {
        "timestamp": time.time_ns() // 1_000_000,
        "status": status,
        "error": _REASONS.get(status, "Error"),
        "message": message,
        "path": path,
    }
    return web.Response(
        status=status, body=jsoncodec.dumps_bytes(body), content_type="application/json"
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate exceptions into OpenVidu-shaped responses; never leak a trace."""
    try:
        return await handler(request)
    except Overloaded as exc:
        resp = error_response(503, exc.message, request.path)
        resp.headers["Retry-After"] = str(exc.retry_after)
        return resp
    except VidhubError as exc:
        return error_response(exc.http_status, exc.message, request.path, empty=exc.empty_body)
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "Request body too large", request.path)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "Internal server error", request.path)


def shed_middleware(
    max_inflight: int,
    *,
    lag: LoopLag | None = None,
    budget_s: float = 0.0,
    counters: LimitCounters | None = None,
) -> Middleware:
    """Admission: answer 503 + Retry-After instead of queueing work the server cannot do in time.

    A request is shed when ``max_inflight`` API requests are already in progress, or, with a
    ``budget_s``, when its estimated wait exceeds the budget: the time between its last bytes
    arriving and its handler starting (the TCP door's timestamp: waiting behind a busy loop)
    plus how late the loop runs on average (``lag``: while it is late, requests also wait
    that long in the kernel before the loop reads them). A single stall (a collection, a
    descheduled process) barely moves the average, and nothing is shed unless more than
    :data:`SHED_MIN_QUEUE` requests are waiting for an answer. The 503 costs a
    fraction of a served request, so under overload the served ones keep a bounded latency.
    Long-lived WebSocket upgrades and ``/health`` are not counted.

    This middleware goes first: it also tells the TCP door
    (:class:`~vidhub.server.tcpguard.GuardedRequestHandler`) when a request's headers are
    complete, which stops the header deadline.
    """
    inflight = 0

    def shed(request: web.Request, why: str) -> web.Response:
        if counters is not None:
            counters.hit("shed", why)
        resp = error_response(503, "Server busy, retry later", request.path)
        resp.headers["Retry-After"] = "1"
        resp.headers.update(CORS_HEADERS)
        return resp

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal inflight
        proto = request.protocol
        door = proto if isinstance(proto, GuardedRequestHandler) else None
        if door is not None:
            door.request_started()
        try:
            if (
                request.headers.get("Upgrade", "").lower() == "websocket"
                or request.path == "/health"
                or _static_page(request)
            ):
                return await handler(request)
            if inflight >= max_inflight:
                return shed(request, f"{max_inflight} requests in progress")
            if budget_s > 0 and door is not None and door.queued > SHED_MIN_QUEUE:
                waited = asyncio.get_running_loop().time() - door.last_data_at
                late = lag.lag_s if lag is not None else 0.0
                if waited + late > budget_s:
                    return shed(
                        request,
                        f"a request waited {waited * 1000:.0f} ms, loop {late * 1000:.0f} ms late",
                    )
            inflight += 1
            try:
                return await handler(request)
            finally:
                inflight -= 1
        finally:
            if door is not None:
                door.request_done()

    return middleware


def _static_page(request: web.Request) -> bool:
    """The web pages' files (``/``, ``/dashboard``, ``/assets/...``): cheap to serve, and a
    browser never retries a stylesheet or module script answered 503, so shedding one breaks
    the page instead of easing the load."""
    if request.method not in ("GET", "HEAD"):
        return False
    path = request.path
    return path in ("/", "/dashboard") or path.startswith("/assets/")


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for every origin, as OpenVidu; preflights succeed without auth."""
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        return web.Response(status=200, headers=CORS_HEADERS)
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(CORS_HEADERS)
        raise
    if not resp.prepared:
        resp.headers.update(CORS_HEADERS)
    return resp


def auth_middleware(secret: str) -> Middleware:
    """Require ``OPENVIDUAPP:<secret>`` on every ``/openvidu/api`` path but the public ones."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        needs_auth = path.startswith("/openvidu/api") and path not in PUBLIC_PATHS
        if needs_auth and not check_basic(request.headers.get("Authorization"), secret):
            resp = error_response(401, "Unauthorized", path)
            resp.headers["WWW-Authenticate"] = 'Basic realm="Realm"'
            return resp
        return await handler(request)

    return middleware
