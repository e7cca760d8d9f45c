"""The one stats source behind the operator dashboard and ``GET /metrics``.

Theory of operation. :meth:`StatsSource.collect` takes one :class:`Snapshot`: the sessions and
connections as REST sees them (from the SessionManager), the counters of every media leg of
this node's live rooms (through each router's ``stats()``, so it works wherever the router
runs), the process's CPU time and memory, the open sockets, and every registered metric.
``/metrics`` renders a fresh snapshot; the sampler (:meth:`StatsSource.run`) takes one every
:data:`SAMPLE_INTERVAL_S` and turns consecutive ones into per-stream rates (bitrate, packet
loss, round-trip time, frames per second) and server figures, keeping the last
:data:`HISTORY_POINTS` of each for the dashboard's plots. While nobody watches (no dashboard
open) the sampler skips the session listing, the only part whose cost grows with the number
of sessions, so the plots keep their history at a cost that depends only on live media.

Other features add their own figures with :meth:`StatsSource.add_metric` (a name, a help line
and a function read at each collection); they then appear in ``/metrics`` and in the
dashboard's list of counters. ``stats_source(app)`` gives the app's source, creating it on
first use, so features may register in any order.

Forwarded-packet totals are monotonic: a leg that closes between two collections has its last
seen counters carried into a retired total (what it forwarded after the last collection is
not counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web

from vidhub.manager import SessionManager, SessionView
from vidhub.sfu.stats import RouterStats

__all__ = [
    "HISTORY_POINTS",
    "SAMPLE_INTERVAL_S",
    "STATS",
    "LegCounters",
    "Metric",
    "MetricReader",
    "Snapshot",
    "StatsSource",
    "StreamPoint",
    "stats_source",
]

log = logging.getLogger(__name__)

#: Seconds between two samples of the dashboard's plots.
SAMPLE_INTERVAL_S = 1.0
#: Samples kept per series: five minutes at one per second.
HISTORY_POINTS = 300

MetricKind = Literal["counter", "gauge"]
#: Read at each collection: one value, or values by the metric's label.
MetricReader = Callable[[], float | Mapping[str, float]]


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric family as rendered in ``/metrics``: ``samples`` are (labels, value)."""

    name: str
    help: str
    kind: MetricKind
    samples: tuple[tuple[tuple[tuple[str, str], ...], float], ...]


@dataclass(frozen=True, slots=True)
class LegCounters:
    """Cumulative counters of one media leg, as its router reported them.

    ``direction`` is ``in`` for a publisher's stream (producer) and ``out`` for one
    subscription (consumer); ``connection_id`` is the publisher, respectively the subscriber.
    """

    session_id: str
    leg_id: str
    stream_id: str
    connection_id: str
    direction: Literal["in", "out"]
    packets: int
    bytes: int
    packets_lost: int = 0
    frames: int = 0
    rtt_ms: float | None = None


@dataclass(frozen=True, slots=True)
class StreamPoint:
    """One plotted sample of a leg: rates over the last interval."""

    t_ms: int
    bitrate_kbps: float
    loss_pct: float
    rtt_ms: float | None
    fps: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the dashboard and ``/metrics`` show, taken at one moment."""

    monotonic_s: float
    wall_ms: int
    sessions: list[SessionView]
    legs: list[LegCounters]
    cpu_s: float
    rss_bytes: int
    sockets: dict[str, int]
    metrics: list[Metric] = field(default_factory=list)


#: Session id -> that session's router stats, or None when it has no live room here.
MediaStats = Callable[[str], RouterStats | None]


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        # no /proc: the peak is the best we have
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _legs(session_id: str, stats: RouterStats) -> list[LegCounters]:
    out = []
    for p in stats.producers:
        stream = p.producer_id
        out.append(
            LegCounters(
                session_id,
                stream,
                stream,
                _publisher_of(stream),
                "in",
                p.packets_in,
                p.bytes_in,
                packets_lost=p.packets_lost,
                frames=p.frames_in,
            )
        )
    for c in stats.consumers:
        leg = c.consumer_id
        stream = c.producer_id
        out.append(
            LegCounters(
                session_id,
                leg,
                stream,
                leg.removesuffix("_" + stream),  # the subscriber's connection id
                "out",
                c.packets_out,
                c.bytes_out,
                rtt_ms=c.rtt_ms,
            )
        )
    return out


def _publisher_of(stream_id: str) -> str:
    """The publisher's connection id: a stream id ends with it (``str_CAM_x_con_...``)."""
    at = stream_id.rfind("con_")
    return stream_id[at:] if at >= 0 else ""


