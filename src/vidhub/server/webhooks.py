"""OpenVidu webhooks (openvidu.md §4.1): POST each lifecycle event to the configured endpoint.

Theory of operation: :class:`WebhookSender` listens on the :class:`~vidhub.core.events.EventBus`.
The listener only filters (``OPENVIDU_WEBHOOK_EVENTS``), encodes the body once and appends it to
a bounded queue per endpoint, so nothing slow ever runs on a request path. One worker per
endpoint delivers serially, so the receiver sees events in the order they happened.

Each delivery is ``POST <endpoint>`` with the body ``event.to_webhook_json()`` (the OpenVidu
fields, then ``"event"``), ``Content-Type: application/json`` unless a custom header sets it,
the custom ``OPENVIDU_WEBHOOK_HEADERS``, and the ``X-Vidhub-Timestamp``/``X-Vidhub-Signature``
headers of :mod:`vidhub.protocol.webhook` (signed with ``VIDHUB_WEBHOOK_SIGNING_KEY``, by
default the server secret; re-signed on every attempt).

Outcomes: a 2xx is delivered. A connection error, a timeout (10 s to connect, 10 s between
reads) or a 5xx is retried with exponential backoff, up to ``max_attempts`` in all, then
dropped and logged. Any other status (3xx, 4xx) is logged and dropped: the receiver said no.
When the queue is full the oldest event is dropped, with a warning and a counter. On shutdown
the workers get ``drain_s`` to empty their queues and are then cancelled.

Custom headers may carry credentials, so they are never logged; the endpoint is logged without
user info or query.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from aiohttp import web

from vidhub.core.events import ServerEvent
from vidhub.protocol import jsoncodec
from vidhub.protocol.webhook import signature_headers
from vidhub.server.keys import CLOCK, CONFIG, EVENTS

__all__ = ["WEBHOOKS", "WebhookSender", "WebhookStats", "setup_webhooks"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class WebhookStats:
    """Counters of one endpoint (monotonic; for logs, tests and metrics)."""

    queued: int = 0
    delivered: int = 0
    retried: int = 0
    #: given up after the last attempt, or refused with a non-2xx, non-5xx status
    failed: int = 0
    #: dropped because the queue was full
    dropped: int = 0


def _loggable(url: str) -> str:
    """The URL without user info or query, which may hold credentials."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


class _Endpoint:
    """One endpoint: a bounded queue of encoded bodies and the serial worker that sends them."""

    def __init__(self, url: str, queue_size: int) -> None:
        self.url = url
        self.name = _loggable(url)
        self.queue: collections.deque[bytes] = collections.deque()
        self.queue_size = queue_size
        self.wake = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()
        self.stats = WebhookStats()
        self.task: asyncio.Task[None] | None = None
        #: the event being delivered (or waiting for its retry), if any
        self.in_flight = False

    def push(self, body: bytes) -> None:
        if len(self.queue) >= self.queue_size:
            self.queue.popleft()
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 100 == 0:
                log.warning(
                    "webhook queue for %s is full (%d): dropped the oldest event (%d dropped)",
                    self.name,
                    self.queue_size,
                    self.stats.dropped,
                )
        self.queue.append(body)
        self.stats.queued += 1
        self.idle.clear()
        self.wake.set()


