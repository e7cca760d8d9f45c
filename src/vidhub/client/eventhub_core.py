"""What the thread and asyncio EventHub clients share: addresses, local subscribers, event
preparation, dispatch order, handshake parsing and the resume bookkeeping. No I/O here."""

from __future__ import annotations

import logging
import platform
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlparse

from vidhub.client.eventhub_types import (
    Event,
    EventHubConnectionError,
    EventHubPacketError,
    NotUniqueError,
    ServerDetails,
    SocketIoSession,
    Subscriber,
    decode_wire_event,
)
from vidhub.protocol.expression import ExpressionError, compile_expression
from vidhub.protocol.socketio09 import PacketError, parse_handshake_body

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

    def _ensure_reply_subscriber(self, callback: Callable[[Event], Any]) -> None:
        if self.get_subscriber_by_identifier(self.id) is None:
            self._add_subscriber(f"topic={REPLY_TOPIC}", callback, {"id": self.id}, 100)

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
