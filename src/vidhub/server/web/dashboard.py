"""The operator dashboard: ``/dashboard`` page, its live feed and its actions.

Routes (all but the login form need the dashboard cookie, see :mod:`.login`):

- ``GET /dashboard``: the dashboard, or the sign-in form without a valid cookie.
- ``POST /dashboard/login`` (form field ``secret``) and ``POST /dashboard/logout``.
- ``GET /dashboard/ws``: the live feed, JSON text frames. The server sends ``hello`` (the
  plotted history), then a ``tick`` after each stats sample (sessions, connections, streams,
  server figures, the new plot points) and an ``event`` for each hub event that passes the
  socket's filter. The page sends ``{"type": "filter", "expression": ...}`` (the hub's own
  expression syntax) and gets ``{"type": "filter", "ok": ..., "message": ...}`` back.
- ``POST /dashboard/api/{close,evict,unpublish,signal}`` (JSON): operator actions, each one
  call of the SessionManager method REST uses (so they emit the same events); errors come
  back as REST's error body and status.

The event feed is a real hub session: each dashboard socket opens one on the local
:class:`~vidhub.hub.Hub` with a single subscription, so it sees exactly what an ftrack client
subscribed with the same expression would.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from vidhub.errors import BadRequest
from vidhub.hub import Hub, HubSession
from vidhub.ids import ConnectionId, SessionId
from vidhub.protocol import jsoncodec
from vidhub.protocol.expression import ExpressionError, compile_expression
from vidhub.protocol.openvidu_rest import parse_signal
from vidhub.protocol.socketio09 import Code, PacketError, decode, decode_event_data
from vidhub.server.eventhub import EVENTHUB
from vidhub.server.keys import CONFIG, MANAGER
from vidhub.server.stats import Snapshot, StatsSource, stats_source
from vidhub.server.web.login import COOKIE, SESSION_TTL_S, Logins
from vidhub.server.web.pages import ASSETS, SECURITY_HEADERS
from vidhub.server.web.view import history_json, tick_json

__all__ = ["DASHBOARD_USER", "DEFAULT_FILTER", "LOGINS", "setup_dashboard"]

log = logging.getLogger(__name__)

#: The event filter a new dashboard starts with.
DEFAULT_FILTER = "topic=vidhub.*"
#: The hub user of the dashboards' own hub sessions (not counted as hub clients).
DASHBOARD_USER = "vidhub-dashboard"
#: Frames queued for one dashboard socket before events are dropped for it.
MAX_QUEUED = 2000
MAX_FILTER_CHARS = 2000

LOGINS = web.AppKey("dashboard_logins", Logins)


def _login_page(message: str = "", status: int = 200) -> web.Response:
    text = (ASSETS / "login.html").read_text()
    shown = f'<p class="message" role="alert">{html.escape(message)}</p>' if message else ""
    resp = web.Response(
        text=text.replace("<!--MESSAGE-->", shown), status=status, content_type="text/html"
    )
    resp.headers.update(SECURITY_HEADERS)
    return resp


def _signed_in(request: web.Request) -> bool:
    return request.app[LOGINS].valid(request.cookies.get(COOKIE))


def _same_origin(request: web.Request) -> bool:
    """Refuse requests another site's page makes (belt and braces beside SameSite=Strict)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return origin.split("://", 1)[-1] == request.host


async def dashboard_page(request: web.Request) -> web.StreamResponse:
    """``GET /dashboard``: the dashboard once signed in, else the sign-in form."""
    if not _signed_in(request):
        return _login_page()
    resp = web.FileResponse(ASSETS / "dashboard.html", headers=SECURITY_HEADERS)
    resp.content_type = "text/html"
    return resp


