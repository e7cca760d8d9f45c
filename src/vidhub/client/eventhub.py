"""``EventHub``: a thread-based client with the public API of ``ftrack_api.event.hub.EventHub``.

Theory of operation (eventhub.md §1-§3, §7). ``connect()`` does the socket.io 0.9 handshake
with ``requests``, opens the WebSocket with ``websocket-client`` and starts a reader thread.
The reader answers heartbeats, runs ack callbacks and queues received events; callbacks run
only in the thread that calls :meth:`EventHub.wait` (or in :meth:`EventHub.publish` with
``synchronous=True``), lowest priority first, until one calls ``event.stop()``.

Every rule is written once in :mod:`vidhub.client.eventhub_core` (shared with the asyncio
client); this module performs its effects with threads and blocking sockets.

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
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import requests
import websocket

from vidhub.client import eventhub_effects as fx
from vidhub.client.eventhub_core import RESUME_HEADER, HubCore
from vidhub.client.eventhub_types import (
    Event,
    EventHubConnectionError,
    NotFoundError,
    ServerDetails,
    SocketIoSession,
)
from vidhub.client.transport import named_after
from vidhub.protocol.socketio09 import SocketIoProtocol

__all__ = ["RESUME_HEADER", "EventHub", "ServerDetails", "SocketIoSession"]

log = logging.getLogger("vidhub.client.EventHub")
T = TypeVar("T")
P = ParamSpec("P")


class _Runs(Protocol):
    def _run(self, op: fx.Op[T]) -> T: ...


R = TypeVar("R", bound=_Runs)


def _blocking(op: Callable[Concatenate[R, P], fx.Op[T]]) -> Callable[Concatenate[R, P], T]:
    """The public method that runs the operation ``op`` with this transport."""

    def method(self: R, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(op(self, *args, **kwargs))

    return named_after(op, method)


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

    def _init_transport(self) -> None:
        self._connection: websocket.WebSocket | None = None
        self._event_queue: queue.Queue[Event] = queue.Queue()
        self._send_lock = threading.RLock()
        self._reader: threading.Thread | None = None

    # ------------------------------------------------------------------ public API

    @property
    def connected(self) -> bool:
        """Whether the WebSocket is open."""
        conn = self._connection
        return conn is not None and bool(conn.connected)

    connect = _blocking(HubCore._connect)
    disconnect = _blocking(HubCore._disconnect)
    reconnect = _blocking(HubCore._reconnect)
    wait = _blocking(HubCore._wait)
    subscribe = _blocking(HubCore._subscribe)
    unsubscribe = _blocking(HubCore._unsubscribe)
    publish = _blocking(HubCore._publish)
    publish_reply = _blocking(HubCore._publish_reply)

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

    # ------------------------------------------------------------------ transport

    def _run(self, op: fx.Op[T]) -> T:
        """Drive an operation: perform each effect it yields, throw back what fails."""
        try:
            effect = next(op)
            while True:
                try:
                    result = self._perform(effect)
                except Exception as exc:  # handed to the operation, which decides
                    effect = op.throw(exc)
                else:
                    effect = op.send(result)
        except StopIteration as done:
            return cast(T, done.value)

    def _perform(self, effect: fx.Effect) -> Any:
        if isinstance(effect, fx.Send):
            return self._send_frame(effect.text)
        if isinstance(effect, fx.Call):
            return effect.callback(effect.event)
        if isinstance(effect, fx.Deliver):
            return self._event_queue.put(effect.event)
        if isinstance(effect, fx.Next):
            try:
                return self._event_queue.get(timeout=effect.timeout)
            except queue.Empty:
                return None
        if isinstance(effect, fx.Sleep):
            return time.sleep(effect.seconds)
        if isinstance(effect, fx.Handshake):
            return self._handshake(effect)
        if isinstance(effect, fx.Open):
            return self._open(effect.url)
        if isinstance(effect, fx.Close):
            return self._close()
        raise TypeError(f"unknown effect {effect!r}")

    def _handshake(self, effect: fx.Handshake) -> tuple[int, str]:
        try:
            resp = requests.get(
                effect.url, headers=effect.headers, cookies=self._cookies, timeout=60
            )
        except requests.RequestException as exc:
            raise EventHubConnectionError(
                f"Failed to connect to event server at {effect.url}"
            ) from exc
        return resp.status_code, resp.text

    def _open(self, url: str) -> None:
        cookie = ";".join(f"{k}={v}" for k, v in self._cookies.items()) or None
        try:
            conn = websocket.create_connection(
                url, timeout=60, header=self._headers, cookie=cookie, enable_multithread=True
            )
        except Exception as exc:  # websocket-client raises many unrelated types here
            raise EventHubConnectionError(f"Failed to connect to event server at {url}") from exc
        self._connection = conn
        self._reader = threading.Thread(
            target=self._read_loop, args=(conn,), name="vidhub-eventhub-reader", daemon=True
        )
        self._reader.start()

    def _close(self) -> None:
        conn, self._connection = self._connection, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close(timeout=3)
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(4)

    def _send_frame(self, text: str) -> None:
        conn = self._connection
        if conn is None:
            raise EventHubConnectionError("Not connected.")
        try:
            with self._send_lock:
                conn.send(text)
        except (OSError, websocket.WebSocketException) as exc:
            raise EventHubConnectionError(f"send failed: {exc}") from exc

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
                break
            if isinstance(frame, bytes):
                log.debug("ignored a binary frame")
                continue
            if not self._run(self._frame_op(proto, frame)):
                break
        self._connection_lost(conn)

    def _connection_lost(self, conn: websocket.WebSocket) -> None:
        if self._intentional_disconnect or self._connection is not conn:
            return
        self._connection = None
        closing: Any = conn  # mypy narrows conn to Optional after the identity test
        with contextlib.suppress(Exception):
            closing.close(timeout=1)
        self._run(self._auto_reconnect_op())
