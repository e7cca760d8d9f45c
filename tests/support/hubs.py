"""Waiting on event hub clients (ours, sync or asyncio, and ftrack_api's) without sleeps.

A hub handles events only inside ``wait``; these helpers let each hub wait in short slices
until a condition holds or a deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from tests.support.proc import MS

__all__ = ["DEADLINE", "acked", "apump", "pump"]

#: How long a hub test waits for a condition (scaled by VIDHUB_TEST_TIME_SCALE).
DEADLINE = 5000 * MS
_SLICE_S = 0.02


def pump(hubs: Sequence[Any], cond: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Let each (thread-based) hub handle events until ``cond()`` holds; False at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        for hub in hubs:
            hub.wait(_SLICE_S)
    return cond()


async def apump(hubs: Sequence[Any], cond: Callable[[], bool], limit_s: float = DEADLINE) -> bool:
    """:func:`pump` for :class:`~vidhub.client.eventhub_async.AsyncEventHub`."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit_s
    while loop.time() < end:
        if cond():
            return True
        for hub in hubs:
            await hub.wait(_SLICE_S)
    return cond()


def acked(*hubs: Any) -> Callable[[], bool]:
    """Every packet these hubs sent has been acked: the server has processed them in order."""
    return lambda: all(not hub._packet_callbacks for hub in hubs)
