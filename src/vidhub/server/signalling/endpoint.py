"""The ``/openvidu`` WebSocket: one :class:`SocketHandler` per browser socket.

Theory of operation: the reader loop parses each frame (:mod:`vidhub.protocol.jsonrpc`).
``ping`` and ``connect`` are answered inline, so keep-alive works even while a slow request
(an SDP negotiation) runs; every other request goes to a per-socket queue and runs in order
(openvidu-browser relies on its requests being handled in the order sent). A bad frame gets a
JSON-RPC error on this socket only.

Keep-alive (openvidu.md §3.2): after the first ``ping {interval}``, a socket that sends no
ping for three intervals is closed. On close, a joined RPC session is kept for the
reconnection window, awaiting ``connect {sessionId}`` on a new socket.

Door limits: a socket must join (``joinRoom``, or resume a joined session with ``connect``)
within ``join_timeout_s`` or it is closed with 1008; sockets beyond the open-socket caps
(:class:`~vidhub.server.limits.SocketCaps`, shared with the event hub) are closed at once with
1013 (try again later); each socket may send ``rate`` messages per second (bursts of twice
that), and the excess gets a JSON-RPC error. Every refusal is counted in ``counters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from vidhub.manager import SessionManager
from vidhub.protocol import jsonrpc
from vidhub.protocol import openvidu_rpc as rpc
from vidhub.rooms import Rooms
from vidhub.server.limits import LimitCounters, SocketCaps, TokenBucket
from vidhub.server.signalling.handlers import CallContext, dispatch
from vidhub.server.signalling.rpcsession import RpcSessions

__all__ = ["Signalling", "SocketHandler", "openvidu_socket"]

log = logging.getLogger(__name__)

NO_PING_REASON = "Close for not receive ping from client"
#: WebSocket close codes of the door limits (RFC 6455 §7.4.1).
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN_LATER = 1013
#: Requests waiting on one socket before further ones are refused (a flood guard).
MAX_QUEUED_REQUESTS = 256


@dataclass(eq=False)
class Signalling:
    """The signalling feature's state (one per app)."""

    rooms: Rooms
    manager: SessionManager
    sessions: RpcSessions = field(default_factory=RpcSessions)
    max_message_bytes: int = 1 << 20
    #: How long a dropped socket's session waits for ``connect`` (CE: 10 s).
    reconnect_window_s: float = 10.0
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    #: Seconds an unjoined socket stays open (0: forever).
    join_timeout_s: float = 10.0
    #: Open-socket caps shared with the event hub (``None``: uncapped).
    caps: SocketCaps | None = None
    #: Messages per second per socket (0: unlimited); bursts of twice that.
    rate: float = 0.0
    counters: LimitCounters = field(default_factory=LimitCounters)


