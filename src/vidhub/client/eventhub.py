"""``EventHub``: a thread-based client with the public API of ``ftrack_api.event.hub.EventHub``.

Theory of operation (eventhub.md §1-§3, §7). ``connect()`` does the socket.io 0.9 handshake
with ``requests``, opens the WebSocket with ``websocket-client`` and starts a reader thread.
The reader answers heartbeats, runs ack callbacks and queues received events; callbacks run
only in the thread that calls :meth:`EventHub.wait` (or in :meth:`EventHub.publish` with
``synchronous=True``), lowest priority first, until one calls ``event.stop()``.

Differences from ftrack_api, all deliberate:

- a close frame without ``0::``, an empty frame or a malformed packet never kills the reader
  silently: malformed packets are logged and skipped, a lost socket triggers the automatic
  reconnect;
- ``resume=True`` opts in to vidhub's replay: reconnects present the previous session id and
  the last event id seen, and the server sends what was missed; duplicates are dropped by id;
- expression errors raise :class:`~vidhub.protocol.expression.EvaluationError` (ftrack_api
  raises TypeError/IndexError) and an empty subscription raises ``ParseError``.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import websocket

from vidhub.client.eventhub_core import RESUME_HEADER, HubCore
from vidhub.client.eventhub_types import (
    Event,
    EventHubConnectionError,
    NotFoundError,
    ServerDetails,
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

__all__ = ["RESUME_HEADER", "EventHub", "ServerDetails", "SocketIoSession"]

log = logging.getLogger("vidhub.client.EventHub")


class EventHub(HubCore):
    """Manage routing of events through a vidhub (or ftrack) event server.

    Args:
        server_url: ``http[s]://host[:port]``; any path is ignored (§1.1).
        api_user: the user to authenticate as.
        api_key: the API key (vidhub: the server secret or one of its hub keys).
        headers: extra HTTP headers for the handshake and the WebSocket upgrade.
        cookies: extra cookies for both.
        resume: opt in to vidhub's replay of events missed while reconnecting.

    Raises:
        ValueError: ``server_url`` lacks a scheme or a hostname.
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
        self._connection: websocket.WebSocket | None = None
        self._event_queue: queue.Queue[Event] = queue.Queue()
        self._send_lock = threading.RLock()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ connection

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open."""
        conn = self._connection
        return conn is not None and bool(conn.connected)

    def _handshake(self) -> SocketIoSession:
        url = self._handshake_url()
        try:
            resp = requests.get(
                url, headers=self._handshake_headers(), cookies=self._cookies, timeout=60
            )
        except requests.RequestException as exc:
            raise EventHubConnectionError(f"Failed to connect to event server at {url}") from exc
        return self._parse_handshake(resp.status_code, resp.text)

    def connect(self) -> None:
        """Handshake, open the socket, (re)send every subscription, flush queued publishes.

        Raises:
            EventHubConnectionError: already connected, or connecting failed.
        """
        if self.connected:
            raise EventHubConnectionError("Already connected.")
        self._intentional_disconnect = False
        session = self._handshake()
        url = self._websocket_url(session.id)
        cookie = ";".join(f"{k}={v}" for k, v in self._cookies.items()) or None
        try:
            conn = websocket.create_connection(
                url, timeout=60, header=self._headers, cookie=cookie, enable_multithread=True
            )
        except Exception as exc:  # websocket-client raises many unrelated types here
            raise EventHubConnectionError(f"Failed to connect to event server at {url}") from exc
        self._session = session
        self._connection = conn
        self._connection_initialised = True
        self._reader = threading.Thread(
            target=self._read_loop, args=(conn,), name="vidhub-eventhub-reader", daemon=True
        )
        self._reader.start()
        self._ensure_reply_subscriber(self._handle_reply)
        for subscriber in list(self._subscribers):
            self._notify_subscribe(subscriber)
        queued, self._event_send_queue = self._event_send_queue, []
        for event in queued:
            self._publish(event)

    def disconnect(self, unsubscribe: bool = True, reconnect: bool = False) -> None:
        """Disconnect; with ``unsubscribe`` first remove every subscriber (the server is told).

        Raises:
            EventHubConnectionError: not connected.
        """
        if not self.connected:
            raise EventHubConnectionError("Not currently connected.")
        self._intentional_disconnect = True
        if not reconnect:
            self._connection_initialised = False
        if unsubscribe:
            for subscriber in list(self._subscribers):
                with contextlib.suppress(NotFoundError):
                    self.unsubscribe(subscriber.metadata["id"])
        conn, self._connection = self._connection, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close(timeout=3)
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(4)

    def reconnect(self, attempts: int = 10, delay: float = 5) -> None:
        """Disconnect (keeping subscribers) and connect again, up to ``attempts`` times.

        Raises:
            EventHubConnectionError: every attempt failed.
        """
        with contextlib.suppress(EventHubConnectionError):
            self.disconnect(unsubscribe=False, reconnect=True)
        self._connection_initialised = True
        for attempt in range(attempts):
            try:
                self.connect()
                return
            except EventHubConnectionError:
                if attempt + 1 < attempts:
                    time.sleep(delay)
        raise EventHubConnectionError(f"Failed to reconnect to event server after {attempts}.")

    # ------------------------------------------------------------------ reader thread

    def _read_loop(self, conn: websocket.WebSocket) -> None:
        proto = SocketIoProtocol(client=True)
        while True:
            try:
                frame = conn.recv()
            except Exception as exc:  # timeout, EOF, reset, close: all mean "socket gone"
                log.debug("event hub socket lost: %s", exc)
                frame = None
            if self._connection is not conn:
                return  # replaced or closed on purpose
            if not frame:
                self._connection_lost(conn)
                return
            if isinstance(frame, bytes):
                log.debug("ignored a binary frame")
                continue
            try:
                events = proto.receive_text(frame)
            except PacketError as exc:
                log.debug("ignored a bad packet: %s", exc)
                continue
            for text in proto.data_to_send():
                self._send_frame(text)
            for item in events:
                if isinstance(item, Disconnected):
                    self._connection_lost(conn)
                    return
                self._on_packet(item)

    def _on_packet(self, item: object) -> None:
        if isinstance(item, EventReceived):
            event = self._accept_received(item.args)
            if event is not None:
                self._event_queue.put(event)
        elif isinstance(item, Ack):
            callback = self._packet_callbacks.pop(item.ack_id, None)
            if callback is not None:
                payload = item.args[0] if item.args and isinstance(item.args[0], dict) else {}
                try:
                    callback(payload)
                except Exception:
                    log.exception("ack callback failed")
        elif isinstance(item, Connected):
            self._event_queue.put(Event(topic="ftrack.meta.connected", source=self._own_source()))
        elif isinstance(item, ErrorReceived):
            log.error("event server reported an error: %s", item.data)

    def _connection_lost(self, conn: websocket.WebSocket) -> None:
        if self._intentional_disconnect or self._connection is not conn:
            return
        self._connection = None
        closing: Any = conn  # mypy narrows conn to Optional after the identity test
        with contextlib.suppress(Exception):
            closing.close(timeout=1)
        log.info("lost the event server; reconnecting")
        try:
            self.reconnect(self._auto_reconnect_attempts, self._auto_reconnect_delay)
        except EventHubConnectionError:
            self._event_queue.put(
                Event(topic="ftrack.meta.disconnected", source=self._own_source())
            )

    def _send_frame(self, text: str) -> None:
        conn = self._connection
        if conn is None:
            raise EventHubConnectionError("Not connected.")
        try:
            with self._send_lock:
                conn.send(text)
        except (OSError, websocket.WebSocketException) as exc:
            raise EventHubConnectionError(f"send failed: {exc}") from exc

    # ------------------------------------------------------------------ waiting

    def wait(self, duration: float | None = None) -> None:
        """Handle received events until ``duration`` seconds pass (forever when None).

        Returns early after handling ``ftrack.meta.disconnected``.

        Raises:
            EventHubConnectionError: the hub is not initialised.
        """
        if not self._connection_initialised and not self.connected:
            raise EventHubConnectionError("Event hub is not connected.")
        start = time.monotonic()
        while True:
            try:
                event = self._event_queue.get(timeout=0.1)
            except queue.Empty:
                pass
            else:
                self._handle(event)
                if event["topic"] == "ftrack.meta.disconnected":
                    return
            if duration is not None and time.monotonic() - start >= duration:
                return

    # ------------------------------------------------------------------ subscribers

    def subscribe(
        self,
        subscription: str,
        callback: Callable[[Event], Any] | None,
        subscriber: dict[str, Any] | None = None,
        priority: int = 100,
    ) -> str:
        """Register ``callback`` for events matching ``subscription``; returns the id.

        ``subscriber`` (mutated: ``id`` is filled in) is the metadata targets match against.

        Raises:
            NotUniqueError: a subscriber with that id exists.
            ParseError: the subscription does not parse.
        """
        metadata = subscriber if subscriber is not None else {}
        sub = self._add_subscriber(subscription, callback, metadata, priority)
        try:
            self._notify_subscribe(sub)
        except EventHubConnectionError:
            log.debug("not connected: the server learns of %s on connect", metadata["id"])
        return str(metadata["id"])

    def _notify_subscribe(self, sub: Subscriber) -> None:
        self._publish(self._subscribe_event(sub), callback=lambda r: self._on_ack("subscribe", r))

    def unsubscribe(self, subscriber_identifier: str) -> None:
        """Remove a subscriber locally and tell the server if connected.

        Raises:
            NotFoundError: no subscriber has that id.
        """
        sub = self.get_subscriber_by_identifier(subscriber_identifier)
        if sub is None:
            raise NotFoundError(f"cannot unsubscribe missing subscriber {subscriber_identifier}")
        self._subscribers.remove(sub)
        try:
            self._publish(
                self._unsubscribe_event(sub), callback=lambda r: self._on_ack("unsubscribe", r)
            )
        except EventHubConnectionError:
            log.debug("not connected: unsubscribe of %s not sent", subscriber_identifier)

    @contextlib.contextmanager
    def subscription(
        self,
        subscription: str,
        callback: Callable[[Event], Any] | None,
        subscriber: dict[str, Any] | None = None,
        priority: int = 100,
    ) -> Iterator[None]:
        """Subscribe for the duration of a ``with`` block."""
        identifier = self.subscribe(subscription, callback, subscriber, priority)
        try:
            yield None
        finally:
            with contextlib.suppress(NotFoundError):
                self.unsubscribe(identifier)

    # ------------------------------------------------------------------ publishing

    def publish(
        self,
        event: Event,
        synchronous: bool = False,
        on_reply: Callable[[Event], Any] | None = None,
        on_error: str = "raise",
    ) -> Any:
        """Publish ``event`` (its ``source`` is filled in).

        Returns:
            the list of local callback results when ``synchronous`` (nothing is sent);
            True when queued while initialised but offline; None when sent.

        Raises:
            EventHubConnectionError: not connected nor initialised (unless
                ``on_error="ignore"``).
        """
        try:
            return self._publish(event, synchronous=synchronous, on_reply=on_reply)
        except EventHubConnectionError:
            if on_error == "ignore":
                return None
            raise

    def publish_reply(
        self, source_event: Event, data: Any, source: dict[str, Any] | None = None
    ) -> Any:
        """Publish a ``ftrack.meta.reply`` targeted at the publisher of ``source_event``."""
        return self.publish(self._reply_event(source_event, data, source))

    def _publish(
        self,
        event: Event,
        synchronous: bool = False,
        callback: Callable[[dict[str, Any]], None] | None = None,
        on_reply: Callable[[Event], Any] | None = None,
    ) -> Any:
        self._prepare_event(event)
        if synchronous:
            return self._handle(event, synchronous=True)
        if not self.connected:
            if self._connection_initialised:
                self._event_send_queue.append(event)
                return True
            raise EventHubConnectionError("Cannot publish event as not connected.")
        if on_reply is not None:
            self._reply_callbacks[event["id"]] = on_reply
        ack_id = self._take_ack_id()
        self._packet_callbacks[ack_id] = callback or (lambda r: self._on_ack("publish", r))
        try:
            self._send_frame(encode_event(EVENT_NAME, [encode_wire_event(event)], ack_id))
        except EventHubConnectionError:
            self._packet_callbacks.pop(ack_id, None)
            log.error("Error sending event %s", event["id"])
            raise
        return None

    # ------------------------------------------------------------------ dispatch

    def _handle(self, event: Event, synchronous: bool = False) -> list[Any]:
        results: list[Any] = []
        for sub in self._interested(event):
            try:
                response = sub.callback(event)  # type: ignore[misc]
            except Exception:
                log.exception("error calling subscriber %s for event %s", sub, event["id"])
            else:
                results.append(response)
                if not synchronous and response is not None:
                    try:
                        self.publish_reply(event, data=response, source=sub.metadata)
                    except Exception:
                        log.exception("error publishing reply to %s", event["id"])
            if event.is_stopped():
                break
        return results

    def _handle_reply(self, event: Event) -> None:
        callback = self._reply_callbacks.get(event["in_reply_to_event"])
        if callback is not None:
            callback(event)
