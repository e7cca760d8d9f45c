"""Door limits: the counters of every limit hit, caps on open sockets, per-socket rate
limits and the event-loop lag that drives overload shedding.

One :class:`LimitCounters` per app (``app[LIMITS]``) counts every time a limit refused or
closed something, by name (``tcp_refused``, ``header_timeout``, ``ws_refused``, ``shed``, ...);
``snapshot()`` is what ``/metrics`` exposes. A hit is logged at most once per
``log_interval_s`` per name, with the number of hits since the last line, so a flood costs
one log line per interval, never one per event. Log lines carry only what the server chose
to write (a name, an address, a number), never a header value or a request body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aiohttp import web

__all__ = [
    "LIMITS",
    "LOOP_LAG",
    "WS_CAPS",
    "LimitCounters",
    "LoopLag",
    "SocketCaps",
    "TokenBucket",
    "setup_limits",
]

log = logging.getLogger("vidhub.limits")


class LimitCounters:
    """Monotonic counters of limit hits, logged once per interval per name.

    Args:
        log_interval_s: at most one log line per counter name in this many seconds.
        clock: monotonic seconds (tests inject one).
    """

    def __init__(
        self, log_interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.log_interval_s = log_interval_s
        self._clock = clock
        self._counts: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}
        self._last_logged: dict[str, float] = {}
        self._gauges: dict[str, Callable[[], float]] = {}

    def hit(self, name: str, detail: str = "") -> None:
        """Count one hit of limit ``name``; log it unless this name was logged recently.

        ``detail`` must be text the server composed (an address, a limit), never client data.
        """
        self._counts[name] = self._counts.get(name, 0) + 1
        self._unlogged[name] = self._unlogged.get(name, 0) + 1
        now = self._clock()
        last = self._last_logged.get(name)
        if last is not None and now - last < self.log_interval_s:
            return
        n = self._unlogged.pop(name)
        self._last_logged[name] = now
        suffix = f" ({detail})" if detail else ""
        if last is None:
            log.warning("limit %s hit%s", name, suffix)
        else:
            log.warning("limit %s hit %d times in the last %.0f s%s", name, n, now - last, suffix)

    def count(self, name: str) -> int:
        """Hits of ``name`` so far."""
        return self._counts.get(name, 0)

    def gauge(self, name: str, read: Callable[[], float]) -> None:
        """Register a current value (open sockets, loop lag) read at snapshot time."""
        self._gauges[name] = read

    def counts(self) -> dict[str, int]:
        """Every counter by name."""
        return dict(self._counts)

    def gauges(self) -> dict[str, float]:
        """Every gauge's current value by name."""
        return {name: read() for name, read in self._gauges.items()}

    def snapshot(self) -> dict[str, float]:
        """Every counter and gauge, by name (what ``/metrics`` shows)."""
        out: dict[str, float] = dict(self._counts)
        for name, read in self._gauges.items():
            out[name] = read()
        return out


@dataclass
class SocketCaps:
    """Caps on open sockets, per client address and in total; 0 disables a cap."""

    max_total: int
    max_per_ip: int
    total: int = 0
    per_ip: dict[str, int] = field(default_factory=dict)

    def acquire(self, ip: str) -> str | None:
        """Take a slot for a socket from ``ip``; ``None`` when granted, else the reason."""
        if self.max_total and self.total >= self.max_total:
            return f"server socket limit {self.max_total} reached"
        held = self.per_ip.get(ip, 0)
        if self.max_per_ip and held >= self.max_per_ip:
            return f"per-address socket limit {self.max_per_ip} reached"
        self.total += 1
        self.per_ip[ip] = held + 1
        return None

    def release(self, ip: str) -> None:
        """Give back the slot taken by a successful :meth:`acquire`."""
        self.total -= 1
        held = self.per_ip.get(ip, 0) - 1
        if held > 0:
            self.per_ip[ip] = held
        else:
            self.per_ip.pop(ip, None)


class TokenBucket:
    """``rate`` messages per second on average, bursts up to ``burst``; pure (time passed in)."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; False means over the rate (refuse the message)."""
        if self.rate <= 0:
            return True
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class LoopLag:
    """How late the event loop runs timers: the overload signal for shedding.

    A task sleeps ``interval_s`` over and over; each wake-up's delay is the time a ready
    callback (a request that just arrived) waited for the loop. ``lag_s`` is a moving
    average over about the last ``1 / alpha`` samples, so sustained overload raises it
    while a single stall (a garbage collection, a slow disk write) barely moves it.
    """

    def __init__(self, interval_s: float = 0.01, alpha: float = 0.2) -> None:
        self.interval_s = interval_s
        self.alpha = alpha
        self.lag_s = 0.0
        self.max_lag_s = 0.0

    def sample(self, delay_s: float) -> None:
        """Record one wake-up delay."""
        delay_s = max(0.0, delay_s)
        self.lag_s += self.alpha * (delay_s - self.lag_s)
        self.max_lag_s = max(self.max_lag_s, delay_s)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self.interval_s)
            self.sample(loop.time() - start - self.interval_s)


#: The app's limit counters (``/metrics`` reads ``app[LIMITS].snapshot()``).
LIMITS = web.AppKey("limits", LimitCounters)
#: The app's loop-lag monitor.
LOOP_LAG = web.AppKey("loop_lag", LoopLag)
#: Open-WebSocket caps shared by signalling and the event hub.
WS_CAPS = web.AppKey("ws_caps", SocketCaps)


def setup_limits(
    app: web.Application, limits: LimitCounters, lag: LoopLag, ws_caps: SocketCaps
) -> None:
    """Set ``app[LIMITS]``, ``app[LOOP_LAG]`` and ``app[WS_CAPS]``, publish them in
    ``/metrics`` (``vidhub_limit_hits_total{limit=...}``, ``vidhub_door{gauge=...}``) and run
    the lag monitor. Needs ``app[MANAGER]`` (the stats source reads it)."""
    from vidhub.server.stats import stats_source

    app[LIMITS] = limits
    app[LOOP_LAG] = lag
    app[WS_CAPS] = ws_caps
    limits.gauge("websockets", lambda: float(ws_caps.total))
    limits.gauge("asyncio_tasks", lambda: float(len(asyncio.all_tasks())))
    stats = stats_source(app)
    stats.add_metric(
        "vidhub_limit_hits_total",
        "Times a door limit refused, closed or shed something, by limit",
        limits.counts,
        label="limit",
    )
    stats.add_metric(
        "vidhub_door",
        "Door gauges: open TCP connections and WebSockets, event-loop lag in ms, asyncio tasks",
        limits.gauges,
        kind="gauge",
        label="gauge",
    )
    limits.gauge("loop_lag_ms", lambda: round(lag.lag_s * 1000.0, 3))

    async def lag_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(lag.run())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(lag_ctx)