class SocketHandler:
    """Reads one WebSocket and routes its frames."""

    def __init__(self, sig: Signalling, ws: web.WebSocketResponse, ip: str | None) -> None:
        self.sig = sig
        self.ws = ws
        self.ctx = CallContext(sig.rooms, sig.manager, sig.sessions.new(self._send), ip)
        self.ctx.session.bind(self._send, self._close)
        self._queue: asyncio.Queue[jsonrpc.Request | None] = asyncio.Queue()
        self._watchdog: asyncio.TimerHandle | None = None
        self._ping_interval_s = 0.0
        self._join_timer: asyncio.TimerHandle | None = None
        self._joining = False
        loop = asyncio.get_running_loop()
        self._bucket = TokenBucket(sig.rate, 2 * sig.rate, loop.time())

    async def _send(self, frame: str) -> None:
        if self.ws.closed:
            raise ConnectionError("socket closed")
        await self.ws.send_str(frame)

    async def _close(self) -> None:
        await self.ws.close()

    async def run(self) -> None:
        """Serve the socket until it closes, then release or park the RPC session."""
        loop = asyncio.get_running_loop()
        worker = loop.create_task(self._work())
        self.sig.sessions.track(worker)
        if self.sig.join_timeout_s > 0:
            self._join_timer = loop.call_later(self.sig.join_timeout_s, self._join_overdue)
        try:
            async for msg in self.ws:
                if msg.type == WSMsgType.TEXT:
                    await self._receive(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await self._frame_error(
                        jsonrpc.FrameError(
                            "Binary frames are not supported", jsonrpc.INVALID_REQUEST
                        )
                    )
                elif msg.type == WSMsgType.ERROR:
                    log.info("signalling socket error: %s", self.ws.exception())
                    break
        finally:
            self._stop_watchdog()
            if self._join_timer is not None:
                self._join_timer.cancel()
            self._queue.put_nowait(None)
            self._socket_closed()

    def _socket_closed(self) -> None:
        session = self.ctx.session
        if not session.owned_by(self._send):
            return  # already resumed on a newer socket (its connect raced this close)
        if session.joined is not None and not session.closed:
            session.unbind(self.sig.reconnect_window_s)
        else:
            session.close()

    async def _receive(self, text: str) -> None:
        try:
            msg = jsonrpc.parse_message(text)
        except jsonrpc.FrameError as exc:
            await self._frame_error(exc)
            return
        if not isinstance(msg, jsonrpc.Request):
            return  # the browser never sends notifications; stray responses are ignored
        if not self._bucket.take(asyncio.get_running_loop().time()):
            self.sig.counters.hit(
                "signalling_rate", f"over {self.sig.rate:g} messages/s; last from {self.ctx.ip}"
            )
            await self.ctx.session.respond_error(
                msg.id, rpc.Code.GENERIC, "Too many messages on this socket, slow down"
            )
            return
        if msg.method == "ping":
            await self._ping(msg)
        elif msg.method == "connect":
            await self._connect(msg)
        elif self._queue.qsize() >= MAX_QUEUED_REQUESTS:
            await self.ctx.session.respond_error(
                msg.id, rpc.Code.GENERIC, "Too many requests in progress on this socket"
            )
        else:
            self._queue.put_nowait(msg)

    async def _frame_error(self, exc: jsonrpc.FrameError) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(jsonrpc.encode_error(exc.request_id, exc.rpc_code, exc.message))

    async def _work(self) -> None:
        while True:
            req = await self._queue.get()
            if req is None:
                return
            self._joining = req.method == "joinRoom"
            try:
                await dispatch(self.ctx, req)
            finally:
                self._joining = False

    # -- door limits -------------------------------------------------------------------
    def _join_overdue(self) -> None:
        """The join deadline passed: close the socket unless it joined (or is joining)."""
        self._join_timer = None
        if self.ctx.session.participant is not None or self.ws.closed:
            return
        loop = asyncio.get_running_loop()
        if self._joining:  # a joinRoom is being served: give it another period
            self._join_timer = loop.call_later(self.sig.join_timeout_s, self._join_overdue)
            return
        timeout = self.sig.join_timeout_s
        self.sig.counters.hit(
            "join_timeout", f"no joinRoom within {timeout:g} s; last from {self.ctx.ip}"
        )
        reason = f"No joinRoom within {timeout:g} s".encode()
        self.sig.sessions.track(loop.create_task(self.ws.close(code=CLOSE_POLICY, message=reason)))

    # -- Kurento layer -----------------------------------------------------------------
    async def _ping(self, req: jsonrpc.Request) -> None:
        interval = req.params.get("interval")
        if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
            self._ping_interval_s = float(interval) / 1000.0
        if self._ping_interval_s > 0:
            self._stop_watchdog()
            self._watchdog = asyncio.get_running_loop().call_later(
                3 * self._ping_interval_s, self._no_ping
            )
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self._send(jsonrpc.encode_result(req.id, {"value": "pong"}, None))

    def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _no_ping(self) -> None:
        self._watchdog = None
        log.info("closing a signalling socket that stopped pinging")
        task = asyncio.get_running_loop().create_task(
            self.ws.close(code=1001, message=NO_PING_REASON.encode())
        )
        self.sig.sessions.track(task)

    async def _connect(self, req: jsonrpc.Request) -> None:
        p = rpc.ConnectParams.parse(req.params)
        current = self.ctx.session
        if p.session_id is None or p.session_id == current.id:
            await current.respond(req.id, "OK")
            return
        resumed = self.sig.sessions.get(p.session_id)
        if resumed is None or resumed.closed:
            await current.respond_error(req.id, rpc.Code.RECONNECTION_ERROR, "reconnection error")
            return
        if current.joined is None:
            current.close()
        resumed.bind(self._send, self._close)
        self.ctx.session = resumed
        await resumed.respond(req.id, "reconnection successful")
        await resumed.flush()


async def openvidu_socket(request: web.Request, sig: Signalling) -> web.WebSocketResponse:
    """``GET /openvidu?sessionId=..[&reconnect=true]``: the browser's signalling socket.

    The query parameters are informational (CE ignores them too): the session is named in
    joinRoom, and a resumed socket names its RPC session in ``connect``.
    """
    ws = web.WebSocketResponse(max_msg_size=sig.max_message_bytes, autoping=True)
    await ws.prepare(request)
    ip = request.remote or "unknown"
    refused = sig.caps.acquire(ip) if sig.caps is not None else None
    if refused is not None:
        sig.counters.hit("websocket_refused", f"{refused}; last from {ip}")
        await ws.close(code=CLOSE_TRY_AGAIN_LATER, message=f"Too many sockets: {refused}".encode())
        return ws
    sig.sockets.add(ws)
    try:
        await SocketHandler(sig, ws, request.remote).run()
    finally:
        sig.sockets.discard(ws)
        if sig.caps is not None:
            sig.caps.release(ip)
    return ws
