"""In-process broker engine: for a single node, and for tests that simulate several.

Brokers built on one :class:`MemoryBus` behave like nodes attached to one Redis: ``publish``
queues the payload for every broker subscribed to the channel, and each broker delivers its
queue from its own task, in order, so a handler never runs inside the publisher's call (as
with Redis, delivery is asynchronous).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from vidhub.broker.base import Broker, Handler, Unsubscribe

__all__ = ["MemoryBroker", "MemoryBus"]

log = logging.getLogger(__name__)


class MemoryBus:
    """What several :class:`MemoryBroker` share: which broker listens on which channel."""

    def __init__(self) -> None:
        self.listeners: dict[str, set[MemoryBroker]] = {}


class MemoryBroker(Broker):
    """A broker whose bus is a :class:`MemoryBus` (a private one unless given)."""

    def __init__(self, bus: MemoryBus | None = None) -> None:
        self._bus = bus or MemoryBus()
        self._handlers: dict[str, list[Handler]] = {}
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._deliver(), name="memory-broker")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for channel in list(self._handlers):
            self._drop(channel)
        self._handlers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def publish(self, channel: str, payload: bytes) -> int:
        receivers = list(self._bus.listeners.get(channel, ()))
        for broker in receivers:
            broker._queue.put_nowait((channel, payload))
        return len(receivers)

    async def subscribe(self, channel: str, handler: Handler) -> Unsubscribe:
        if self._closed:
            raise RuntimeError("broker is closed")
        self._handlers.setdefault(channel, []).append(handler)
        self._bus.listeners.setdefault(channel, set()).add(self)

        async def unsubscribe() -> None:
            handlers = self._handlers.get(channel)
            if handlers is None or handler not in handlers:
                return
            handlers.remove(handler)
            if not handlers:
                del self._handlers[channel]
                self._drop(channel)

        return unsubscribe

    def _drop(self, channel: str) -> None:
        listeners = self._bus.listeners.get(channel)
        if listeners is not None:
            listeners.discard(self)
            if not listeners:
                del self._bus.listeners[channel]

    async def _deliver(self) -> None:
        while True:
            channel, payload = await self._queue.get()
            for handler in list(self._handlers.get(channel, ())):
                try:
                    await handler(payload)
                except Exception:
                    log.exception("broker handler %r failed on channel %s", handler, channel)
