"""The I/O-free core of the EventHub clients: every rule of the ftrack client, written once.

Theory of operation (eventhub.md §1-§3, §7). Each operation (connect, disconnect, reconnect,
subscribe, unsubscribe, publish, dispatch, wait, one received frame) is a generator
(:data:`Op`) that yields *effects* (:class:`Send` a frame, :class:`Call` a user callback,
:class:`Sleep`, :class:`Handshake`, :class:`Open` or :class:`Close` the socket,
:class:`Deliver` a received event to the queue, take the :class:`Next` one) and receives
their results; a failed effect is thrown back in at the ``yield``. The thread client
(:mod:`vidhub.client.eventhub`) and the asyncio client (:mod:`vidhub.client.eventhub_async`)
are thin transports: each performs the effects with its own I/O (``requests`` and
``websocket-client``, or ``aiohttp``) in one ``_run(op)`` driver, runs a reader that hands
each text frame to :meth:`HubCore._frame_op`, and starts the automatic reconnect when the
socket is lost. Addresses, local subscribers, event preparation, dispatch order, handshake
parsing and the resume bookkeeping live here too.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

from vidhub.client.eventhub_effects import (
    Call,
    Close,
    Deliver,
    Handshake,
    Next,
    Op,
    Open,
    Send,
    Sleep,
)
from vidhub.client.eventhub_types import (
    Event,
    EventHubConnectionError,
    EventHubPacketError,
    NotFoundError,
    NotUniqueError,
    ServerDetails,
    SocketIoSession,
    Subscriber,
    decode_wire_event,
    encode_wire_event,
)
from vidhub.protocol.expression import ExpressionError, compile_expression
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
    parse_handshake_body,
)

__all__ = ["RESUME_HEADER", "HubCore"]

log = logging.getLogger("vidhub.client.EventHub")

#: Handshake header opting in to vidhub's replay (``<previous sid>:<last event id>``).
RESUME_HEADER = "vidhub-resume"
_SEEN_IDS = 2048
REPLY_TOPIC = "ftrack.meta.reply"


class HubCore:
    """State and rules common to :class:`~vidhub.client.EventHub` and
    :class:`~vidhub.client.eventhub_async.AsyncEventHub`.

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
        parsed = urlparse(server_url)
        if not parsed.scheme or not parsed.hostname:
            raise ValueError(f"could not determine scheme and hostname from {server_url!r}")
        self.server = ServerDetails(parsed.scheme, parsed.hostname, parsed.port)
        self.id = uuid.uuid4().hex
        self._api_user = api_user
        self._api_key = api_key
        self._headers = dict(headers or {})
        self._cookies = dict(cookies or {})
        self._resume = resume
        self._connection_initialised = False
        self._intentional_disconnect = False
        self._subscribers: list[Subscriber] = []
        self._reply_callbacks: dict[str, Callable[[Event], Any]] = {}
        self._packet_callbacks: dict[int, Callable[[dict[str, Any]], None]] = {}
        self._event_send_queue: list[Event] = []
        self._next_ack = 1  # never reset, even across reconnects (§2.1)
        self._session: SocketIoSession | None = None
        self._last_event_id: str | None = None
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._auto_reconnect_attempts = 30
        self._auto_reconnect_delay = 10.0
        self._init_transport()

    def _init_transport(self) -> None:
        """Set up the transport's own state (called at the end of ``__init__``)."""

    # ------------------------------------------------------------------ addresses

    def get_server_url(self) -> str:
        """``scheme://host[:port]`` of the event server."""
        return f"{self.server.scheme}://{self.get_network_location()}"

    def get_network_location(self) -> str:
        """``host[:port]``."""
        host = self.server.hostname
        if ":" in host:
            host = f"[{host}]"
        return host if self.server.port is None else f"{host}:{self.server.port}"

    @property
    def secure(self) -> bool:
        """Whether the connection uses TLS (scheme ``https``)."""
        return self.server.scheme == "https"

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open (each transport knows its socket)."""
        raise NotImplementedError

    def _run(self, op: Op[Any]) -> Any:
        """Drive an operation: each transport performs the effects its own way."""
        raise NotImplementedError

    @property
    def session(self) -> SocketIoSession | None:
        """The current socket.io session (handshake answer), if any."""
        return self._session

    def init_connection(self) -> None:
        """Mark the hub initialised, so publishes queue until ``connect`` succeeds."""
        self._connection_initialised = True

    # ------------------------------------------------------------------ handshake

    def _handshake_url(self) -> str:
        return f"{self.get_server_url()}/socket.io/1/"

    def _websocket_url(self, sid: str) -> str:
        scheme = "wss" if self.secure else "ws"
        return f"{scheme}://{self.get_network_location()}/socket.io/1/websocket/{sid}"

    def _handshake_headers(self) -> dict[str, str]:
        headers = {"ftrack-user": self._api_user, "ftrack-api-key": self._api_key}
        headers.update(self._headers)
        if self._resume:
            prev = self._session.id if self._session else ""
            headers[RESUME_HEADER] = f"{prev}:{self._last_event_id or ''}" if prev else "new"
        return headers

    def _parse_handshake(self, status: int, body: str) -> SocketIoSession:
        url = self._handshake_url()
        if status != 200:
            raise EventHubConnectionError(
                f"Failed to connect to event server at {url}: status {status}"
            )
        try:
            sid, heartbeat, _, transports = parse_handshake_body(body)
        except PacketError as exc:
            raise EventHubConnectionError(f"bad handshake from {url}: {exc}") from exc
        if "websocket" not in transports:
            raise EventHubConnectionError("Server does not support websocket sessions.")
        return SocketIoSession(sid, heartbeat, transports)

    def _take_ack_id(self) -> int:
        ack_id = self._next_ack
        self._next_ack += 1
        return ack_id

    # ------------------------------------------------------------------ subscribers

    def get_subscriber_by_identifier(self, identifier: str) -> Subscriber | None:
        """The local subscriber with that id, or None."""
        for subscriber in self._subscribers:
            if subscriber.metadata.get("id") == identifier:
                return subscriber
        return None

    def _add_subscriber(
        self,
        subscription: str,
        callback: Callable[[Event], Any] | None,
        metadata: dict[str, Any],
        priority: int,
    ) -> Subscriber:
        metadata.setdefault("id", uuid.uuid4().hex)
        if self.get_subscriber_by_identifier(metadata["id"]) is not None:
            raise NotUniqueError(f"subscriber with identifier {metadata['id']} already exists")
        sub = Subscriber(subscription, callback, metadata, priority)
        self._subscribers.append(sub)
        return sub

    def _ensure_reply_subscriber(self) -> None:
        if self.get_subscriber_by_identifier(self.id) is None:
            self._add_subscriber(f"topic={REPLY_TOPIC}", self._handle_reply, {"id": self.id}, 100)

    def _handle_reply(self, event: Event) -> Any:
        """The reply subscriber's callback: the ``on_reply`` given for the event replied to."""
        callback = self._reply_callbacks.get(event["in_reply_to_event"])
        return None if callback is None else callback(event)

    @staticmethod
    def _subscribe_event(sub: Subscriber) -> Event:
        return Event(
            topic="ftrack.meta.subscribe",
            data={"subscriber": sub.metadata, "subscription": sub.subscription.text},
        )

    @staticmethod
    def _unsubscribe_event(sub: Subscriber) -> Event:
        return Event(topic="ftrack.meta.unsubscribe", data={"subscriber": sub.metadata})

    @staticmethod
    def _on_ack(what: str, response: dict[str, Any]) -> None:
        if response.get("success") is not True:
            log.warning("server refused %s: %s", what, response.get("message", ""))

    # ------------------------------------------------------------------ events

    def _own_source(self) -> dict[str, Any]:
        return {"id": self.id, "user": {"username": self._api_user}, "host": platform.node()}

    def _prepare_event(self, event: Event) -> None:
        source = event["source"]
        if not isinstance(source, dict):
            source = event["source"] = {}
        for key, value in self._own_source().items():
            source.setdefault(key, value)

    @staticmethod
    def _reply_event(source_event: Event, data: Any, source: dict[str, Any] | None) -> Event:
        return Event(
            topic=REPLY_TOPIC,
            data=data,
            source=source,
            target=f"id={source_event['source']['id']}",
            in_reply_to_event=source_event["id"],
        )

    def _accept_received(self, args: list[Any]) -> Event | None:
        """The event a ``5`` packet carries, or None to drop it (bad, or a replayed dup)."""
        if len(args) != 1:
            return None
        try:
            event = decode_wire_event(args[0])
        except EventHubPacketError as exc:
            log.error("Failed to convert payload into event: %s", exc)
            return None
        eid = event["id"]
        if self._resume and isinstance(eid, str):
            if eid in self._seen:
                return None  # replayed twice: at most once
            self._seen[eid] = None
            if len(self._seen) > _SEEN_IDS:
                self._seen.popitem(last=False)
            self._last_event_id = eid
        return event

    def _interested(self, event: Event) -> Iterator[Subscriber]:
        """Local subscribers for ``event``: lowest priority first, target and subscription
        matched (a subscription error propagates, as in ftrack_api)."""
        target = event.get("target")
        expr = None
        if target:
            try:
                expr = compile_expression(target)
            except ExpressionError:
                log.exception("Cannot handle event as failed to parse event target")
                return
        for sub in sorted(self._subscribers, key=lambda s: s.priority):
            if expr is not None and not expr.matches(sub.metadata):
                continue
            if sub.interested_in(event):
                yield sub

    # ------------------------------------------------------------------ operations

    def _connect(self) -> Op[None]:
        """Handshake, open the socket, (re)send every subscription, flush queued publishes.

        Raises:
            EventHubConnectionError: already connected, or connecting failed.
        """
        if self.connected:
            raise EventHubConnectionError("Already connected.")
        self._intentional_disconnect = False
        status, body = yield Handshake(self._handshake_url(), self._handshake_headers())
        session = self._parse_handshake(status, body)
        yield Open(self._websocket_url(session.id))
        self._session = session
        self._connection_initialised = True
        self._ensure_reply_subscriber()
        for sub in list(self._subscribers):
            yield from self._notify_subscribe_op(sub)
        queued, self._event_send_queue = self._event_send_queue, []
        for event in queued:
            yield from self._send_op(event)

    def _disconnect(self, unsubscribe: bool = True, reconnect: bool = False) -> Op[None]:
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
            for sub in list(self._subscribers):
                with contextlib.suppress(NotFoundError):
                    yield from self._unsubscribe(sub.metadata["id"])
        yield Close(final=not reconnect)

    def _reconnect(self, attempts: int = 10, delay: float = 5) -> Op[None]:
        """Disconnect (keeping subscribers) and connect again, up to ``attempts`` times.

        Raises:
            EventHubConnectionError: every attempt failed.
        """
        with contextlib.suppress(EventHubConnectionError):
            yield from self._disconnect(unsubscribe=False, reconnect=True)
        self._connection_initialised = True
        for attempt in range(attempts):
            try:
                yield from self._connect()
                return
            except EventHubConnectionError:
                if attempt + 1 < attempts:
                    yield Sleep(delay)
        raise EventHubConnectionError(f"Failed to reconnect to event server after {attempts}.")

    def _auto_reconnect_op(self) -> Op[None]:
        """After the socket was lost: reconnect, or deliver ``ftrack.meta.disconnected``."""
        log.info("lost the event server; reconnecting")
        try:
            yield from self._reconnect(self._auto_reconnect_attempts, self._auto_reconnect_delay)
        except EventHubConnectionError:
            yield Deliver(Event(topic="ftrack.meta.disconnected", source=self._own_source()))

    def _frame_op(self, proto: SocketIoProtocol, frame: str) -> Op[bool]:
        """Handle one text frame from the server; False when it said disconnect (``0::``).

        Heartbeats are answered, acks run their callback, events are delivered (a bad one
        or a replayed duplicate is dropped), errors logged, malformed packets skipped.
        """
        try:
            items = proto.receive_text(frame)
        except PacketError as exc:
            log.debug("ignored a bad packet: %s", exc)
            return True
        for text in proto.data_to_send():
            with contextlib.suppress(EventHubConnectionError):  # the reader notices the loss
                yield Send(text)
        for item in items:
            if isinstance(item, Disconnected):
                return False
            if isinstance(item, EventReceived):
                event = self._accept_received(item.args)
                if event is not None:
                    yield Deliver(event)
            elif isinstance(item, Ack):
                self._on_packet_ack(item)
            elif isinstance(item, Connected):
                yield Deliver(Event(topic="ftrack.meta.connected", source=self._own_source()))
            elif isinstance(item, ErrorReceived):
                log.error("event server reported an error: %s", item.data)
        return True

    def _on_packet_ack(self, item: Ack) -> None:
        callback = self._packet_callbacks.pop(item.ack_id, None)
        if callback is None:
            return
        payload = item.args[0] if item.args and isinstance(item.args[0], dict) else {}
        try:
            callback(payload)
        except Exception:
            log.exception("ack callback failed")

    def _wait(self, duration: float | None = None) -> Op[None]:
        """Handle received events until ``duration`` seconds pass (forever when None).

        Callbacks run here (coroutine functions are awaited on asyncio), lowest priority
        first. Returns early after handling ``ftrack.meta.disconnected``.

        Raises:
            EventHubConnectionError: the hub is not initialised.
        """
        if not self._connection_initialised and not self.connected:
            raise EventHubConnectionError("Event hub is not connected.")
        end = None if duration is None else time.monotonic() + duration
        while True:
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return
            event = yield Next(left)
            if event is None:
                return
            yield from self._dispatch_op(event)
            if event["topic"] == "ftrack.meta.disconnected":
                return

    def _subscribe(
        self,
        subscription: str,
        callback: Callable[[Event], Any] | None,
        subscriber: dict[str, Any] | None = None,
        priority: int = 100,
    ) -> Op[str]:
        """Register ``callback`` for events matching ``subscription``; returns the id.

        ``subscriber`` (mutated: ``id`` is filled in) is the metadata targets match against.

        Raises:
            NotUniqueError: a subscriber with that id exists.
            ParseError: the subscription does not parse.
        """
        metadata = subscriber if subscriber is not None else {}
        sub = self._add_subscriber(subscription, callback, metadata, priority)
        try:
            yield from self._notify_subscribe_op(sub)
        except EventHubConnectionError:
            log.debug("not connected: the server learns of %s on connect", metadata["id"])
        return str(metadata["id"])

    def _notify_subscribe_op(self, sub: Subscriber) -> Op[None]:
        event = self._subscribe_event(sub)
        yield from self._send_op(event, callback=lambda r: self._on_ack("subscribe", r))

    def _unsubscribe(self, subscriber_identifier: str) -> Op[None]:
        """Remove a subscriber locally and tell the server if connected.

        Raises:
            NotFoundError: no subscriber has that id.
        """
        sub = self.get_subscriber_by_identifier(subscriber_identifier)
        if sub is None:
            raise NotFoundError(f"cannot unsubscribe missing subscriber {subscriber_identifier}")
        self._subscribers.remove(sub)
        event = self._unsubscribe_event(sub)
        try:
            yield from self._send_op(event, callback=lambda r: self._on_ack("unsubscribe", r))
        except EventHubConnectionError:
            log.debug("not connected: unsubscribe of %s not sent", subscriber_identifier)

    def _publish(
        self,
        event: Event,
        synchronous: bool = False,
        on_reply: Callable[[Event], Any] | None = None,
        on_error: str = "raise",
    ) -> Op[Any]:
        """Publish ``event`` (its ``source`` is filled in).

        Returns:
            the list of local callback results when ``synchronous`` (nothing is sent);
            True when queued while initialised but offline; None when sent.

        Raises:
            EventHubConnectionError: not connected nor initialised (unless
                ``on_error="ignore"``).
        """
        try:
            return (yield from self._send_op(event, synchronous, on_reply=on_reply))
        except EventHubConnectionError:
            if on_error == "ignore":
                return None
            raise

    def _publish_reply(
        self, source_event: Event, data: Any, source: dict[str, Any] | None = None
    ) -> Op[Any]:
        """Publish a ``ftrack.meta.reply`` targeted at the publisher of ``source_event``."""
        return (yield from self._publish(self._reply_event(source_event, data, source)))

    def _send_op(
        self,
        event: Event,
        synchronous: bool = False,
        callback: Callable[[dict[str, Any]], None] | None = None,
        on_reply: Callable[[Event], Any] | None = None,
    ) -> Op[Any]:
        self._prepare_event(event)
        if synchronous:
            return (yield from self._dispatch_op(event, synchronous=True))
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
            yield Send(encode_event(EVENT_NAME, [encode_wire_event(event)], ack_id))
        except EventHubConnectionError:
            self._packet_callbacks.pop(ack_id, None)
            log.error("Error sending event %s", event["id"])
            raise
        return None

    def _dispatch_op(self, event: Event, synchronous: bool = False) -> Op[list[Any]]:
        """Run the interested local callbacks, lowest priority first, until one stops the
        event; a callback's non-None result is published as a reply (unless
        ``synchronous``). A failing callback is logged and the others still run."""
        results: list[Any] = []
        for sub in self._interested(event):
            try:
                response = yield Call(sub.callback, event)  # type: ignore[arg-type]
            except Exception:
                log.exception("error calling subscriber %s for event %s", sub, event["id"])
            else:
                if sub.metadata.get("id") == self.id:
                    response = None  # the reply subscriber: on_reply's result is not a reply
                results.append(response)
                if not synchronous and response is not None:
                    reply = self._reply_event(event, response, sub.metadata)
                    try:
                        yield from self._send_op(reply)
                    except Exception:
                        log.exception("error publishing reply to %s", event["id"])
            if event.is_stopped():
                break
        return results
