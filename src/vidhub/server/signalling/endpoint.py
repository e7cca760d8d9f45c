"""The ``/openvidu`` WebSocket: one :class:`SocketHandler` per browser socket.

Theory of operation: the reader loop parses each frame (:mod:`vidhub.protocol.jsonrpc`).
``ping`` and ``connect`` are answered inline, so keep-alive works even while a slow request
(an SDP negotiation) runs; every other request goes to a per-socket queue and runs in order
(openvidu-browser relies on its requests being handled in the order sent). A bad frame gets a
JSON-RPC error on this socket only.

Keep-alive (openvidu.md §3.2): after the first ``ping {interval}``, a socket that sends no
ping for three intervals is closed. On close, a joined RPC session is kept for the
reconnection window, awaiting ``connect {sessionId}`` on a new socket.
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
from vidhub.server.signalling.handlers import CallContext, dispatch
from vidhub.server.signalling.rpcsession import RpcSessions

__all__ = ["Signalling", "SocketHandler", "openvidu_socket"]

log = logging.getLogger(__name__)

NO_PING_REASON = "Close for not receive ping from client"
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

    async def _send(self, frame: str) -> None:
        if self.ws.closed:
            raise ConnectionError("socket closed")
        await self.ws.send_str(frame)

    async def _close(self) -> None:
        await self.ws.close()

    async def run(self) -> None:
        """Serve the socket until it closes, then release or park the RPC session."""
        worker = asyncio.get_running_loop().create_task(self._work())
        self.sig.sessions.track(worker)
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
            await dispatch(self.ctx, req)

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
    sig.sockets.add(ws)
    try:
        await SocketHandler(sig, ws, request.remote).run()
    finally:
        sig.sockets.discard(ws)
    return ws
