"""``AsyncEventHub``: the EventHub API for asyncio, over aiohttp.

Theory of operation: the same protocol and rules as :class:`vidhub.client.EventHub` (see its
module docstring), with coroutines instead of threads. ``await hub.connect()`` handshakes,
opens the socket and starts one reader task, which answers heartbeats, runs ack callbacks and
queues received events. Callbacks (plain functions or coroutine functions) run only inside
:meth:`AsyncEventHub.wait` and ``publish(..., synchronous=True)``, lowest priority first.
A ``0::`` from the server or a lost socket starts the automatic reconnect (in the reader
task); ``resume=True`` opts in to vidhub's replay of missed events.

Call every method from the event loop that connected the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from vidhub.client.eventhub_core import HubCore
from vidhub.client.eventhub_types import (
    Event,
    EventHubConnectionError,
    NotFoundError,
    SocketIoSession,
    Subscriber,
    encode_wire_event,
)
from vidhub.protocol.ftrack_event import EVENT_NAME
from vidhub.protocol.socketio09 import (
    Ack,
    Connected,
    Disconnected,
    ErrorReceived,
    EventReceived,
    PacketError,
    SocketIoProtocol,
    encode_event,
)

__all__ = ["AsyncEventHub"]

log = logging.getLogger("vidhub.client.AsyncEventHub")

_TIMEOUT = aiohttp.ClientTimeout(total=60)


class AsyncEventHub(HubCore):
    """Manage routing of events through a vidhub (or ftrack) event server, on asyncio.

    Args: as :class:`vidhub.client.EventHub`.
    """

    def __init__(
        self,
        server_url: str,
        api_user: str,
        api_key: str,
        headers: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
        *,
        resume: bool = False,
    ) -> None:
        super().__init__(server_url, api_user, api_key, headers, cookies, resume=resume)
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[Event] = asyncio.Queue()
        self._reconnecting: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open."""
        return self._ws is not None and not self._ws.closed

    async def connect(self) -> None:
        """Handshake, open the socket, (re)send every subscription, flush queued publishes.

        Raises:
            EventHubConnectionError: already connected, or connecting failed.
        """
        if self.connected:
            raise EventHubConnectionError("Already connected.")
        self._intentional_disconnect = False
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(cookies=self._cookies, timeout=_TIMEOUT)
        http = self._http
        url = self._handshake_url()
        try:
            async with http.get(url, headers=self._handshake_headers()) as resp:
                session = self._parse_handshake(resp.status, await resp.text())
            ws = await http.ws_connect(self._websocket_url(session.id), headers=self._headers)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise EventHubConnectionError(f"Failed to connect to event server at {url}") from exc
        self._session = session
        self._ws = ws
        self._connection_initialised = True
        self._reader = asyncio.get_running_loop().create_task(self._read_loop(ws))
        self._ensure_reply_subscriber(self._handle_reply)
        for sub in list(self._subscribers):
            await self._notify_subscribe(sub)
        queued, self._event_send_queue = self._event_send_queue, []
        for event in queued:
            await self._publish(event)

    async def disconnect(self, unsubscribe: bool = True, reconnect: bool = False) -> None:
        """Disconnect; with ``unsubscribe`` first remove every subscriber.

        Raises:
            EventHubConnectionError: not connected.
        """
        if not self.connected:
            raise EventHubConnectionError("Not currently connected.")
        self._intentional_disconnect = True
        if not reconnect:
            self._connection_initialised = False
        if unsubscribe:
            for sub in list(self._subscribers):
                with contextlib.suppress(NotFoundError):
                    await self.unsubscribe(sub.metadata["id"])
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        if not reconnect and self._http is not None:
            await self._http.close()
            self._http = None

    async def reconnect(self, attempts: int = 10, delay: float = 5) -> None:
        """Disconnect (keeping subscribers) and connect again, up to ``attempts`` times.

        Raises:
            EventHubConnectionError: every attempt failed.
        """
        with contextlib.suppress(EventHubConnectionError):
            await self.disconnect(unsubscribe=False, reconnect=True)
        self._connection_initialised = True
        for attempt in range(attempts):
            try:
                await self.connect()
                return
            except EventHubConnectionError:
                if attempt + 1 < attempts:
                    await asyncio.sleep(delay)
        raise EventHubConnectionError(f"Failed to reconnect to event server after {attempts}.")

    async def close(self) -> None:
        """Disconnect if connected and release the HTTP session."""
        with contextlib.suppress(EventHubConnectionError):
            await self.disconnect()
        if self._reconnecting is not None:
            self._reconnecting.cancel()
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ------------------------------------------------------------------ reader task

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        proto = SocketIoProtocol(client=True)
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            try:
                items = proto.receive_text(msg.data)
            except PacketError as exc:
                log.debug("ignored a bad packet: %s", exc)
                continue
            for text in proto.data_to_send():
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(text)
            for item in items:
                if isinstance(item, Disconnected):
                    await ws.close()
                    break
                self._on_packet(item)
        if self._ws is ws and not self._intentional_disconnect:
            self._ws = None
            self._reconnecting = asyncio.get_running_loop().create_task(self._auto_reconnect())

    async def _auto_reconnect(self) -> None:
        log.info("lost the event server; reconnecting")
        try:
            await self.reconnect(self._auto_reconnect_attempts, self._auto_reconnect_delay)
        except EventHubConnectionError:
            self._events.put_nowait(
                Event(topic="ftrack.meta.disconnected", source=self._own_source())
            )

    def _on_packet(self, item: object) -> None:
        if isinstance(item, EventReceived):
            event = self._accept_received(item.args)
            if event is not None:
                self._events.put_nowait(event)
        elif isinstance(item, Ack):
            callback = self._packet_callbacks.pop(item.ack_id, None)
            if callback is not None:
                payload = item.args[0] if item.args and isinstance(item.args[0], dict) else {}
                try:
                    callback(payload)
                except Exception:
                    log.exception("ack callback failed")
        elif isinstance(item, Connected):
            self._events.put_nowait(Event(topic="ftrack.meta.connected", source=self._own_source()))
        elif isinstance(item, ErrorReceived):
            log.error("event server reported an error: %s", item.data)

    # ------------------------------------------------------------------ waiting

    async def wait(self, duration: float | None = None) -> None:
        """Handle received events until ``duration`` seconds pass (forever when None).

        Raises:
            EventHubConnectionError: the hub is not initialised.
        """
        if not self._connection_initialised and not self.connected:
            raise EventHubConnectionError("Event hub is not connected.")
        loop = asyncio.get_running_loop()
        end = None if duration is None else loop.time() + duration
        while True:
            left = None if end is None else end - loop.time()
            if left is not None and left <= 0:
                return
            try:
                event = await asyncio.wait_for(self._events.get(), left)
            except TimeoutError:
                return
            await self._handle(event)
            if event["topic"] == "ftrack.meta.disconnected":
                return

    # ------------------------------------------------------------------ subscribers

    async def subscribe(
        self,
        subscription: str,
        callback: Callable[[Event], Any] | None,
        subscriber: dict[str, Any] | None = None,
        priority: int = 100,
    ) -> str:
        """Register ``callback`` (a function or coroutine function); returns the id.

        Raises:
            NotUniqueError: a subscriber with that id exists.
            ParseError: the subscription does not parse.
        """
        metadata = subscriber if subscriber is not None else {}
        sub = self._add_subscriber(subscription, callback, metadata, priority)
        try:
            await self._notify_subscribe(sub)
        except EventHubConnectionError:
            log.debug("not connected: the server learns of %s on connect", metadata["id"])
        return str(metadata["id"])

    async def _notify_subscribe(self, sub: Subscriber) -> None:
        await self._publish(
            self._subscribe_event(sub), callback=lambda r: self._on_ack("subscribe", r)
        )

    async def unsubscribe(self, subscriber_identifier: str) -> None:
        """Remove a subscriber locally and tell the server if connected.

        Raises:
            NotFoundError: no subscriber has that id.
        """
        sub = self.get_subscriber_by_identifier(subscriber_identifier)
        if sub is None:
            raise NotFoundError(f"cannot unsubscribe missing subscriber {subscriber_identifier}")
        self._subscribers.remove(sub)
        try:
            await self._publish(
                self._unsubscribe_event(sub), callback=lambda r: self._on_ack("unsubscribe", r)
            )
        except EventHubConnectionError:
            log.debug("not connected: unsubscribe of %s not sent", subscriber_identifier)

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

    # ------------------------------------------------------------------ publishing

    async def publish(
        self,
        event: Event,
        synchronous: bool = False,
        on_reply: Callable[[Event], Any] | None = None,
        on_error: str = "raise",
    ) -> Any:
        """Publish ``event``; same returns and errors as :meth:`vidhub.client.EventHub.publish`."""
        try:
            return await self._publish(event, synchronous=synchronous, on_reply=on_reply)
        except EventHubConnectionError:
            if on_error == "ignore":
                return None
            raise

    async def publish_reply(
        self, source_event: Event, data: Any, source: dict[str, Any] | None = None
    ) -> Any:
        """Publish a ``ftrack.meta.reply`` targeted at the publisher of ``source_event``."""
        return await self.publish(self._reply_event(source_event, data, source))

    async def _publish(
        self,
        event: Event,
        synchronous: bool = False,
        callback: Callable[[dict[str, Any]], None] | None = None,
        on_reply: Callable[[Event], Any] | None = None,
    ) -> Any:
        self._prepare_event(event)
        if synchronous:
            return await self._handle(event, synchronous=True)
        ws = self._ws
        if ws is None or ws.closed:
            if self._connection_initialised:
                self._event_send_queue.append(event)
                return True
            raise EventHubConnectionError("Cannot publish event as not connected.")
        if on_reply is not None:
            self._reply_callbacks[event["id"]] = on_reply
        ack_id = self._take_ack_id()
        self._packet_callbacks[ack_id] = callback or (lambda r: self._on_ack("publish", r))
        try:
            await ws.send_str(encode_event(EVENT_NAME, [encode_wire_event(event)], ack_id))
        except (ConnectionError, RuntimeError) as exc:
            self._packet_callbacks.pop(ack_id, None)
            raise EventHubConnectionError(f"send failed: {exc}") from exc
        return None

    # ------------------------------------------------------------------ dispatch

    async def _handle(self, event: Event, synchronous: bool = False) -> list[Any]:
        results: list[Any] = []
        for sub in self._interested(event):
            try:
                response = sub.callback(event)  # type: ignore[misc]
                if inspect.isawaitable(response):
                    response = await response
            except Exception:
                log.exception("error calling subscriber %s for event %s", sub, event["id"])
            else:
                results.append(response)
                if not synchronous and response is not None:
                    try:
                        await self.publish_reply(event, data=response, source=sub.metadata)
                    except Exception:
                        log.exception("error publishing reply to %s", event["id"])
            if event.is_stopped():
                break
        return results

    async def _handle_reply(self, event: Event) -> None:
        callback = self._reply_callbacks.get(event["in_reply_to_event"])
        if callback is not None:
            result = callback(event)
            if inspect.isawaitable(result):
                await result

    @property
    def session(self) -> SocketIoSession | None:
        """The current socket.io session (handshake answer), if any."""
        return self._session
