"""One media worker process as the main process sees it: its control channel and its load.

:class:`WorkerProcess` starts a :mod:`vidhub.media.worker` child with one end of a Unix socket
pair as its control channel, sends requests with ids and timeouts, takes the worker's pushed
events (hello, load, endpoint failures), and tells its :class:`~vidhub.media.pool.WorkerPool`
when the process or the channel is lost. The pool owns placement, heartbeats and replacement;
:class:`~vidhub.media.router.WorkerRouter` is a session's router over one of these channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vidhub import errors
from vidhub.errors import VidhubError
from vidhub.protocol.mediactl import ControlProtocolError, Decoder, Event, Request, Response, encode
from vidhub.sfu.stats import RouterStats, router_stats_from_dict

if TYPE_CHECKING:
    from vidhub.media.pool import WorkerPool
    from vidhub.media.router import WorkerRouter

__all__ = [
    "MEDIA_SERVER_DISCONNECT",
    "PPS_STEP",
    "MediaWorkerLost",
    "RouterSettings",
    "WorkerLoad",
    "WorkerProcess",
    "consume",
    "process_cpu",
    "raise_for",
]

log = logging.getLogger(__name__)

#: The reason a router reports through ``on_closed`` when its worker is lost (OpenVidu's
#: EndReason for a media server that went away).
MEDIA_SERVER_DISCONNECT = "mediaServerDisconnect"
#: Forwarded packets/s that count as one step of load when placing a session.
PPS_STEP = 500
#: Seconds a request may take before the caller gets an error (SDP gathering included).
REQUEST_TIMEOUT_S = 30.0
#: Seconds a new worker may take to say hello.
START_TIMEOUT_S = 30.0
#: Seconds a worker gets to exit on its own at shutdown before SIGKILL.
STOP_GRACE_S = 8.0


class MediaWorkerLost(VidhubError):
    """The media worker that owned the router crashed, hung or was shut down."""

    http_status = 503


_ERRORS: dict[str, type[VidhubError]] = {
    name: cls
    for name in errors.__all__
    if isinstance(cls := getattr(errors, name), type) and issubclass(cls, VidhubError)
}


def raise_for(resp: Response) -> None:
    cls = _ERRORS.get(resp.error, VidhubError)
    if cls is errors.Overloaded:
        raise errors.Overloaded(resp.message)
    raise cls(resp.message)


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """How every router is configured (applied inside the worker that owns it).

    ``ice_servers`` are ``{"urls", "username", "credential"}`` mappings (aiortc's
    ``RTCIceServer`` fields); ``host_addresses`` None keeps aioice's own interface discovery.
    """

    ice_servers: tuple[dict[str, Any], ...] = ()
    host_addresses: tuple[str, ...] | None = None
    announced_address: str | None = None
    forced_video_codec: str | None = None

    def as_args(self) -> dict[str, Any]:
        return {
            "ice_servers": [dict(s) for s in self.ice_servers],
            "host_addresses": list(self.host_addresses)
            if self.host_addresses is not None
            else None,
            "announced_address": self.announced_address,
            "forced_video_codec": self.forced_video_codec,
        }


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """One worker as ``/health`` and the logs show it."""

    index: int
    pid: int
    state: str  # starting | up | lost
    sessions: int
    forwarded_pps: float
    received_pps: float
    cpu_percent: float
    restarts: int

    def as_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "pid": self.pid,
            "state": self.state,
            "sessions": self.sessions,
            "forwardedPacketsPerSecond": round(self.forwarded_pps, 1),
            "receivedPacketsPerSecond": round(self.received_pps, 1),
            "cpuPercent": round(self.cpu_percent, 1),
            "restarts": self.restarts,
        }


class WorkerProcess:
    """One child process and its control channel."""

    def __init__(self, pool: WorkerPool, index: int, restarts: int) -> None:
        self.pool = pool
        self.index = index
        self.restarts = restarts
        self.pid = 0
        self.proc: asyncio.subprocess.Process | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.lost = False
        self.routers: dict[str, WorkerRouter] = {}
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        # load, from the last two ``load`` events
        self._last: tuple[float, float, int, int] | None = None  # (t, cpu, in, out)
        self.forwarded_pps = 0.0
        self.received_pps = 0.0
        self.cpu_percent = 0.0
        self.router_stats: dict[str, RouterStats] = {}
        self.reports = 0
        self._reported = asyncio.Event()
        #: Loop time of the last bytes read from the worker (the heartbeat's evidence).
        self.last_heard = asyncio.get_running_loop().time()
        #: Loop time at which the process was last seen using CPU, and how much it had used.
        self.last_progress = self.last_heard
        self._cpu_seen: float | None = None
        self.came_up = False

    # -- start -------------------------------------------------------------------------

    async def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.pool.command,
                "--fd",
                str(child.fileno()),
                "--index",
                str(self.index),
                "--parent",
                str(os.getpid()),
                "--log-level",
                self.pool.log_level,
                "--load-interval",
                str(self.pool.load_interval_s),
                pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            parent.close()
            raise
        finally:
            child.close()
        self.pid = self.proc.pid
        reader, self._writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 20)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read(reader)),
            loop.create_task(self._watch_exit(self.proc)),
        ]
        try:
            await asyncio.wait_for(asyncio.shield(self.ready), self.pool.start_timeout_s)
        except TimeoutError:
            self.lose("did not start in time")
            raise

    # -- channel -----------------------------------------------------------------------

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = Decoder()
        why = "control channel closed"
        loop = asyncio.get_running_loop()
        try:
            while data := await reader.read(1 << 16):
                self.last_heard = loop.time()
                for msg in decoder.feed(data):
                    self._handle(msg)
        except ControlProtocolError as exc:
            why = f"control channel broken: {exc}"
        except ConnectionError:
            pass
        self.lose(why)

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        self.lose(f"process exited with {code}")

    def _handle(self, msg: Response | Event | Request) -> None:
        if isinstance(msg, Response):
            fut = self._pending.pop(msg.id, None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif isinstance(msg, Event):
            self._on_event(msg)

    def _on_event(self, ev: Event) -> None:
        if ev.name == "hello":
            if not self.ready.done():
                self.came_up = True
                self.ready.set_result(None)
        elif ev.name == "load":
            self._on_load(ev.args)
        elif ev.name == "endpoint_failed":
            router = self.routers.get(str(ev.args.get("router")))
            if router is not None:
                router._endpoint_failed(str(ev.args.get("endpoint")))

    def _on_load(self, args: dict[str, Any]) -> None:
        now = time.monotonic()
        cpu = float(args.get("cpu", 0.0))
        pin, pout = int(args.get("in", 0)), int(args.get("out", 0))
        if self._last is not None:
            t0, cpu0, in0, out0 = self._last
            dt = max(now - t0, 1e-3)
            self.forwarded_pps = max(0, pout - out0) / dt
            self.received_pps = max(0, pin - in0) / dt
            self.cpu_percent = 100 * max(0.0, cpu - cpu0) / dt
        self._last = (now, cpu, pin, pout)
        stats: dict[str, RouterStats] = {}
        for rid, data in (args.get("routers") or {}).items():
            with contextlib.suppress(ValueError, AttributeError):
                stats[rid] = router_stats_from_dict(data)
        self.router_stats = stats
        self.reports += 1
        self._reported.set()

    async def next_report(self) -> None:
        """Wait for this worker's next load report."""
        self._reported.clear()
        await self._reported.wait()

    def send(self, op: str, args: dict[str, Any]) -> asyncio.Future[Any]:
        """Send a request now; the future gets its Response (or MediaWorkerLost)."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.lost or self._writer is None or self._writer.is_closing():
            fut.set_exception(MediaWorkerLost(f"media worker {self.index} is gone"))
            return fut
        req_id = next(self._ids)
        self._pending[req_id] = fut
        self._writer.write(encode(Request(req_id, op, args)))
        return fut

    async def call(self, op: str, args: dict[str, Any], within: float) -> Any:
        """Send a request and wait up to ``within`` s for its value; raise what it raised."""
        fut = self.send(op, args)
        try:
            resp: Response = await asyncio.wait_for(fut, within)
        except TimeoutError:
            raise VidhubError(f"media worker {self.index} did not answer {op} in time") from None
        if not resp.ok:
            raise_for(resp)
        return resp.value

    # -- loss and stop -------------------------------------------------------------------

    def lose(self, why: str) -> None:
        """Declare this worker gone (idempotent): kill it, fail its calls, tell its routers."""
        if self.lost:
            return
        self.lost = True
        closing = self.pool.closing
        if not closing:
            log.error("media worker %d (pid %d) lost: %s", self.index, self.pid, why)
            self._kill()  # at shutdown, stop() lets it exit by itself first
        if self._writer is not None:
            self._writer.close()
        if not self.ready.done():
            self.ready.set_exception(MediaWorkerLost(f"media worker {self.index} lost: {why}"))
            self.ready.exception()  # retrieved: nobody may be waiting
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(MediaWorkerLost(f"media worker {self.index} lost: {why}"))
        self._pending.clear()
        routers, self.routers = list(self.routers.values()), {}
        for router in routers:
            router._worker_lost(closing)
        self.pool.worker_lost(self)

    def _kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGKILL)

    async def stop(self, grace_s: float) -> None:
        """Close the channel so the worker exits by itself; SIGKILL after ``grace_s``."""
        if self._writer is not None and not self._writer.is_closing():
            self._writer.close()
        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), grace_s)
            except TimeoutError:
                log.warning("media worker %d did not exit in time: killing it", self.index)
                self._kill()
                await proc.wait()
        self.lose("stopped")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def sample_cpu(self, now: float) -> None:
        """Note when the process last used CPU (from /proc; a no-op elsewhere)."""
        cpu = process_cpu(self.pid)
        if cpu is None:
            return
        if self._cpu_seen is not None and cpu > self._cpu_seen:
            self.last_progress = now
        self._cpu_seen = cpu

    # -- load ----------------------------------------------------------------------------

    @property
    def state(self) -> str:
        if self.lost:
            return "lost"
        return "up" if self.ready.done() else "starting"

    def load(self) -> WorkerLoad:
        return WorkerLoad(
            index=self.index,
            pid=self.pid,
            state=self.state,
            sessions=len(self.routers),
            forwarded_pps=self.forwarded_pps,
            received_pps=self.received_pps,
            cpu_percent=self.cpu_percent,
            restarts=self.restarts,
        )

    def placement_key(self) -> tuple[int, int, int]:
        starting = 0 if self.ready.done() else 1
        return (starting, int(self.forwarded_pps // PPS_STEP), len(self.routers))


def process_cpu(pid: int) -> float | None:
    """CPU ticks (user + system) used so far by ``pid``, or None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return float(int(fields[11]) + int(fields[12]))
    except (OSError, IndexError, ValueError):
        return None


def consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve a fire-and-forget request's outcome (an error shows on the next call)."""
    if not fut.cancelled():
        fut.exception()
