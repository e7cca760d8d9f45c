"""Wait for a server event through the event hub instead of polling REST."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from vidhub.client import Event
from vidhub.client.eventhub_async import AsyncEventHub

__all__ = ["watch_hub"]

_BARRIER = "vidhub.test.barrier"


@contextlib.asynccontextmanager
async def watch_hub(server_url: str, secret: str, expression: str) -> AsyncIterator[asyncio.Event]:
    """Yield an :class:`asyncio.Event` set when an event matching ``expression`` arrives.

    The subscription is known to the server before this yields: a barrier event published
    on the same connection comes back only after the server has handled the subscribe
    (one connection's frames are handled in order, and a publisher receives its own events).
    """
    seen = asyncio.Event()
    ready = asyncio.Event()

    def on_event(event: Event) -> None:
        (ready if event["topic"] == _BARRIER else seen).set()

    hub = AsyncEventHub(server_url, "test-watcher", secret)
    await hub.connect()
    dispatch = asyncio.create_task(hub.wait())
    try:
        await hub.subscribe(f"({expression}) or topic={_BARRIER}", on_event)
        await hub.publish(Event(topic=_BARRIER, data={}))
        await asyncio.wait_for(ready.wait(), 10)
        yield seen
    finally:
        dispatch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await dispatch
        await hub.close()
