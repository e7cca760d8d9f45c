"""The TCP door: caps on open connections, a deadline for the request line and headers,
and parse errors answered without echoing what the client sent.

Theory of operation: ``vidhub serve`` listens through :class:`GuardedSite`, whose protocol
factory makes a :class:`GuardedRequestHandler` (aiohttp's HTTP protocol plus this door) per
accepted connection.

- **Caps.** A connection beyond ``max_connections`` in total or ``max_per_ip`` from one
  address is answered ``503 Service Unavailable`` + ``Retry-After`` and closed before any
  byte of it is parsed.
- **Header deadline.** The request line and headers of each request must arrive within
  ``header_timeout_s`` of the connection opening, or of the first byte of a later request
  on a kept-alive connection; otherwise the connection gets ``408`` and is closed. This
  closes raw TCP connections that never speak and slow-header (slowloris) clients. Time in
  a handler (a WebSocket's whole life included) does not count; an idle kept-alive
  connection is aiohttp's ``keepalive_timeout``'s business.
- **Parse errors** (oversized or malformed request line and headers) get a fixed ``400``
  body naming the kind of error and one rate-limited log line naming the client's address:
  neither echoes a byte of the request (aiohttp's own would quote the first 100 bytes of
  the offending header, an ``Authorization`` value included, with a traceback).

Every refusal is counted in :class:`~vidhub.server.limits.LimitCounters`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from ssl import SSLContext
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from vidhub.server.limits import LimitCounters, SocketCaps

__all__ = [
    "GuardedRequestHandler",
    "GuardedSite",
    "TcpGuard",
    "fd_bounded",
    "run_forever",
    "serving",
]


def _raw_response(status: str, body: bytes, extra: bytes = b"") -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + extra + b"Connection: close\r\n\r\n" + body


_REFUSED = _raw_response(
    "503 Service Unavailable", b"Too many connections, retry later\n", b"Retry-After: 5\r\n"
)
_TIMED_OUT = _raw_response("408 Request Timeout", b"Request headers too slow\n")


class TcpGuard:
    """Settings and shared state of the TCP door (one per listening server).

    Args:
        counters: where refusals are counted and logged.
        max_connections: open connections in total (0: no cap).
        max_per_ip: open connections from one address (0: no cap).
        header_timeout_s: seconds for a request line and its headers (0: no deadline).
    """

    def __init__(
        self,
        counters: LimitCounters,
        *,
        max_connections: int,
        max_per_ip: int,
        header_timeout_s: float,
    ) -> None:
        self.counters = counters
        self.caps = SocketCaps(max_connections, max_per_ip)
        self.header_timeout_s = header_timeout_s
        #: Connections whose current request has arrived (its first byte) and is not answered
        #: yet: the queue that overload shedding looks at.
        self.pending = 0
        counters.gauge("tcp_connections", lambda: float(self.caps.total))
        counters.gauge("requests_waiting", lambda: float(self.pending))


def _peer_ip(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "local"


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP protocol with the door's caps, header deadline and quiet 400s."""

    def __init__(self, guard: TcpGuard, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard
        self._ip: str | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._in_request = False
        self._counted = False
        #: loop time of the latest bytes received: when the current request's headers
        #: were complete at the latest (the shedding middleware measures waiting from it).
        self.last_data_at = 0.0

    # -- connection ------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        ip = _peer_ip(transport)
        refused = self._guard.caps.acquire(ip)
        if refused is not None:
            self._guard.counters.hit("tcp_refused", f"{refused}; last from {ip}")
            if isinstance(transport, asyncio.WriteTransport):
                transport.write(_REFUSED)
            transport.close()
            return
        self._ip = ip
        self.last_data_at = self._loop.time()
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        self._uncount()
        if self._ip is not None:
            self._guard.caps.release(self._ip)
            self._ip = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.last_data_at = self._loop.time()
        if not self._in_request and data:
            if self._deadline is None:
                self._arm()  # the first byte of a request on a kept-alive connection
            if not self._counted and self._ip is not None:
                self._counted = True
                self._guard.pending += 1
        super().data_received(data)

    # -- the header deadline -----------------------------------------------------------
    def _arm(self) -> None:
        timeout = self._guard.header_timeout_s
        if timeout > 0 and self._ip is not None:
            self._deadline = self._loop.call_later(timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _headers_too_slow(self) -> None:
        self._deadline = None
        if self._in_request or self.transport is None:
            return
        self._guard.counters.hit(
            "header_timeout",
            f"no complete request within {self._guard.header_timeout_s:g} s; last from {self._ip}",
        )
        transport = self.transport
        if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
            transport.write(_TIMED_OUT)
        self.force_close()
        transport.close()

    def request_started(self) -> None:
        """A request's headers are parsed and a handler runs: the deadline is met."""
        self._in_request = True
        self._disarm()

    def request_done(self) -> None:
        """The handler returned; the next request's first byte re-arms the deadline.

        A connection whose next (pipelined) requests are already parsed stays in the queue:
        those requests are waiting as much as ones that arrived on their own connections.
        """
        self._in_request = False
        if not self._messages:
            self._uncount()

    def _uncount(self) -> None:
        if self._counted:
            self._counted = False
            self._guard.pending -= 1

    @property
    def queued(self) -> int:
        """Requests server-wide that arrived and are not answered yet."""
        return self._guard.pending

    # -- parse errors ----------------------------------------------------------------
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        if isinstance(exc, LineTooLong):
            kind, name = "request line or header too long", "header_too_long"
        else:
            kind, name = "malformed request line or headers", "bad_request_head"
        self._guard.counters.hit(name, f"{kind}; last from {self._ip}")
        resp = web.Response(status=400, text=f"400 Bad Request: {kind}\n")
        resp.force_close()
        return resp


class GuardedSite(web.TCPSite):
    """A TCP site whose connections go through :class:`GuardedRequestHandler`."""

    __slots__ = ("_guard",)

    def __init__(self, runner: web.AppRunner, guard: TcpGuard, **kwargs: Any) -> None:
        super().__init__(runner, **kwargs)
        self._guard = guard

    def _factory(self) -> Callable[[], GuardedRequestHandler]:
        server = self._runner.server
        assert server is not None
        guard = self._guard
        loop = asyncio.get_running_loop()
        # web.Server.__call__ builds RequestHandler(server, loop=..., **kwargs) from the
        # runner's handler arguments; this builds the guarded subclass the same way.
        kwargs = dict(server._kwargs)

        def factory() -> GuardedRequestHandler:
            return GuardedRequestHandler(guard, server, loop=loop, **kwargs)

        return factory

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._factory(),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    guard: TcpGuard,
    host: str,
    port: int,
    ssl_context: SSLContext | None = None,
    **runner_kwargs: Any,
) -> AsyncIterator[int]:
    """Serve ``app`` through the door until the block ends; yields the bound port.

    Raises:
        OSError: the address cannot be bound (e.g. the port is in use).
    """
    runner = web.AppRunner(app, **runner_kwargs)
    await runner.setup()
    try:
        site = GuardedSite(runner, guard, host=host, port=port, ssl_context=ssl_context)
        await site.start()
        bound = port
        sockets = getattr(site._server, "sockets", None)
        if sockets and sockets[0].family in (socket.AF_INET, socket.AF_INET6):
            bound = int(sockets[0].getsockname()[1])
        yield bound
    finally:
        await runner.cleanup()


def fd_bounded(max_connections: int, headroom: int = 256) -> int:
    """``max_connections`` kept ``headroom`` below the process's file-descriptor limit.

    Past that limit ``accept`` fails (and so does opening the database or a media socket),
    so the cap is what refuses the excess politely instead. 0 means "only the fd limit".
    """
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return max_connections
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return max_connections
    fd_cap = max(16, soft - headroom)
    return min(max_connections, fd_cap) if max_connections else fd_cap


def run_forever(
    app: web.Application,
    guard: TcpGuard,
    host: str,
    port: int,
    ssl_context: SSLContext | None = None,
) -> None:
    """``web.run_app`` through the door: serve until SIGINT/SIGTERM, then shut down cleanly.

    Raises:
        OSError: the address cannot be bound.
        Exception: whatever a startup context raised (e.g. the store could not open).
    """

    async def main() -> None:
        async with serving(
            app, guard, host, port, ssl_context, handle_signals=True, access_log=None
        ):
            await asyncio.Event().wait()  # until a signal raises GracefulExit

    loop = asyncio.new_event_loop()
    task = loop.create_task(main())
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        rest = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in rest:
            t.cancel()
        if rest:
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