class WebhookSender:
    """Queues lifecycle events and POSTs them to each endpoint in order.

    Args:
        endpoints: the URLs to deliver to (OpenVidu has one).
        headers: extra ``(name, value)`` request headers.
        events: the event names to deliver; others are ignored.
        signing_key: HMAC key for the signature headers.
        queue_size: events kept per endpoint before the oldest is dropped.
        max_attempts: attempts per event, the first included.
        backoff_s: delay before the first retry; doubles each time, capped at ``max_backoff_s``.
        timeout_s: connect timeout, and the longest wait between reads of a response.
        drain_s: how long shutdown waits for queued events before cancelling.
        now_s: Unix time in seconds, for the signature timestamp.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        headers: Iterable[tuple[str, str]] = (),
        events: Iterable[str],
        signing_key: str,
        queue_size: int = 1000,
        max_attempts: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        timeout_s: float = 10.0,
        drain_s: float = 2.0,
        now_s: Callable[[], float] = time.time,
    ) -> None:
        if queue_size < 1 or max_attempts < 1:
            raise ValueError("queue_size and max_attempts must be at least 1")
        self._endpoints = [_Endpoint(u, queue_size) for u in endpoints]
        self._headers = tuple(headers)
        self._has_content_type = any(k.lower() == "content-type" for k, _ in self._headers)
        self._events = frozenset(events)
        self._key = signing_key
        #: Retry policy and shutdown grace; may be tuned before :meth:`start`.
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.drain_s = drain_s
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeout_s, sock_read=timeout_s
        )
        self._now_s = now_s
        self._session: aiohttp.ClientSession | None = None
        self._accepting = True

    # -- the EventBus side: never blocks -------------------------------------------------------

    def on_event(self, event: ServerEvent) -> None:
        """EventBus listener: queue ``event`` for every endpoint if it is a selected one."""
        if not self._accepting or event.name not in self._events:
            return
        body = jsoncodec.dumps_bytes(event.to_webhook_json())
        for ep in self._endpoints:
            ep.push(body)

    def stats(self) -> dict[str, WebhookStats]:
        """Counters per endpoint, keyed by the loggable endpoint URL."""
        return {ep.name: ep.stats for ep in self._endpoints}

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP client and start one worker per endpoint."""
        self._session = aiohttp.ClientSession(timeout=self._timeout, trust_env=False)
        for ep in self._endpoints:
            ep.task = asyncio.create_task(self._worker(ep), name=f"webhook {ep.name}")

    async def stop(self) -> None:
        """Stop accepting events, give queued ones ``drain_s`` to go out, then cancel."""
        self._accepting = False
        waits = [ep.idle.wait() for ep in self._endpoints if ep.task is not None]
        if waits:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), self.drain_s)
        for ep in self._endpoints:
            if ep.task is not None:
                ep.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ep.task
                ep.task = None
            lost = len(ep.queue) + int(ep.in_flight)
            if lost:
                log.warning("shutting down with %d webhook events undelivered to %s", lost, ep.name)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- delivery ----------------------------------------------------------------------------------

    async def _worker(self, ep: _Endpoint) -> None:
        while True:
            if not ep.queue:
                ep.idle.set()
                ep.wake.clear()
                await ep.wake.wait()
                continue
            body = ep.queue.popleft()
            ep.in_flight = True
            try:
                await self._deliver(ep, body)
            except asyncio.CancelledError:
                raise
            except Exception:
                # a bug here must not stop later events (STYLE #7)
                ep.stats.failed += 1
                log.exception("webhook delivery to %s failed unexpectedly", ep.name)
            ep.in_flight = False

    def _request_headers(self, body: bytes) -> dict[str, str]:
        headers = {} if self._has_content_type else {"Content-Type": "application/json"}
        headers.update(self._headers)
        headers.update(signature_headers(self._key, int(self._now_s()), body))
        return headers

    async def _deliver(self, ep: _Endpoint, body: bytes) -> None:
        session = self._session
        assert session is not None, "start() first"
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with session.post(
                    ep.url, data=body, headers=self._request_headers(body), allow_redirects=False
                ) as resp:
                    status = resp.status
                    await resp.read()
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                why = f"{type(exc).__name__}"
            else:
                if 200 <= status < 300:
                    ep.stats.delivered += 1
                    return
                if status < 500:
                    ep.stats.failed += 1
                    log.warning("webhook %s answered %d; event dropped", ep.name, status)
                    return
                why = f"HTTP {status}"
            if attempt == self.max_attempts:
                ep.stats.failed += 1
                log.error(
                    "webhook %s failed %d times (last: %s); event dropped",
                    ep.name,
                    attempt,
                    why,
                )
                return
            delay = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
            ep.stats.retried += 1
            log.info("webhook %s: %s; retry %d in %.1fs", ep.name, why, attempt, delay)
            await asyncio.sleep(delay)


#: The webhook sender, when webhooks are enabled.
WEBHOOKS = web.AppKey("webhooks", WebhookSender)


def setup_webhooks(app: web.Application) -> None:
    """Deliver lifecycle events to ``OPENVIDU_WEBHOOK_ENDPOINT`` when ``OPENVIDU_WEBHOOK`` is on.

    Subscribes at once, so events emitted while the app starts are queued too; the worker
    starts and stops with the app (``cleanup_ctx``).
    """
    cfg, clock = app[CONFIG], app[CLOCK]
    if not cfg.webhook.enabled:
        return
    sender = WebhookSender(
        [cfg.webhook.endpoint],
        headers=cfg.webhook.headers,
        events=cfg.webhook.events,
        signing_key=cfg.webhook.signing_key or cfg.secret,
        now_s=lambda: clock.now_ms() / 1000,
    )
    app[WEBHOOKS] = sender
    remove = app[EVENTS].subscribe(sender.on_event)

    async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
        await sender.start()
        yield
        remove()
        await sender.stop()

    app.cleanup_ctx.append(webhooks_ctx)
