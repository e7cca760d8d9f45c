"""rtcbot's ``Websocket``: an aiohttp WebSocket behind the producer/consumer API.

Theory of operation (rtcbot.md §2): the constructor never blocks. It schedules one task that
connects (client mode, from a URL) or completes the handshake (server mode, from an aiohttp
``web.Request``), then becomes ready, and runs two loops until close:

- the **receiver** reads frames and fans them out to the subscriptions (``get``,
  ``subscribe``): a text frame is JSON-decoded when ``json=True``, falling back to the raw
  string when it is not JSON; a binary frame is delivered as ``bytes``;
- the **sender** reads the consumer side (``put_nowait``, ``putSubscription``) and writes each
  item: ``bytes`` as a binary frame, anything else as JSON text (``json=True``) or as the
  string itself (``json=False``). Items put before the connection is up are sent, in order,
  once it is.

The object closes when either side closes the socket, when the receiver hits a protocol
error, when an item cannot be sent (e.g. not JSON-serialisable; ``error`` says why), or when
the connection cannot be made at all. In every case ``closed`` becomes true, ``onClose``
fires, ``await ws`` returns and the client session is released. Messages that arrive before
the first ``get()``/``subscribe()`` are held (up to ``hold`` of them) for the first
subscriber. The other deliberate differences from rtcbot 0.2.5 are listed in
:mod:`vidhub.client.subscriptions`.

``close()`` first lets the sender write what was already put (up to ``FLUSH_TIMEOUT_S``),
then sends the close frame.

Server side (rtcbot.md §2.7)::

    async def handler(request: web.Request) -> web.StreamResponse:
        ws = Websocket(request)
        ws.subscribe(on_message)   # or: msg = await ws.get()
        ws.put_nowait({"hello": "world"})
        await ws                   # until the peer goes
        return ws.response         # ws.ws, or a 400 if the request was no WebSocket upgrade

A server run with ``handler_cancellation=True`` (aiohttp's ``TestServer``) may cancel the
handler once the peer is gone; the object still closes, so put clean-up in ``onClose``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
from aiohttp import web

from vidhub.client.subscriptions import (
    Subscription,
    SubscriptionClosed,
    SubscriptionProducerConsumer,
    _Done,
)
from vidhub.protocol import jsoncodec

__all__ = ["Websocket"]

log = logging.getLogger("vidhub.client.Websocket")

#: How many messages are held for the first subscriber by default.
DEFAULT_HOLD = 1024
#: How long ``close()`` waits for already-put items to be written.
FLUSH_TIMEOUT_S = 5.0


class _Flush:
    """Put last into the direct queue by ``close()``: the sender stops when it reads it."""


_FLUSH = _Flush()


class Websocket(SubscriptionProducerConsumer):
    """A WebSocket with rtcbot's subscription API; see the module docstring.

    Args:
        url_or_request: a ``ws://``/``wss://``/``http://``/``https://`` URL to connect to, or
            the aiohttp ``web.Request`` of a WebSocket upgrade to accept.
        json: encode outgoing items and decode incoming text frames as JSON.
        loop: the event loop to run on; defaults to the running loop.
        headers: extra request headers in client mode (e.g. ``Authorization``).
        hold: how many messages to keep for the first subscriber (0 drops them, as rtcbot).
    """

    def __init__(
        self,
        url_or_request: str | web.Request,
        json: bool = True,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        hold: int = DEFAULT_HOLD,
    ) -> None:
        super().__init__(Subscription, False, log, holdEarly=hold)
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self._json = json
        self._headers = dict(headers or {})
        #: The aiohttp socket once connected: ``ClientWebSocketResponse`` or
        #: ``web.WebSocketResponse``.
        self.ws: aiohttp.ClientWebSocketResponse | web.WebSocketResponse | None = None
        self._client: aiohttp.ClientSession | None = None
        self._handshake_error: web.HTTPException | None = None
        self._sender: asyncio.Task[None] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._main = self._loop.create_task(self._run(url_or_request))

    # -- life cycle --------------------------------------------------------------------------

    async def _run(self, target: str | web.Request) -> None:
        try:
            try:
                self.ws = await self._open(target)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._log.debug("websocket connect failed: %r", exc)
                self._setError(exc)
                return
            self._setReady(True)
            self._sender = self._loop.create_task(self._send_loop())
            await self._receive_loop()
        finally:
            await self._release()
            self._finish_close()

    async def _open(
        self, target: str | web.Request
    ) -> aiohttp.ClientWebSocketResponse | web.WebSocketResponse:
        if isinstance(target, str):
            self._client = aiohttp.ClientSession()
            return await self._client.ws_connect(target, headers=self._headers)
        resp = web.WebSocketResponse()
        try:
            await resp.prepare(target)
        except web.HTTPException as exc:
            self._handshake_error = exc
            raise
        return resp

    @property
    def response(self) -> web.StreamResponse:
        """What a server-mode handler returns once ``await ws`` is done.

        The ``WebSocketResponse`` when the handshake succeeded; when the request was not a
        valid WebSocket upgrade, a plain response with the handshake error's status and text
        (e.g. 400), so the client gets a clear error instead of a 500.
        """
        if isinstance(self.ws, web.WebSocketResponse):
            return self.ws
        err = self._handshake_error
        if err is not None:
            return web.Response(status=err.status, text=err.text)
        return web.Response(status=500, text="websocket was not established")

    async def _receive_loop(self) -> None:
        ws = self.ws
        assert ws is not None
        while not self._closing:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                self._put_nowait(self._decode(msg.data))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                self._put_nowait(bytes(msg.data))
            elif msg.type == aiohttp.WSMsgType.ERROR:
                self._setError(ws.exception() or ConnectionError("websocket error"))
                return
            else:  # CLOSE, CLOSING, CLOSED
                return

    def _decode(self, text: str) -> Any:
        if not self._json:
            return text
        try:
            return jsoncodec.loads(text)
        except jsoncodec.JSONDecodeError:
            self._log.debug("received text that is not JSON; delivering it raw")
            return text

    async def _send_loop(self) -> None:
        ws = self.ws
        assert ws is not None
        while True:
            try:
                item = await self._get()
            except SubscriptionClosed:
                return
            if item is _FLUSH:
                return
            try:
                if isinstance(item, bytes | bytearray | memoryview):
                    await ws.send_bytes(bytes(item))
                elif self._json:
                    await ws.send_str(jsoncodec.dumps(item))
                else:
                    if not isinstance(item, str):
                        raise TypeError(f"json=False sends str or bytes, not {type(item).__name__}")
                    await ws.send_str(item)
            except (ConnectionError, aiohttp.ClientError):
                return  # the receiver sees the close and tears down
            except Exception as exc:
                self._log.error("cannot send %s item; closing", type(item).__name__)
                self._setError(exc)
                # wake the receiver by closing the socket; _run then finishes the close
                await ws.close()
                return

    async def _release(self) -> None:
        """Close the socket and the client session; stop the sender."""
        self._closing = True
        self._cancel_get()
        ws = self.ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(Exception):
                await ws.close()
        sender = self._sender
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        if self._client is not None:
            await self._client.close()
            self._client = None

    def close(self) -> Awaitable[None]:
        """Send what was already put, then close the socket (code 1000) and the object.

        Idempotent. Returns an awaitable, complete once closed; when the loop is not running,
        the close runs to completion before this returns.
        """
        if self._closed:
            return _Done()
        if self._close_task is None:
            self._close_task = self._loop.create_task(self._close())
        if self._loop.is_running():
            return self._close_task
        self._loop.run_until_complete(self._close_task)
        return _Done()

    async def _close(self) -> None:
        sender = self._sender
        if sender is not None and not sender.done() and self._current is self._direct:
            self._direct.put_nowait(_FLUSH)
            await asyncio.wait({sender}, timeout=FLUSH_TIMEOUT_S)
        self._closing = True
        self._cancel_get()
        main = self._main
        if not main.done():
            ws = self.ws
            if ws is not None and not ws.closed:
                # ends the receiver, which releases and finishes the close
                with contextlib.suppress(Exception):
                    await ws.close()
            else:
                main.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(main)
        await self._release()
        self._finish_close()
