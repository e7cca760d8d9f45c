"""``AsyncEventHub``: the EventHub API for asyncio, over aiohttp.

Theory of operation: the same protocol and rules as :class:`vidhub.client.EventHub` (see its
module docstring; both are written once in :mod:`vidhub.client.eventhub_core`), with
coroutines instead of threads. ``await hub.connect()`` handshakes, opens the socket and starts
one reader task, which answers heartbeats, runs ack callbacks and queues received events.
Callbacks (plain functions or coroutine functions) run only inside :meth:`AsyncEventHub.wait`
and ``publish(..., synchronous=True)``, lowest priority first. A ``0::`` from the server or a
lost socket starts the automatic reconnect (in its own task); ``resume=True`` opts in to
vidhub's replay of missed events.

Call every method from the event loop that connected the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import aiohttp

from vidhub.client import eventhub_effects as fx
from vidhub.client.eventhub_core import HubCore
from vidhub.client.eventhub_types import Event, EventHubConnectionError, NotFoundError
from vidhub.client.transport import named_after
from vidhub.protocol.socketio09 import SocketIoProtocol

__all__ = ["AsyncEventHub"]

T = TypeVar("T")
P = ParamSpec("P")


class _Runs(Protocol):
    def _run(self, op: fx.Op[T]) -> Awaitable[T]: ...


R = TypeVar("R", bound=_Runs)


def _awaiting(
    op: Callable[Concatenate[R, P], fx.Op[T]],
) -> Callable[Concatenate[R, P], Coroutine[Any, Any, T]]:
    """The public coroutine method that runs the operation ``op`` with this transport."""

    async def method(self: R, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._run(op(self, *args, **kwargs))

    return named_after(op, method)


_TIMEOUT = aiohttp.ClientTimeout(total=60)


class AsyncEventHub(HubCore):
    """Manage routing of events through a vidhub (or ftrack) event server, on asyncio.

    Args: as :class:`vidhub.client.EventHub`.
    """

    def _init_transport(self) -> None:
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._reconnecting: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public API
    # (contracts as on :class:`vidhub.client.EventHub`)

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open."""
        return self._ws is not None and not self._ws.closed

    connect = _awaiting(HubCore._connect)
    disconnect = _awaiting(HubCore._disconnect)
    reconnect = _awaiting(HubCore._reconnect)
    wait = _awaiting(HubCore._wait)
    subscribe = _awaiting(HubCore._subscribe)
    unsubscribe = _awaiting(HubCore._unsubscribe)
    publish = _awaiting(HubCore._publish)
    publish_reply = _awaiting(HubCore._publish_reply)

    async def close(self) -> None:
        """Disconnect if connected and release the HTTP session."""
        with contextlib.suppress(EventHubConnectionError):
            await self.disconnect()
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        await self._release()

    @contextlib.asynccontextmanager
    async def subscription(
        self,
        subscription: str,
        callback: Callable[[Event], Any] | None,
        subscriber: dict[str, Any] | None = None,
        priority: int = 100,
    ) -> AsyncIterator[None]:
        """Subscribe for the duration of an ``async with`` block."""
        identifier = await self.subscribe(subscription, callback, subscriber, priority)
        try:
            yield None
        finally:
            with contextlib.suppress(NotFoundError):
                await self.unsubscribe(identifier)

    # ------------------------------------------------------------------ transport

    async def _run(self, op: fx.Op[T]) -> T:
        """Drive an operation: perform each effect it yields, throw back what fails."""
        try:
            effect = next(op)
            while True:
                try:
                    result = await self._perform(effect)
                except Exception as exc:  # handed to the operation, which decides
                    effect = op.throw(exc)
                else:
                    effect = op.send(result)
        except StopIteration as done:
            return cast(T, done.value)

    async def _perform(self, effect: fx.Effect) -> Any:
        if isinstance(effect, fx.Send):
            return await self._send_frame(effect.text)
        if isinstance(effect, fx.Call):
            result = effect.callback(effect.event)
            return await result if inspect.isawaitable(result) else result
        if isinstance(effect, fx.Deliver):
            return self._events.put_nowait(effect.event)
        if isinstance(effect, fx.Next):
            try:
                return await asyncio.wait_for(self._events.get(), effect.timeout)
            except TimeoutError:
                return None
        if isinstance(effect, fx.Sleep):
            return await asyncio.sleep(effect.seconds)
        if isinstance(effect, fx.Handshake):
            return await self._handshake(effect)
        if isinstance(effect, fx.Open):
            return await self._open(effect.url)
        if isinstance(effect, fx.Close):
            return await self._close(effect.final)
        raise TypeError(f"unknown effect {effect!r}")

    def _session_http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(cookies=self._cookies, timeout=_TIMEOUT)
        return self._http

    async def _handshake(self, effect: fx.Handshake) -> tuple[int, str]:
        try:
            async with self._session_http().get(effect.url, headers=effect.headers) as resp:
                return resp.status, await resp.text()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise EventHubConnectionError(
                f"Failed to connect to event server at {effect.url}"
            ) from exc

    async def _open(self, url: str) -> None:
        try:
            ws = await self._session_http().ws_connect(url, headers=self._headers)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise EventHubConnectionError(f"Failed to connect to event server at {url}") from exc
        self._ws = ws
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(ws))

    async def _close(self, final: bool) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if final:
            await self._release()

    async def _release(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _send_frame(self, text: str) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            raise EventHubConnectionError("Not connected.")
        try:
            await ws.send_str(text)
        except (ConnectionError, RuntimeError) as exc:
            raise EventHubConnectionError(f"send failed: {exc}") from exc

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        proto = SocketIoProtocol(client=True)
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            if not await self._run(self._frame_op(proto, msg.data)):
                await ws.close()
                break
        if self._ws is ws and not self._intentional_disconnect:
            self._ws = None
            self._reconnecting = asyncio.get_running_loop().create_task(
                self._run(self._auto_reconnect_op())
            )