class StatsSource:
    """Collects snapshots, keeps the plotted history and renders ``/metrics``.

    Args:
        manager: where sessions and connections come from (the same view as REST).
        media: the live router stats of a session (None: no media here).
        live_sessions: the sessions with a live room (media) on this node.
    """

    def __init__(
        self,
        manager: SessionManager,
        media: MediaStats | None = None,
        live_sessions: Callable[[], Iterable[str]] | None = None,
    ) -> None:
        self.manager = manager
        self.media: MediaStats = media or (lambda _sid: None)
        self.live_sessions: Callable[[], Iterable[str]] = live_sessions or (lambda: ())
        #: How many are watching the figures (open dashboards); 0 lets the sampler skip the
        #: session listing.
        self.watchers: Callable[[], int] = lambda: 0
        self._metrics: dict[str, tuple[str, MetricKind, str | None, MetricReader]] = {}
        self._sockets: dict[str, Callable[[], int]] = {}
        self._last_legs: dict[str, LegCounters] = {}
        self._retired = {"in": [0, 0], "out": [0, 0]}  # direction -> [packets, bytes]
        self._prev: Snapshot | None = None
        self.latest: Snapshot | None = None
        #: leg id -> recent points; the server's own series under ``server``.
        self.streams: dict[str, deque[StreamPoint]] = {}
        self.server: deque[tuple[int, float, float, int]] = deque(maxlen=HISTORY_POINTS)
        #: Called after each sample (the dashboard pushes it to its sockets).
        self.listeners: list[Callable[[Snapshot], None]] = []

    # -- registration -----------------------------------------------------------------

    def add_metric(
        self,
        name: str,
        help: str,
        read: MetricReader,
        *,
        kind: MetricKind = "counter",
        label: str | None = None,
    ) -> None:
        """Publish one more metric: ``read()`` gives its value (or values by ``label``).

        Counter names should end in ``_total``. A reader that raises is logged and skipped;
        it never breaks ``/metrics``.
        """
        self._metrics[name] = (help, kind, label, read)

    def add_sockets(self, kind: str, count: Callable[[], int]) -> None:
        """Count open sockets of ``kind`` (signalling, hub, dashboard) in the figures."""
        self._sockets[kind] = count

    # -- collection -------------------------------------------------------------------

    async def collect(self, *, sessions: bool = True) -> Snapshot:
        """One snapshot of everything, now; ``sessions=False`` leaves out the session list
        (and the metrics, which need it)."""
        views = await self.manager.list_sessions() if sessions else []
        legs: list[LegCounters] = []
        for sid in self.live_sessions():
            try:
                stats = self.media(sid)
            except Exception:  # one broken router must not hide the others
                log.exception("stats of session %s failed", sid)
                continue
            if stats is not None:
                legs.extend(_legs(sid, stats))
        self._retire(legs)
        sockets = {}
        for kind, count in self._sockets.items():
            try:
                sockets[kind] = count()
            except Exception:
                log.exception("socket count %s failed", kind)
        snap = Snapshot(
            monotonic_s=time.monotonic(),
            wall_ms=time.time_ns() // 1_000_000,
            sessions=views,
            legs=legs,
            cpu_s=_cpu_s(),
            rss_bytes=_rss_bytes(),
            sockets=sockets,
        )
        if sessions:
            snap.metrics.extend(self._builtin_metrics(snap))
            snap.metrics.extend(self._registered_metrics())
        return snap

    def _retire(self, legs: list[LegCounters]) -> None:
        now = {leg.leg_id: leg for leg in legs}
        for leg_id, old in self._last_legs.items():
            new = now.get(leg_id)
            if new is None or new.packets < old.packets:  # closed, or a new leg reusing the id
                totals = self._retired[old.direction]
                totals[0] += old.packets
                totals[1] += old.bytes
        self._last_legs = now

    def _builtin_metrics(self, snap: Snapshot) -> list[Metric]:
        conns = [c for v in snap.sessions for c in v.connections]
        by_status = {"active": 0, "pending": 0}
        for c in conns:
            by_status[c.status] = by_status.get(c.status, 0) + 1
        flows: dict[str, list[int]] = {"in": [0, 0], "out": [0, 0]}
        for leg in snap.legs:
            flows[leg.direction][0] += leg.packets
            flows[leg.direction][1] += leg.bytes
        for d in ("in", "out"):
            flows[d][0] += self._retired[d][0]
            flows[d][1] += self._retired[d][1]

        def one(name: str, help: str, kind: MetricKind, value: float) -> Metric:
            return Metric(name, help, kind, (((), float(value)),))

        return [
            one(
                "vidhub_sessions",
                "Sessions, active or not (as GET /sessions).",
                "gauge",
                len(snap.sessions),
            ),
            Metric(
                "vidhub_connections",
                "Connections by status (active: joined; pending: unused token).",
                "gauge",
                tuple(((("status", s),), float(n)) for s, n in sorted(by_status.items())),
            ),
            one(
                "vidhub_publishers",
                "Published streams.",
                "gauge",
                sum(len(c.publishers) for c in conns),
            ),
            one(
                "vidhub_subscribers",
                "Subscriptions to streams.",
                "gauge",
                sum(len(c.subscribers) for c in conns),
            ),
            one(
                "vidhub_rtp_packets_received_total",
                "RTP packets received from publishers.",
                "counter",
                flows["in"][0],
            ),
            one(
                "vidhub_rtp_bytes_received_total",
                "RTP payload bytes received from publishers.",
                "counter",
                flows["in"][1],
            ),
            one(
                "vidhub_rtp_packets_forwarded_total",
                "RTP packets forwarded to subscribers.",
                "counter",
                flows["out"][0],
            ),
            one(
                "vidhub_rtp_bytes_forwarded_total",
                "RTP payload bytes forwarded to subscribers.",
                "counter",
                flows["out"][1],
            ),
            Metric(
                "vidhub_open_sockets",
                "Open WebSockets by kind.",
                "gauge",
                tuple(((("kind", k),), float(n)) for k, n in sorted(snap.sockets.items())),
            ),
            one(
                "process_cpu_seconds_total",
                "User and system CPU time of the server process.",
                "counter",
                round(snap.cpu_s, 6),
            ),
            one(
                "process_resident_memory_bytes",
                "Resident memory of the server process.",
                "gauge",
                snap.rss_bytes,
            ),
        ]

    def _registered_metrics(self) -> list[Metric]:
        out = []
        for name, (help, kind, label, read) in self._metrics.items():
            try:
                value = read()
            except Exception:
                log.exception("metric %s failed", name)
                continue
            samples: tuple[tuple[tuple[tuple[str, str], ...], float], ...]
            if isinstance(value, Mapping):
                key = label or "key"
                samples = tuple((((key, str(k)),), float(v)) for k, v in sorted(value.items()))
            else:
                samples = (((), float(value)),)
            out.append(Metric(name, help, kind, samples))
        return out

    # -- sampling ---------------------------------------------------------------------

    async def sample(self) -> Snapshot:
        """Take a snapshot, extend the plotted series, tell the listeners."""
        snap = await self.collect(sessions=self.watchers() > 0)
        prev, self._prev = self._prev, snap
        self.latest = snap
        t_ms = snap.wall_ms
        live = set()
        if prev is not None:
            dt = max(1e-3, snap.monotonic_s - prev.monotonic_s)
            before = {leg.leg_id: leg for leg in prev.legs}
            for leg in snap.legs:
                live.add(leg.leg_id)
                old = before.get(leg.leg_id)
                if old is None or leg.packets < old.packets:
                    continue
                got = leg.packets - old.packets
                lost = max(0, leg.packets_lost - old.packets_lost)
                point = StreamPoint(
                    t_ms=t_ms,
                    bitrate_kbps=round((leg.bytes - old.bytes) * 8 / dt / 1000, 1),
                    loss_pct=round(100 * lost / (got + lost), 2) if got + lost else 0.0,
                    rtt_ms=leg.rtt_ms,
                    fps=round(max(0, leg.frames - old.frames) / dt, 1),
                )
                series = self.streams.get(leg.leg_id)
                if series is None:
                    series = self.streams[leg.leg_id] = deque(maxlen=HISTORY_POINTS)
                series.append(point)
            cpu_pct = round(100 * (snap.cpu_s - prev.cpu_s) / dt, 1)
            self.server.append(
                (t_ms, cpu_pct, round(snap.rss_bytes / 2**20, 1), sum(snap.sockets.values()))
            )
        for gone in set(self.streams) - live:
            del self.streams[gone]
        for listener in list(self.listeners):
            try:
                listener(snap)
            except Exception:
                log.exception("stats listener %r failed", listener)
        return snap

    async def run(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        """Sample forever (the app's cleanup context cancels it)."""
        while True:
            try:
                await self.sample()
            except Exception:
                log.exception("stats sample failed")
            await asyncio.sleep(interval_s)

    # -- rendering --------------------------------------------------------------------

    @staticmethod
    def render_prometheus(snap: Snapshot) -> str:
        """The Prometheus text exposition format (version 0.0.4) of ``snap``'s metrics."""
        lines = []
        for m in snap.metrics:
            lines.append(f"# HELP {m.name} {_escape_help(m.help)}")
            lines.append(f"# TYPE {m.name} {m.kind}")
            for labels, value in m.samples:
                if labels:
                    inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels)
                    lines.append(f"{m.name}{{{inner}}} {_number(value)}")
                else:
                    lines.append(f"{m.name} {_number(value)}")
        return "\n".join(lines) + "\n"


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 2**53 else repr(value)


#: The app's stats source (see :func:`stats_source`).
STATS = web.AppKey("stats", StatsSource)


def stats_source(app: web.Application) -> StatsSource:
    """The app's :class:`StatsSource`, created (and its sampler scheduled) on first use.

    Any feature may call this during set-up to register metrics with
    :meth:`StatsSource.add_metric`, before or after the web feature mounts.
    """
    if STATS in app:
        return app[STATS]
    from vidhub.server.keys import MANAGER

    source = StatsSource(app[MANAGER])
    app[STATS] = source

    async def sampler(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(source.run(), name="stats sampler")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(sampler)
    return source