async def login(request: web.Request) -> web.StreamResponse:
    """``POST /dashboard/login``: 303 to the dashboard with the cookie, 401 wrong, 429 limited."""
    form = await request.post()
    given = form.get("secret")
    result = request.app[LOGINS].login(
        request.remote or "?", given if isinstance(given, str) else ""
    )
    if result.outcome == "limited":
        resp = _login_page(f"Too many wrong secrets: try again in {result.retry_after_s} s.", 429)
        resp.headers["Retry-After"] = str(result.retry_after_s)
        return resp
    if result.outcome == "wrong":
        return _login_page("Wrong secret.", 401)
    resp = web.HTTPSeeOther("/dashboard")
    secure = request.secure or request.headers.get("X-Forwarded-Proto") == "https"
    resp.set_cookie(
        COOKIE,
        result.session,
        max_age=SESSION_TTL_S,
        path="/dashboard",
        httponly=True,
        samesite="Strict",
        secure=secure,
    )
    raise resp


async def logout(request: web.Request) -> web.StreamResponse:
    """``POST /dashboard/logout``: end the session, clear the cookie, back to the form."""
    if _same_origin(request):
        request.app[LOGINS].logout(request.cookies.get(COOKIE))
    resp = web.HTTPSeeOther("/dashboard")
    resp.del_cookie(COOKIE, path="/dashboard")
    raise resp


# -- actions -------------------------------------------------------------------------------


def _str(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{key}' must be a non-empty string")
    return value


async def action(request: web.Request) -> web.Response:
    """``POST /dashboard/api/{name}``: one operator action through the SessionManager."""
    if not _signed_in(request):
        return web.json_response({"message": "Sign in first"}, status=401)
    if not _same_origin(request):
        return web.json_response({"message": "Cross-site request refused"}, status=403)
    try:
        body = jsoncodec.loads(await request.read())
    except jsoncodec.JSONDecodeError:
        raise BadRequest("The body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object")
    manager = request.app[MANAGER]
    name = request.match_info["name"]
    if name == "close":  # DELETE /sessions/{id}
        await manager.close_session(SessionId(_str(body, "session")))
    elif name == "evict":  # DELETE /sessions/{id}/connection/{connectionId}
        await manager.delete_connection(
            SessionId(_str(body, "session")), ConnectionId(_str(body, "connection"))
        )
    elif name == "unpublish":  # DELETE /sessions/{id}/stream/{streamId}
        await manager.force_unpublish(SessionId(_str(body, "session")), _str(body, "stream"))
    elif name == "signal":  # POST /signal
        await manager.signal(parse_signal(body))
    else:
        raise web.HTTPNotFound()
    return web.json_response({"ok": True})


# -- live feed -----------------------------------------------------------------------------


class _Feed:
    """One dashboard socket: a bounded queue of JSON frames, a writer, and a hub session."""

    def __init__(self, ws: web.WebSocketResponse, hub: Hub | None) -> None:
        self.ws = ws
        self.hub = hub
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(MAX_QUEUED)
        self.dropped = 0
        self.closed = False
        self.session: HubSession | None = None
        if hub is not None:
            self.session = hub.open("dashboard-" + secrets.token_hex(8), DASHBOARD_USER, self)

    def push(self, message: dict[str, Any]) -> bool:
        if self.closed:
            return False
        try:
            self.queue.put_nowait(jsoncodec.dumps(message))
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    # the hub's Outbox interface
    def send(self, frame: str) -> bool:
        try:
            packet = decode(frame)
            if packet.code is not Code.EVENT:
                return True
            _name, args = decode_event_data(packet.data)
        except PacketError:
            return True
        if args:
            self.push({"type": "event", "event": args[0]})
        return True  # a full queue drops events for this page only; never the hub session

    def close(self, reason: str) -> None:
        self.closed = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)

    def set_filter(self, expression: str) -> tuple[bool, str]:
        if len(expression) > MAX_FILTER_CHARS:
            return False, f"at most {MAX_FILTER_CHARS} characters"
        try:
            compile_expression(expression)
        except ExpressionError as exc:
            return False, exc.message
        if self.hub is None or self.session is None:
            return False, "the event hub is not running"
        ack = self.hub.handle(
            self.session,
            [
                {
                    "topic": "ftrack.meta.subscribe",
                    "data": {
                        "subscriber": {"id": "dashboard", "applicationId": "vidhub.dashboard"},
                        "subscription": expression,
                    },
                    "source": {"id": "vidhub-dashboard", "applicationId": "vidhub.dashboard"},
                }
            ],
        )
        return ack.success, ack.message

    def detach(self) -> None:
        self.closed = True
        if self.hub is not None and self.session is not None:
            self.hub.detach(self.session, self)


