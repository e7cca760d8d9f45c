"""The main process's side of the media workers: processes, placement, heartbeat, routers.

:class:`WorkerPool` starts N :mod:`vidhub.media.worker` processes, each with a Unix socket
pair as its control channel, and hands out :class:`WorkerRouter` objects (the session's
``MediaRouter``) placed on the least-loaded worker: the fewest forwarded packets per second
(in steps of :data:`PPS_STEP`, so that near-equal loads count as equal), then the fewest
sessions.

Faults: a worker whose process exits, whose channel closes or breaks, or that leaves a
heartbeat unanswered for ``heartbeat_timeout_s`` is declared lost: it is killed (by its pid),
every request in flight on it fails with :class:`MediaWorkerLost`, each of its routers calls
its ``on_closed("mediaServerDisconnect")`` hook, and a replacement process starts at the same
index. The other workers are untouched.

Shutdown (:meth:`WorkerPool.close`) closes every channel, which makes each worker close its
routers and exit, and waits for them (SIGKILL after a grace period).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vidhub import errors
from vidhub.errors import NotAcceptable, VidhubError
from vidhub.protocol.mediactl import ControlProtocolError, Decoder, Event, Request, Response, encode
from vidhub.sfu.mediafile import FileResult
from vidhub.sfu.recorder import RecordedStream
from vidhub.sfu.stats import RouterStats, router_stats_from_dict

__all__ = [
    "MEDIA_SERVER_DISCONNECT",
    "PPS_STEP",
    "MediaWorkerLost",
    "RouterSettings",
    "WorkerLoad",
    "WorkerPool",
    "WorkerRouter",
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


def _raise_for(resp: Response) -> None:
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


class _Worker:
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
            _raise_for(resp)
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
        self.pool._worker_lost(self)

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
        cpu = _process_cpu(self.pid)
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


class WorkerPool:
    """N media worker processes; builds the routers of new sessions on the least loaded one.

    Args:
        workers: how many processes (at least 1).
        settings: the configuration every router gets.
        heartbeat_s: seconds between two pings of each worker.
        heartbeat_timeout_s: a ping unanswered this long means the worker hangs.
        log_level: the workers' log level.
        load_interval_s: seconds between two load reports of a worker.
        command: the worker command line, before its options (tests may wrap it).
    """

    def __init__(
        self,
        workers: int,
        settings: RouterSettings | None = None,
        *,
        heartbeat_s: float = 1.0,
        heartbeat_timeout_s: float = 5.0,
        log_level: str = "info",
        load_interval_s: float = 1.0,
        start_timeout_s: float = START_TIMEOUT_S,
        command: Sequence[str] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("a worker pool needs at least one worker")
        self.size = workers
        self.settings = settings or RouterSettings()
        self.heartbeat_s = heartbeat_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.log_level = log_level
        self.load_interval_s = load_interval_s
        self.start_timeout_s = start_timeout_s
        self.command = list(command or (sys.executable, "-m", "vidhub.media.worker"))
        self.closing = False
        self._workers: list[_Worker] = []
        self._router_ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self._log_task: asyncio.Task[None] | None = None
        #: Called with (index, pid) each time a replacement worker is up (tests, logs).
        self.on_replaced: Callable[[int, int], None] | None = None

    async def start(self) -> WorkerPool:
        """Start every worker and wait until each has said hello.

        Raises:
            VidhubError: a worker did not start.
        """
        self._workers = [_Worker(self, i, 0) for i in range(self.size)]
        results = await asyncio.gather(*(w.start() for w in self._workers), return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            await self.close()
            raise VidhubError(f"media workers did not start: {failed[0]}")
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.create_task(self._beat())
        self._log_task = loop.create_task(self._log_loads())
        log.info(
            "%d media workers up (pids %s)",
            self.size,
            ", ".join(str(w.pid) for w in self._workers),
        )
        return self

    async def close(self) -> None:
        """Stop every worker (they close their routers and exit); idempotent."""
        if self.closing:
            return
        self.closing = True
        for task in (self._heartbeat, self._log_task, *self._tasks):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._heartbeat, self._log_task, *self._tasks) if t is not None),
            return_exceptions=True,
        )
        await asyncio.gather(*(w.stop(STOP_GRACE_S) for w in self._workers))

    # -- placement -----------------------------------------------------------------------

    def _place(self) -> _Worker:
        live = [w for w in self._workers if not w.lost]
        if self.closing or not live:
            raise NotAcceptable("no media worker is available")
        return min(live, key=lambda w: (w.placement_key(), w.index))

    def router(self, session_id: str, settings: RouterSettings | None = None) -> WorkerRouter:
        """A new router for ``session_id`` on the least loaded worker (a RouterFactory).

        ``settings`` replaces the pool's router settings for this router only.
        """
        worker = self._place()
        rid = f"{session_id}#{next(self._router_ids)}"
        router = WorkerRouter(worker, session_id, rid, settings or self.settings)
        log.info(
            "session %s placed on media worker %d (%d sessions, %.0f forwarded pkt/s)",
            session_id,
            worker.index,
            len(worker.routers),
            worker.forwarded_pps,
        )
        return router

    def loads(self) -> list[WorkerLoad]:
        """Every worker's state and load, by index."""
        return [w.load() for w in self._workers]

    async def next_reports(self) -> None:
        """Wait until every running worker has sent a load report after this call."""
        await asyncio.gather(*(w.next_report() for w in self._workers if w.state == "up"))

    def pids(self) -> list[int]:
        return [w.pid for w in self._workers]

    # -- faults --------------------------------------------------------------------------

    async def _beat(self) -> None:
        """Ping every worker each ``heartbeat_s`` and judge the silent ones.

        A worker that has sent nothing at all (no answer, no load report) for
        ``heartbeat_timeout_s`` hangs, unless its process is visibly using CPU (a busy
        worker on an oversubscribed machine): that one gets three times as long before it
        counts as stuck. Silence is judged from what this process has read, and never in a
        round where this loop itself woke up late: if the main process was the one stalled,
        the workers' answers are still unread in the socket.
        """
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.heartbeat_s)
            now = loop.time()
            stalled = now - last > self.heartbeat_s + 1.0
            last = now
            for worker in list(self._workers):
                if worker.lost or not worker.ready.done():
                    continue
                worker.sample_cpu(now)
                silent = now - worker.last_heard
                idle = now - worker.last_progress
                limit = self.heartbeat_timeout_s
                if not stalled and silent > limit and (idle > limit or silent > 3 * limit):
                    worker.lose(f"no heartbeat answer for {silent:.1f} s")
                    continue
                worker.send("ping", {}).add_done_callback(_consume)

    def _worker_lost(self, worker: _Worker) -> None:
        """Put a replacement at the lost worker's index at once (new sessions may be placed
        on it while it starts) and start it."""
        if self.closing:
            return
        fresh = _Worker(self, worker.index, worker.restarts + 1)
        self._workers[worker.index] = fresh
        task = asyncio.get_running_loop().create_task(self._replace(worker, fresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self, old: _Worker, fresh: _Worker) -> None:
        if not old.came_up:
            # it never came up: do not spin on a worker that cannot start
            await asyncio.sleep(min(30.0, 0.5 * 2 ** min(old.restarts, 6)))
        try:
            await fresh.start()
        except Exception as exc:  # its own loss already scheduled another try
            log.error("replacement media worker %d failed to start: %s", old.index, exc)
            return
        log.warning(
            "media worker %d replaced: pid %d -> %d (restart %d)",
            old.index,
            old.pid,
            fresh.pid,
            fresh.restarts,
        )
        if self.on_replaced is not None:
            self.on_replaced(fresh.index, fresh.pid)

    async def _log_loads(self) -> None:
        while True:
            await asyncio.sleep(30.0)
            loads = self.loads()
            if any(w.sessions for w in loads):
                log.info(
                    "media workers: %s",
                    "; ".join(
                        f"#{w.index} {w.state} {w.sessions} sessions "
                        f"{w.forwarded_pps:.0f} pkt/s {w.cpu_percent:.0f} % CPU"
                        for w in loads
                    ),
                )


class WorkerRouter:
    """A session's ``MediaRouter`` whose Router lives in a media worker.

    Same contract as :class:`vidhub.sfu.router.Router` (same errors, same idempotent
    closing), over the control channel. Differences: :meth:`stats` returns the snapshot the
    worker pushed last (at most about a second old; :meth:`fetch_stats` asks for a fresh one),
    and when the worker is lost the router calls ``on_closed(MEDIA_SERVER_DISCONNECT)`` once
    and refuses new legs from then on.
    """

    def __init__(
        self, worker: _Worker, session_id: str, router_id: str, settings: RouterSettings
    ) -> None:
        self.on_endpoint_failed: Callable[[str], Any] | None = None
        #: Called once with a reason when the router is gone without being closed.
        self.on_closed: Callable[[str], Any] | None = None
        self.id = router_id
        self.session_id = session_id
        self._settings = settings
        self._worker = worker
        self._closed = False
        self._lost = False
        self._opened = False
        worker.routers[router_id] = self

    @property
    def worker_index(self) -> int:
        """The index of the worker that owns this router."""
        return self._worker.index

    @property
    def worker_pid(self) -> int:
        return self._worker.pid

    @property
    def closed(self) -> bool:
        return self._closed or self._lost

    async def _call(self, op: str, within: float = REQUEST_TIMEOUT_S, **args: Any) -> Any:
        if self.closed:
            raise NotAcceptable("media router is closed")
        worker = self._worker
        if not worker.ready.done():
            try:
                await asyncio.wait_for(asyncio.shield(worker.ready), within)
            except TimeoutError:
                raise VidhubError(f"media worker {worker.index} is not up yet") from None
        if not self._opened:
            # sent before any other request of this router: the channel keeps the order
            self._opened = True
            opening = worker.send("open", {"router": self.id, **self._settings.as_args()})
            opening.add_done_callback(_consume)
        return await worker.call(op, {"router": self.id, **args}, within)

    async def publish(self, producer_id: str, offer_sdp: str) -> str:
        answer: str = await self._call("publish", id=producer_id, sdp=offer_sdp)
        return answer

    async def subscribe(self, consumer_id: str, producer_id: str, offer_sdp: str) -> str:
        answer: str = await self._call(
            "subscribe", id=consumer_id, producer=producer_id, sdp=offer_sdp
        )
        return answer

    async def add_ice_candidate(
        self, endpoint_id: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        if self.closed:
            return  # as the in-process router: candidates for a closed router are dropped
        await self._call(
            "add_ice_candidate",
            id=endpoint_id,
            candidate=candidate,
            sdp_mid=sdp_mid,
            sdp_mline_index=sdp_mline_index,
        )

    async def close_producer(self, producer_id: str) -> None:
        if not self.closed and self._opened:
            with contextlib.suppress(MediaWorkerLost):
                await self._call("close_producer", id=producer_id)

    async def close_consumer(self, consumer_id: str) -> None:
        if not self.closed and self._opened:
            with contextlib.suppress(MediaWorkerLost):
                await self._call("close_consumer", id=consumer_id)

    async def close(self) -> None:
        """Close the worker-side router; idempotent, and quiet when the worker is gone."""
        if self.closed:
            self._closed = True
            return
        opened = self._opened
        self._closed = True
        worker = self._worker
        try:
            if opened and not worker.lost:
                await worker.call("close_router", {"router": self.id}, REQUEST_TIMEOUT_S)
        except MediaWorkerLost:
            pass
        finally:
            worker.routers.pop(self.id, None)

    async def start_recording(
        self,
        recorder_id: str,
        producer_id: str,
        path_stem: str,
        *,
        audio: bool = True,
        video: bool = True,
        fallback_size: tuple[int, int] = (640, 480),
    ) -> str:
        """``Router.start_recording`` in the worker (which writes the file itself)."""
        path: str = await self._call(
            "start_recording",
            recorder=recorder_id,
            producer=producer_id,
            path_stem=path_stem,
            audio=audio,
            video=video,
            fallback_size=list(fallback_size),
        )
        return path

    async def start_feed(
        self,
        recorder_id: str,
        producer_id: str,
        socket_path: str,
        *,
        audio: bool = True,
        video: bool = True,
    ) -> None:
        """``Router.start_feed`` in the worker (which connects to the composer itself)."""
        await self._call(
            "start_feed",
            recorder=recorder_id,
            producer=producer_id,
            socket=socket_path,
            audio=audio,
            video=video,
        )

    async def stop_recording(self, recorder_id: str) -> RecordedStream | None:
        """``Router.stop_recording`` in the worker; works after :meth:`close` too.

        Raises:
            MediaWorkerLost: the worker died: its file is unfinished.
        """
        if self._lost:
            raise MediaWorkerLost(f"media worker {self._worker.index} was lost")
        if not self._opened:
            return None
        data = await self._worker.call(
            "stop_recording", {"router": self.id, "recorder": recorder_id}, REQUEST_TIMEOUT_S
        )
        if data is None:
            return None
        return RecordedStream(**{**data, "file": FileResult(**data["file"])})

    def stats(self) -> RouterStats:
        """The counters the worker pushed last (empty before the first push)."""
        return self._worker.router_stats.get(self.id, RouterStats())

    async def fetch_stats(self) -> RouterStats:
        """The router's counters now, asked of the worker."""
        if self.closed or not self._opened:
            return RouterStats()
        data = await self._call("stats", within=10.0)
        return router_stats_from_dict(data)

    # -- from the worker -------------------------------------------------------------------

    def _endpoint_failed(self, endpoint_id: str) -> None:
        cb = self.on_endpoint_failed
        if cb is not None:
            try:
                cb(endpoint_id)
            except Exception:
                log.exception("on_endpoint_failed failed for %s", endpoint_id)

    def _worker_lost(self, shutting_down: bool) -> None:
        if self.closed:
            return
        self._lost = True
        if shutting_down:
            return
        cb = self.on_closed
        if cb is not None:
            try:
                cb(MEDIA_SERVER_DISCONNECT)
            except Exception:
                log.exception("on_closed failed for router %s", self.id)


def _process_cpu(pid: int) -> float | None:
    """CPU ticks (user + system) used so far by ``pid``, or None without /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return float(int(fields[11]) + int(fields[12]))
    except (OSError, IndexError, ValueError):
        return None


def _consume(fut: asyncio.Future[Any]) -> None:
    """Retrieve a fire-and-forget request's outcome (an error shows on the next call)."""
    if not fut.cancelled():
        fut.exception()
