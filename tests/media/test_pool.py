"""Media workers as the main process sees them: placement, crashes, hangs, shutdown, orphans.

Real worker processes and real aiortc peers on loopback; the faults are real signals sent to
the worker processes (SIGKILL for a crash, SIGSTOP for a hang).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from tests.sfu.bots import PublisherBot, SubscriberBot, wait_for
from tests.support.proc import pid_alive, pids_gone_within
from vidhub.errors import BadRequest, NotAcceptable
from vidhub.media.channel import MEDIA_SERVER_DISCONNECT, RouterSettings
from vidhub.media.pool import WorkerPool
from vidhub.media.router import WorkerRouter
from vidhub.sfu import aiortc_glue

CONNECT_S = 10.0
LOOPBACK = RouterSettings(host_addresses=("127.0.0.1",))


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    aiortc_glue.install_host_addresses(["127.0.0.1"])
    p = await WorkerPool(
        2,
        LOOPBACK,
        heartbeat_s=0.2,
        heartbeat_timeout_s=1.5,
        log_level="warning",
        load_interval_s=0.3,
    ).start()
    try:
        yield p
    finally:
        await p.close()


async def _call_up(router: WorkerRouter) -> tuple[PublisherBot, SubscriberBot]:
    pub = PublisherBot(router, "pub")
    await pub.start()
    sub = SubscriberBot(router, "sub", "pub")
    await sub.start()
    await wait_for(sub.first_video, CONNECT_S)
    return pub, sub


async def _still_forwarding(sub: SubscriberBot, frames: int = 5) -> None:
    sub.target_frames = sub.video_frames + frames
    sub.enough_video.clear()
    await wait_for(sub.enough_video, CONNECT_S)


async def test_sessions_go_to_the_least_loaded_worker(pool: WorkerPool) -> None:
    a, b = pool.router("A"), pool.router("B")
    assert {a.worker_index, b.worker_index} == {0, 1}
    c = pool.router("C")
    assert [w.sessions for w in pool.loads()] == [2, 1] or [w.sessions for w in pool.loads()] == [
        1,
        2,
    ]
    # a worker forwarding far more packets is avoided even with fewer sessions
    busy = pool._workers[c.worker_index]
    busy.forwarded_pps = 10_000
    d = pool.router("D")
    assert d.worker_index != c.worker_index
    for r in (a, b, c, d):
        await r.close()
    assert [w.sessions for w in pool.loads()] == [0, 0]


async def test_health_figures_come_from_the_workers_own_reports(pool: WorkerPool) -> None:
    router = pool.router("S")
    pub, sub = await _call_up(router)
    await _still_forwarding(sub)
    # rates need two reports: one before and one after a stretch of forwarding
    await asyncio.wait_for(pool.next_reports(), CONNECT_S)
    await _still_forwarding(sub)
    await asyncio.wait_for(pool.next_reports(), CONNECT_S)
    loads = pool.loads()
    mine = loads[router.worker_index]
    assert mine.state == "up" and mine.sessions == 1 and mine.pid == router.worker_pid
    assert mine.forwarded_pps > 0 and mine.received_pps > 0 and mine.cpu_percent > 0
    pushed = router.stats()
    assert pushed.producers and pushed.producers[0].packets_in > 0
    assert set(mine.as_json()) >= {"index", "pid", "state", "sessions", "cpuPercent"}
    await sub.close()
    await pub.close()


async def test_a_killed_worker_is_replaced_and_the_other_sessions_keep_flowing(
    pool: WorkerPool,
) -> None:
    doomed, safe = pool.router("doomed"), pool.router("safe")
    assert doomed.worker_index != safe.worker_index
    reasons: list[str] = []
    closed = asyncio.Event()

    def on_closed(reason: str) -> None:
        reasons.append(reason)
        closed.set()

    doomed.on_closed = on_closed
    safe.on_closed = on_closed
    replaced = asyncio.Event()
    pool.on_replaced = lambda index, pid: replaced.set()
    d_pub, d_sub = await _call_up(doomed)
    s_pub, s_sub = await _call_up(safe)
    old_pid = doomed.worker_pid
    # a request in flight when the worker dies fails instead of hanging
    late = SubscriberBot(doomed, "late", "pub")
    pending = asyncio.ensure_future(doomed.subscribe("late", "pub", await late.offer()))

    os.kill(old_pid, signal.SIGKILL)
    await wait_for(closed, CONNECT_S)
    assert reasons == [MEDIA_SERVER_DISCONNECT]
    with pytest.raises(Exception, match=r"media worker|closed"):
        await pending
    with pytest.raises(NotAcceptable):
        await doomed.publish("again", "v=0")
    await doomed.close_producer("pub")  # quiet on a lost router
    await doomed.close()

    await _still_forwarding(s_sub)  # the other worker never noticed
    await wait_for(replaced, CONNECT_S)
    loads = pool.loads()
    fresh = loads[doomed.worker_index]
    assert fresh.state == "up" and fresh.pid != old_pid and fresh.restarts == 1
    assert not pid_alive(old_pid)

    # the session can start over on a new router: republish and subscribe again
    again = pool.router("doomed")
    pub2, sub2 = await _call_up(again)
    await _still_forwarding(sub2)
    for bot in (late, d_sub, d_pub, s_sub, s_pub, sub2, pub2):
        await bot.close()


async def test_a_lone_worker_restarting_still_takes_new_sessions() -> None:
    aiortc_glue.install_host_addresses(["127.0.0.1"])
    pool = await WorkerPool(1, LOOPBACK, log_level="warning").start()
    try:
        first = pool.router("S")
        closed = asyncio.Event()
        first.on_closed = lambda reason: closed.set()
        os.kill(first.worker_pid, signal.SIGKILL)
        await wait_for(closed, CONNECT_S)
        # what the rooms do on on_closed: a new router at once, while the worker restarts
        again = pool.router("S")
        assert pool.loads()[0].state in ("starting", "up")
        pub, sub = await _call_up(again)  # waits for the replacement, then works
        assert pool.loads()[0].restarts == 1
        await sub.close()
        await pub.close()
    finally:
        await pool.close()


async def test_a_hung_worker_is_detected_by_its_heartbeat(pool: WorkerPool) -> None:
    router = pool.router("hung")
    closed = asyncio.Event()
    router.on_closed = lambda reason: closed.set()
    pid = router.worker_pid
    t0 = time.monotonic()
    os.kill(pid, signal.SIGSTOP)  # alive but answering nothing
    try:
        await wait_for(closed, CONNECT_S)
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGCONT)
    # silence is counted from the last bytes heard, at most one beat before the stop
    assert time.monotonic() - t0 >= pool.heartbeat_timeout_s - pool.heartbeat_s - 0.1
    # the pool sent SIGKILL before it reported the loss; the kernel delivers it on its own
    assert await asyncio.to_thread(pids_gone_within, [pid], CONNECT_S)


async def test_a_stalled_main_process_does_not_condemn_its_workers(pool: WorkerPool) -> None:
    # the fault staged here is the main loop itself blocking, as under heavy load
    time.sleep(pool.heartbeat_timeout_s + 0.5)  # noqa: ASYNC251
    for _ in range(3):  # a few beats later, everyone is still up
        await asyncio.wait_for(pool.next_reports(), CONNECT_S)
    assert [(w.state, w.restarts) for w in pool.loads()] == [("up", 0), ("up", 0)]


async def test_errors_come_back_as_the_same_kind(pool: WorkerPool) -> None:
    router = pool.router("S")
    with pytest.raises(BadRequest, match="SDP"):
        await router.publish("p", "not sdp")


async def test_close_stops_every_worker_cleanly() -> None:
    pool = await WorkerPool(2, LOOPBACK, log_level="warning").start()
    router = pool.router("S")
    pub = PublisherBot(router, "pub")
    await pub.start()
    procs = [w.proc for w in pool._workers]
    await pool.close()
    await pool.close()  # idempotent
    assert [p.returncode for p in procs if p is not None] == [0, 0]
    with pytest.raises(NotAcceptable):
        pool.router("T")
    await pub.close()


ORPHAN_SCRIPT = """
import asyncio, sys
from vidhub.media.pool import WorkerPool

async def main():
    pool = await WorkerPool(2, log_level="warning").start()
    print(" ".join(map(str, pool.pids())), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def test_kill_9_of_the_main_process_leaves_no_worker() -> None:
    main = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT], stdout=subprocess.PIPE, text=True
    )
    try:
        assert main.stdout is not None
        pids = [int(p) for p in main.stdout.readline().split()]
        assert len(pids) == 2 and all(pid_alive(p) for p in pids)
    finally:
        main.kill()
        main.wait()
        if main.stdout is not None:
            main.stdout.close()
    assert pids_gone_within(pids, 10.0)
