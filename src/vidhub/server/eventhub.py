"""The event hub's HTTP edge: socket.io 0.9 handshake and WebSocket (eventhub.md §1-§3).

Theory of operation.

- ``GET|POST /socket.io/1/`` authenticates (``ftrack-user``/``ftrack-api-user`` +
  ``ftrack-api-key`` headers, or ``?api_user=&api_key=``; the key is the server secret or one
  of ``hub_keys``), then answers ``<sid>:60:60:websocket``. The sid is random, single-use and
  expires after the close timeout; it is the only credential of the upgrade.
- ``GET /socket.io/1/websocket/<sid>`` upgrades, sends ``1::`` and binds a hub session. Every
  text frame is decoded with :mod:`vidhub.protocol.socketio09` and each ``ftrack.event`` goes
  to :meth:`Hub.handle`, strictly in order; every ``5:<n>+`` gets ``6:::<n>+[{...}]``.
  A malformed frame is logged and skipped: other clients never notice.
- Frames to a socket go through :class:`_Socket`: written straight to the transport while it
  keeps up, else queued (bounded) behind a writer task that waits for it to drain; an idle
  socket costs no task.
- One loop per app sends ``2::`` every ``HEARTBEAT_INTERVAL_S``, closes sockets silent for
  longer than the advertised heartbeat timeout, and expires parked sessions and stale sids.
- Every server-initiated close (kick, silence, shutdown, a slow consumer whose bounded
  queue filled) sends ``0::`` first, so the ftrack client reconnects instead of going deaf
  (§3.4).
- Door limits: a socket beyond the open-socket caps (shared with signalling) is closed at
  once with 1013; each socket may send ``rate`` frames per second (bursts of twice that):
  the excess is dropped, with a negative ack where one was asked for. Both are counted.

Resumption (a vidhub extension, off unless asked): a handshake with the header
``vidhub-resume`` (or query ``vidhub_resume``) opts in. Its value is
``<previous sid>:<last event id>`` to resume a session (the missed events then follow
``1::``); any value that names no resumable session of that user (``new``, empty) starts one.
In a cluster, a session parked on another node is handed over to this one first
(:mod:`vidhub.hub.bridge`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
from collections import deque
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass

from aiohttp import WSMsgType, web

from vidhub.hub import Hub, HubLimits, HubSession
from vidhub.protocol.ftrack_event import EVENT_NAME
from vidhub.protocol.socketio09 import (
    EventReceived,
    PacketError,
    SocketIoProtocol,
    encode_ack,
    handshake_body,
)
from vidhub.server.keys import CLOCK, CONFIG, HUB
from vidhub.server.limits import LIMITS, WS_CAPS, LimitCounters, SocketCaps, TokenBucket

__all__ = ["EVENTHUB", "EventHubEdge", "setup_eventhub"]

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10.0
HEARTBEAT_TIMEOUT_S = 60
CLOSE_TIMEOUT_S = 60
RESUME_HEADER = "vidhub-resume"
RESUME_QUERY = "vidhub_resume"
MAX_PENDING = 10_000
#: Frames the edge accepts beyond ``max_frame_bytes`` only to refuse them politely.
_HARD_FRAME_FACTOR = 4
#: Bytes waiting in a socket's transport above which frames queue behind a draining writer.
_HIGH_WATER = 256 * 1024


@dataclass(frozen=True, slots=True)
class _Pending:
    user: str
    expires: float
    resumable: bool
    resume_sid: str | None
    last_event_id: str | None


class _FrameCache:
    """Encodes a text frame to WebSocket bytes once per fan-out, not once per recipient.

    The hub hands the same ``str`` object to every recipient of one event in a row, so one
    remembered (text, bytes) pair is enough.
    """

    __slots__ = ("_bytes", "_text")

    def __init__(self) -> None:
        self._text: str | None = None
        self._bytes = b""

    def frame(self, text: str) -> bytes:
        if text is self._text:
            return self._bytes
        data = text.encode()
        n = len(data)
        if n < 126:
            head = bytes((0x81, n))  # FIN + text opcode; server frames are not masked
        elif n < 65536:
            head = b"\x81\x7e" + n.to_bytes(2, "big")
        else:
            head = b"\x81\x7f" + n.to_bytes(8, "big")
        self._text, self._bytes = text, head + data
        return self._bytes


class _Socket:
    """One WebSocket as the hub's outbox, ``0::`` before any close of ours.

    Fast path: while nothing is queued and the transport's buffer is small, a frame is
    written straight to the transport (one ``write``, no task). Otherwise frames queue (up
    to ``max_frames`` frames and ``max_chars`` characters: beyond that the socket is a slow
    consumer) and a writer task sends
    them through aiohttp, which waits for the transport to drain.
    """

    __slots__ = (
        "_cache",
        "_closing",
        "_queue",
        "_writer",
        "last_seen",
        "max_chars",
        "max_frames",
        "queued_chars",
        "reason",
        "transport",
        "ws",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
        cache: _FrameCache,
        max_frames: int,
        now: float,
        max_chars: int = 8 << 20,
    ) -> None:
        self.ws = ws
        self.transport = transport if isinstance(transport, asyncio.WriteTransport) else None
        self._cache = cache
        self.max_frames = max_frames
        self.max_chars = max_chars
        self.queued_chars = 0
        self._queue: deque[str] = deque()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self.reason = ""
        self.last_seen = now

    def send(self, frame: str) -> bool:
        if self._closing:
            return True
        if self._queue or self._writer is not None:
            if len(self._queue) >= self.max_frames or self.queued_chars > self.max_chars:
                return False
            self._queue.append(frame)
            self.queued_chars += len(frame)
            return True
        transport = self.transport
        if transport is None or transport.get_write_buffer_size() > _HIGH_WATER:
            self._queue.append(frame)
            self.queued_chars += len(frame)
            self._writer = asyncio.get_running_loop().create_task(self._drain())
            return True
        if not transport.is_closing() and not self.ws.closed:  # nothing after a close frame
            transport.write(self._cache.frame(frame))
        return True

    def close(self, reason: str) -> None:
        if self._closing:
            return
        self._closing = True
        self.reason = reason
        self._queue.clear()
        self._queue.append("0::")
        self.queued_chars = 3
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        ws = self.ws
        try:
            while self._queue and not ws.closed:
                frame = self._queue.popleft()
                self.queued_chars -= len(frame)
                await ws.send_str(frame)
            if self._closing and not ws.closed:
                await ws.close()
        except (ConnectionError, RuntimeError) as exc:
            log.debug("socket write failed: %s", exc)
            self._queue.clear()
            self.queued_chars = 0
        finally:
            self._writer = None

    async def flush_and_close(self, reason: str, grace_s: float) -> None:
        """Shutdown path: ``0::`` then close, waiting at most ``grace_s``."""
        self.close(reason)
        writer = self._writer
        if writer is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(writer), grace_s)


class EventHubEdge:
    """The HTTP and WebSocket handlers around one :class:`Hub`."""

    def __init__(
        self,
        hub: Hub,
        keys: tuple[str, ...],
        *,
        caps: SocketCaps | None = None,
        rate: float = 0.0,
        counters: LimitCounters | None = None,
    ) -> None:
        self.hub = hub
        self.caps = caps
        self.rate = rate
        self.counters = counters or LimitCounters()
        self._keys = tuple(k.encode() for k in keys if k)
        self._pending: dict[str, _Pending] = {}
        self._sockets: dict[str, tuple[_Socket, HubSession]] = {}
        self._frames = _FrameCache()
        self._late_acks: set[asyncio.Future[None]] = set()
        self.heartbeat_interval_s = HEARTBEAT_INTERVAL_S
        self.heartbeat_timeout_s = float(HEARTBEAT_TIMEOUT_S)

    # ---------------------------------------------------------------- handshake

    def _key_ok(self, key: str) -> bool:
        given = key.encode()
        ok = False
        for known in self._keys:  # no early exit: same time whichever key matches
            ok |= hmac.compare_digest(given, known)
        return ok

    async def handshake(self, request: web.Request) -> web.Response:
        """``GET|POST /socket.io/1/``: 200 ``sid:hb:close:websocket`` or 401."""
        headers, query = request.headers, request.query
        user = (
            headers.get("ftrack-user")
            or headers.get("ftrack-api-user")
            or query.get("api_user")
            or ""
        )
        key = headers.get("ftrack-api-key") or query.get("api_key") or ""
        if not user or not key or not self._key_ok(key):
            return web.Response(status=401, text="Unauthorized", content_type="text/plain")
        now = self.hub.clock.monotonic()
        self._expire_pending(now)
        if len(self._pending) >= MAX_PENDING:
            return web.Response(
                status=503, text="Busy", content_type="text/plain", headers={"Retry-After": "1"}
            )
        resume = headers.get(RESUME_HEADER, query.get(RESUME_QUERY))
        resume_sid: str | None = None
        last_id: str | None = None
        if resume:
            resume_sid, _, last = resume.partition(":")
            last_id = last or None
        sid = secrets.token_hex(16)
        self._pending[sid] = _Pending(
            user, now + CLOSE_TIMEOUT_S, resume is not None, resume_sid or None, last_id
        )
        body = handshake_body(sid, HEARTBEAT_TIMEOUT_S, CLOSE_TIMEOUT_S)
        return web.Response(text=body, content_type="text/plain")

    def _expire_pending(self, now: float) -> None:
        stale = [sid for sid, p in self._pending.items() if p.expires <= now]
        for sid in stale:
            del self._pending[sid]

    # ---------------------------------------------------------------- websocket

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """``GET /socket.io/1/websocket/<sid>``: the socket.io connection."""
        sid = request.match_info["sid"]
        pending = self._pending.pop(sid, None)
        if pending is None or pending.expires <= self.hub.clock.monotonic():
            return web.Response(status=403, text="Unknown or expired session")
        limits = self.hub.limits
        ws = web.WebSocketResponse(
            autoping=True,
            max_msg_size=limits.max_frame_bytes * _HARD_FRAME_FACTOR,
            compress=False,
        )
        await ws.prepare(request)
        ip = request.remote or "unknown"
        refused = self.caps.acquire(ip) if self.caps is not None else None
        if refused is not None:
            self.counters.hit("websocket_refused", f"{refused}; last from {ip}")
            await ws.close(code=1013, message=f"Too many sockets: {refused}".encode())
            return ws
        try:
            return await self._serve(sid, pending, ws, request.transport)
        finally:
            if self.caps is not None:
                self.caps.release(ip)

    async def _serve(
        self,
        sid: str,
        pending: _Pending,
        ws: web.WebSocketResponse,
        transport: asyncio.BaseTransport | None,
    ) -> web.WebSocketResponse:
        limits = self.hub.limits
        loop = asyncio.get_running_loop()
        bucket = TokenBucket(self.rate, 2 * self.rate, loop.time())
        sock = _Socket(
            ws,
            transport,
            self._frames,
            limits.max_outbox_frames,
            self.hub.clock.monotonic(),
            limits.max_outbox_chars,
        )
        sock.send("1::")
        session, missed = await self._bind(sid, pending, sock)
        for frame in missed:
            sock.send(frame)
        self._sockets[sid] = (sock, session)
        proto = SocketIoProtocol(client=False)
        try:
            async for msg in ws:
                sock.last_seen = self.hub.clock.monotonic()
                if msg.type is WSMsgType.TEXT:
                    if not bucket.take(loop.time()):
                        self.counters.hit(
                            "hub_rate", f"over {self.rate:g} frames/s; last from {session.user}"
                        )
                        self._nack_if_possible(sock, msg.data[:64], "too many frames, slow down")
                        continue
                    try:
                        self._on_text(sock, session, proto, msg.data)
                    except Exception:  # a bug must not cost the client its socket
                        log.exception("event hub failed on a frame from %s", session.user)
                        self._nack_if_possible(sock, msg.data[:64], "internal error")
                elif msg.type is WSMsgType.BINARY:
                    log.debug("ignored a binary frame from %s", session.user)
        finally:
            if self._sockets.get(sid, (None,))[0] is sock:
                del self._sockets[sid]
            self.hub.detach(session, sock)
        return ws

    async def _bind(
        self, sid: str, pending: _Pending, sock: _Socket
    ) -> tuple[HubSession, list[str]]:
        if pending.resume_sid:
            prev = self._sockets.pop(pending.resume_sid, None)
            resumed = self.hub.resume(
                pending.resume_sid, sid, pending.user, sock, pending.last_event_id
            )
            if resumed is not None:
                return resumed
            if prev is not None:  # not ours to resume: put it back
                self._sockets[pending.resume_sid] = prev
            elif self.hub.take_over is not None and pending.resume_sid != "new":
                # parked on another node of the cluster? ("new" is how clients opt in)
                state = await self.hub.take_over(pending.resume_sid, pending.user)
                if state is not None:
                    return self.hub.adopt(state, sid, pending.user, sock, pending.last_event_id)
        session = self.hub.open(sid, pending.user, sock, resumable=pending.resumable)
        return session, []

    def _on_text(
        self, sock: _Socket, session: HubSession, proto: SocketIoProtocol, text: str
    ) -> None:
        if len(text) > self.hub.limits.max_frame_bytes:
            self._refuse_large(sock, text)
            return
        try:
            events = proto.receive_text(text)
        except PacketError as exc:
            log.debug("bad packet from %s: %s", session.user, exc.message)
            self._nack_if_possible(sock, text, exc.message)
            return
        for event in events:
            if not isinstance(event, EventReceived):
                continue  # heartbeat replies, connect/disconnect notices: nothing to do
            if event.name != EVENT_NAME:
                result_payload = {"success": False, "message": f"unknown event {event.name!r}"}
            else:
                result = self.hub.handle(session, event.args)
                result_payload = result.payload()
                if result.pending is not None:  # acked once in effect on every node
                    if event.ack_id is not None:
                        self._ack_later(sock, event.ack_id, result_payload, result.pending)
                    continue
            if event.ack_id is not None:
                sock.send(encode_ack(event.ack_id, result_payload))

    def _ack_later(
        self, sock: _Socket, ack_id: int, payload: dict[str, object], pending: Awaitable[None]
    ) -> None:
        async def ack() -> None:
            try:
                await pending
            finally:
                sock.send(encode_ack(ack_id, payload))

        task = asyncio.ensure_future(ack())
        self._late_acks.add(task)
        task.add_done_callback(self._late_acks.discard)

    def _refuse_large(self, sock: _Socket, text: str) -> None:
        limit = self.hub.limits.max_frame_bytes
        self._nack_if_possible(sock, text[:64], f"frame larger than {limit} bytes")

    @staticmethod
    def _nack_if_possible(sock: _Socket, text: str, message: str) -> None:
        """Answer a refused ``5:<n>+`` packet with a negative ack, if it had an id."""
        parts = text.split(":", 3)
        if len(parts) >= 2 and parts[0] == "5" and parts[1].endswith("+"):
            raw = parts[1][:-1]
            if raw.isascii() and raw.isdigit() and len(raw) <= 18:
                sock.send(encode_ack(int(raw), {"success": False, "message": message}))

    # ---------------------------------------------------------------- housekeeping

    def tick(self) -> None:
        """One heartbeat round: ping everyone, drop the silent, expire stale state."""
        now = self.hub.clock.monotonic()
        for sock, session in list(self._sockets.values()):
            if now - sock.last_seen > self.heartbeat_timeout_s:
                log.info("closing silent socket of %s", session.user)
                sock.close("heartbeat timeout")
            else:
                sock.send("2::")
        self._expire_pending(now)
        self.hub.expire_parked()

    async def run_heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval_s)
            try:
                self.tick()
            except Exception:
                log.exception("event hub heartbeat round failed")

    async def shutdown(self, grace_s: float = 3.0) -> None:
        """Send ``0::`` to every socket and close them (graceful server stop)."""
        socks = [sock for sock, _ in self._sockets.values()]
        if socks:
            await asyncio.gather(
                *(sock.flush_and_close("server shutting down", grace_s) for sock in socks)
            )


#: The edge object, for tests and the lifecycle of this feature.
EVENTHUB = web.AppKey("eventhub_edge", EventHubEdge)


def setup_eventhub(app: web.Application, *, limits: HubLimits | None = None) -> Hub:
    """Create the hub on ``app[CLOCK]``, set ``app[HUB]``, add the socket.io routes and the
    housekeeping.

    Routes: ``GET|POST /socket.io/1/`` and ``GET /socket.io/1/websocket/{sid}``.
    """
    cfg = app[CONFIG]
    hub = Hub(
        limits=limits or HubLimits(max_frame_bytes=cfg.max_ws_message_bytes), clock=app[CLOCK]
    )
    edge = EventHubEdge(
        hub,
        (cfg.secret, *cfg.hub_keys),
        caps=app.get(WS_CAPS),
        rate=cfg.hub_rate,
        counters=app.get(LIMITS),
    )
    app[HUB] = hub
    app[EVENTHUB] = edge
    app.router.add_get("/socket.io/1/", edge.handshake)
    app.router.add_post("/socket.io/1/", edge.handshake)
    app.router.add_get("/socket.io/1/websocket/{sid}", edge.websocket)

    async def heartbeat_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(edge.run_heartbeats())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        hub.close_all()

    async def on_shutdown(app: web.Application) -> None:
        await edge.shutdown()

    app.cleanup_ctx.append(heartbeat_ctx)
    app.on_shutdown.append(on_shutdown)
    return hub
