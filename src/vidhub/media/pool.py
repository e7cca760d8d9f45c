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
import itertools
import logging
import sys
from collections.abc import Callable, Sequence

from vidhub.errors import NotAcceptable, VidhubError
from vidhub.media.channel import (
    START_TIMEOUT_S,
    STOP_GRACE_S,
    RouterSettings,
    WorkerLoad,
    WorkerProcess,
    consume,
)
from vidhub.media.router import WorkerRouter

__all__ = ["WorkerPool"]

log = logging.getLogger(__name__)


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
        self._workers: list[WorkerProcess] = []
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
        self._workers = [WorkerProcess(self, i, 0) for i in range(self.size)]
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

    def _place(self) -> WorkerProcess:
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
                worker.send("ping", {}).add_done_callback(consume)

    def worker_lost(self, worker: WorkerProcess) -> None:
        """Put a replacement at the lost worker's index at once (new sessions may be placed
        on it while it starts) and start it."""
        if self.closing:
            return
        fresh = WorkerProcess(self, worker.index, worker.restarts + 1)
        self._workers[worker.index] = fresh
        task = asyncio.get_running_loop().create_task(self._replace(worker, fresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self, old: WorkerProcess, fresh: WorkerProcess) -> None:
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