async def feed_socket(request: web.Request) -> web.StreamResponse:
    """``GET /dashboard/ws``: the dashboard's live feed (see the module docstring)."""
    if not _signed_in(request):
        return web.json_response({"message": "Sign in first"}, status=401)
    if not _same_origin(request):
        return web.json_response({"message": "Cross-site socket refused"}, status=403)
    app = request.app
    source = app[_SOURCE]
    feeds = app[_FEEDS]
    ws = web.WebSocketResponse(heartbeat=30, max_msg_size=64 * 1024)
    await ws.prepare(request)
    feed = _Feed(ws, app[EVENTHUB].hub if EVENTHUB in app else None)
    feed.set_filter(DEFAULT_FILTER)
    feed.push(history_json(source, DEFAULT_FILTER))
    feeds.add(feed)  # from now on the sampler lists the sessions too
    feed.push(tick_json(source, await source.collect()))

    async def writer() -> None:
        while (frame := await feed.queue.get()) is not None:
            await ws.send_str(frame)

    task = asyncio.create_task(writer())
    try:
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            try:
                cmd = jsoncodec.loads(msg.data)
            except jsoncodec.JSONDecodeError:
                continue
            if isinstance(cmd, dict) and cmd.get("type") == "filter":
                expr = cmd.get("expression")
                if isinstance(expr, str):
                    ok, message = feed.set_filter(expr.strip() or DEFAULT_FILTER)
                    feed.push({"type": "filter", "ok": ok, "expression": expr, "message": message})
    finally:
        feeds.discard(feed)
        feed.detach()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await task
    return ws


_FEEDS: web.AppKey[set[_Feed]] = web.AppKey("dashboard_feeds")
_SOURCE = web.AppKey("dashboard_source", StatsSource)


def _broadcaster(app: web.Application, source: StatsSource) -> Callable[[Snapshot], None]:
    def on_sample(snap: Snapshot) -> None:
        feeds: set[_Feed] = app[_FEEDS]
        if not feeds:
            return
        message = tick_json(source, snap)
        for feed in list(feeds):
            if feed.dropped:
                message = dict(message, dropped=feed.dropped)
            feed.push(message)

    return on_sample


def setup_dashboard(app: web.Application) -> None:
    """Mount ``/dashboard`` and its feed and actions (needs CONFIG, MANAGER, the hub)."""
    source = stats_source(app)
    app[LOGINS] = Logins(app[CONFIG].secret)
    app[_FEEDS] = set()
    app[_SOURCE] = source
    source.listeners.append(_broadcaster(app, source))
    source.add_sockets("dashboard", lambda: len(app[_FEEDS]))
    source.watchers = lambda: len(app[_FEEDS])
    app.router.add_get("/dashboard", dashboard_page)
    app.router.add_post("/dashboard/login", login)
    app.router.add_post("/dashboard/logout", logout)
    app.router.add_get("/dashboard/ws", feed_socket)
    app.router.add_post("/dashboard/api/{name}", action)

    async def close_feeds(app: web.Application) -> None:
        feeds: set[_Feed] = app[_FEEDS]
        for feed in list(feeds):
            feed.close("server shutdown")
            await feed.ws.close()

    app.on_shutdown.append(close_feeds)
