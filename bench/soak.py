"""Soak: ``vidhub serve`` (SQLite) under mixed load for a bounded time, then checks that nothing
leaks and nothing persisted is lost.

Load, all at once, over loopback: REST (create sessions and connections, delete some),
Python participants joining, signalling and leaving, event-hub publishers and a subscriber
(raw socket.io 0.9), and webhooks to a flaky receiver (a third of the deliveries fail with
500, some answer slowly). Every ``--sample-s`` it records the server's RSS and open file
descriptors (from ``/proc``) and its asyncio task count (``/metrics``).

It fails (exit 1) when, after the warm-up (the first fifth, at least a minute):

- RSS grows faster than ``--max-rss-mb-per-h`` (least-squares slope), or
- open file descriptors or asyncio tasks, once the load has stopped and the server is
  quiet, exceed their post-warm-up level by more than ``--fd-margin`` / ``--task-margin``, or
- after a SIGTERM and a restart on the same data directory, a session the soak created and
  did not delete is missing, or a deleted one is back.

Usage: ``.venv/bin/python bench/soak.py [--minutes 30]`` (``make soak``; ``make soak-ci`` is
the 3-minute variant). Bounded: it stops by itself after ``--minutes`` plus about a minute.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

SECRET = "SOAK_SECRET"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"OPENVIDUAPP:{SECRET}".encode()).decode()}
HUB = {"ftrack-user": "soak", "ftrack-api-key": SECRET}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Figures:
    samples: list[tuple[float, float, int, int]] = field(default_factory=list)  # t, MB, fds, tasks
    ops: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("rest", "rest_errors", "joins", "join_errors", "hub_published", "hub_received",
         "webhooks_ok", "webhooks_failed"), 0))  # fmt: skip
    alive: set[str] = field(default_factory=set)
    errors: dict[str, int] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)


class Server:
    def __init__(self, data_dir: str, webhook_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.webhook_url = webhook_url
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENVIDU_", "VIDHUB_"))}
        env.update(
            OPENVIDU_WEBHOOK="true",
            OPENVIDU_WEBHOOK_ENDPOINT=self.webhook_url,
            VIDHUB_ICE_HOST_ADDRESSES="127.0.0.1",
        )
        cmd = [sys.executable, "-m", "vidhub", "serve", "--port", str(self.port)]
        cmd += ["--secret", SECRET, "--data-dir", self.data_dir, "--log-level", "warning"]
        log = open(os.path.join(self.data_dir, "server.log"), "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    async def ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(self.url + "/health") as r:
                    if r.status == 200:
                        return
            await asyncio.sleep(0.1)  # polling a child process: nothing to wait on
        raise RuntimeError("server not ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def rss_mb_and_fds(self) -> tuple[float, int]:
        assert self.proc is not None
        pid = self.proc.pid
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
        return rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, len(os.listdir(f"/proc/{pid}/fd"))


async def flaky_receiver(fig: Figures) -> tuple[web.AppRunner, str]:
    """A webhook receiver that fails a third of the time and is sometimes slow."""

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        roll = random.random()
        if roll < 0.33:
            fig.ops["webhooks_failed"] += 1
            return web.Response(status=500)
        if roll < 0.4:
            await asyncio.sleep(2.0)  # a slow receiver, on purpose
        fig.ops["webhooks_ok"] += 1
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}/hook"


async def rest_load(
    http: aiohttp.ClientSession, base: str, fig: Figures, stop: asyncio.Event
) -> None:
    n = itertools.count()
    while not stop.is_set():
        sid = f"soak{next(n)}"
        try:
            async with http.post(
                base + "/openvidu/api/sessions", json={"customSessionId": sid}, headers=AUTH
            ) as r:
                if r.status == 200:
                    fig.alive.add(sid)
            async with http.post(
                f"{base}/openvidu/api/sessions/{sid}/connection", json={}, headers=AUTH
            ) as r:
                await r.read()
            mine = [s for s in fig.alive if s.startswith("soak")]
            if len(mine) > 50:  # a steady state: as many sessions end as begin
                gone = random.choice(mine)
                async with http.delete(f"{base}/openvidu/api/sessions/{gone}", headers=AUTH) as r:
                    if r.status == 204:
                        fig.alive.discard(gone)
                        fig.deleted.add(gone)
            fig.ops["rest"] += 3
        except aiohttp.ClientError:
            fig.ops["rest_errors"] += 1
        await asyncio.sleep(0.1)


async def participant_load(
    http: aiohttp.ClientSession, base: str, fig: Figures, stop: asyncio.Event, k: int
) -> None:
    from vidhub.client import Participant

    room = f"room{k}"
    while not stop.is_set():
        try:
            # the room ends when its last participant leaves (as in OpenVidu): make it again
            async with http.post(
                base + "/openvidu/api/sessions", json={"customSessionId": room}, headers=AUTH
            ) as r:
                await r.read()
            async with http.post(
                f"{base}/openvidu/api/sessions/{room}/connection", json={}, headers=AUTH
            ) as r:
                token = (await r.json())["token"]
            me = Participant(token, metadata=f"bot{k}")
            await me.join()
            await me.signal("hello", "chat")
            await asyncio.sleep(random.uniform(0.5, 2.0))
            await me.leave()
            fig.ops["joins"] += 1
        except Exception as exc:  # a soak counts failures, it does not stop on them
            fig.ops["join_errors"] += 1
            fig.errors[type(exc).__name__] = fig.errors.get(type(exc).__name__, 0) + 1
            await asyncio.sleep(1.0)


async def hub_socket(http: aiohttp.ClientSession, base: str) -> aiohttp.ClientWebSocketResponse:
    async with http.get(base + "/socket.io/1/", headers=HUB) as r:
        sid = (await r.text()).split(":")[0]
    ws = await http.ws_connect(f"{base}/socket.io/1/websocket/{sid}")
    await ws.receive()  # 1::
    return ws


def hub_frame(ack: int, topic: str, data: dict[str, Any]) -> str:
    event = {"id": f"e{ack}", "topic": topic, "data": data, "source": {"id": "soak"}, "target": ""}
    return f"5:{ack}+::" + json.dumps({"name": "ftrack.event", "args": [event]})


async def hub_load(
    http: aiohttp.ClientSession, base: str, fig: Figures, stop: asyncio.Event
) -> None:
    sub = await hub_socket(http, base)
    await sub.send_str(
        hub_frame(
            1,
            "ftrack.meta.subscribe",
            {"subscriber": {"id": "soak-sub"}, "subscription": "topic=soak.*"},
        )
    )

    async def read_sub() -> None:
        async for msg in sub:
            if msg.type is aiohttp.WSMsgType.TEXT:
                if msg.data == "2::":
                    await sub.send_str("2::")
                elif msg.data.startswith("5:"):
                    fig.ops["hub_received"] += 1

    reader = asyncio.create_task(read_sub())
    pubs = [await hub_socket(http, base) for _ in range(2)]
    acks = itertools.count(2)
    try:
        while not stop.is_set():
            for ws in pubs:
                await ws.send_str(hub_frame(next(acks), "soak.tick", {"n": 1}))
                fig.ops["hub_published"] += 1
                with contextlib.suppress(asyncio.TimeoutError):
                    while True:  # drain acks and heartbeats
                        msg = await asyncio.wait_for(ws.receive(), 0.001)
                        if msg.type is aiohttp.WSMsgType.TEXT and msg.data == "2::":
                            await ws.send_str("2::")
                        elif msg.type is not aiohttp.WSMsgType.TEXT:
                            break
            await asyncio.sleep(0.05)
    finally:
        for ws in [*pubs, sub]:
            await ws.close()
        reader.cancel()


async def keep_running(
    job: Callable[[], Awaitable[None]], fig: Figures, stop: asyncio.Event
) -> None:
    """Run a load until ``stop``; a load that fails is counted and started again."""
    while not stop.is_set():
        try:
            await job()
        except Exception as exc:  # counted, then the load resumes
            name = f"load:{type(exc).__name__}"
            fig.errors[name] = fig.errors.get(name, 0) + 1
            await asyncio.sleep(1.0)


async def tasks_of(http: aiohttp.ClientSession, base: str) -> int:
    async with http.get(base + "/metrics", headers=AUTH) as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith('vidhub_door{gauge="asyncio_tasks"}'):
            return int(float(line.split()[-1]))
    return -1


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points) or 1e-9
    return sum((t - mt) * (v - mv) for t, v in points) / den * 3600.0


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    fig = Figures()
    runner, hook_url = await flaky_receiver(fig)
    tmp = tempfile.TemporaryDirectory(prefix="vidhub-soak-")
    server = Server(tmp.name, hook_url)
    server.start()
    result: dict[str, Any] = {"minutes": args.minutes}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            await server.ready(http)
            stop = asyncio.Event()
            jobs: list[Callable[[], Awaitable[None]]] = [
                lambda: rest_load(http, server.url, fig, stop),
                lambda: hub_load(http, server.url, fig, stop),
            ]
            for k in range(args.participants):
                jobs.append(lambda k=k: participant_load(http, server.url, fig, stop, k))  # type: ignore[misc]
            loads = [asyncio.create_task(keep_running(job, fig, stop)) for job in jobs]
            t0 = time.monotonic()
            end = t0 + args.minutes * 60
            while time.monotonic() < end:
                await asyncio.sleep(min(args.sample_s, max(0.0, end - time.monotonic())))
                mb, fds = server.rss_mb_and_fds()
                fig.samples.append(
                    (time.monotonic() - t0, mb, fds, await tasks_of(http, server.url))
                )
            stop.set()
            await asyncio.wait_for(asyncio.gather(*loads, return_exceptions=True), 60)
            await asyncio.sleep(args.quiet_s)  # let sockets, webhook retries and legs settle
            mb, fds = server.rss_mb_and_fds()
            quiet = (time.monotonic() - t0, mb, fds, await tasks_of(http, server.url))
            warm_up_s = max(60.0, fig.samples[-1][0] / 5)
            warm = [s for s in fig.samples if s[0] >= warm_up_s] or fig.samples
            base = warm[0]
            result.update(
                rss_mb_start=round(base[1], 1),
                rss_mb_end=round(quiet[1], 1),
                rss_mb_per_h=round(slope_per_hour([(s[0], s[1]) for s in warm]), 1),
                fds_after_warmup=base[2],
                fds_quiet=quiet[2],
                tasks_after_warmup=base[3],
                tasks_quiet=quiet[3],
                ops=fig.ops,
                errors=fig.errors,
            )
            server.stop()
            server.start()  # same data dir: what was acknowledged must be there
            await server.ready(http)
            async with http.get(server.url + "/openvidu/api/sessions", headers=AUTH) as r:
                listed = {s["id"] for s in (await r.json())["content"]}
            result["persisted_missing"] = sorted(fig.alive - listed)[:10]
            result["deleted_back"] = sorted(fig.deleted & listed)[:10]
            result["sessions_kept"] = len(fig.alive)
    finally:
        server.stop()
        await runner.cleanup()
        tmp.cleanup()
    failures = []
    if result["rss_mb_per_h"] > args.max_rss_mb_per_h:
        failures.append(f"RSS grows {result['rss_mb_per_h']} MB/h > {args.max_rss_mb_per_h}")
    if result["fds_quiet"] > result["fds_after_warmup"] + args.fd_margin:
        failures.append(f"fds {result['fds_after_warmup']} -> {result['fds_quiet']}")
    if result["tasks_quiet"] > result["tasks_after_warmup"] + args.task_margin:
        failures.append(f"tasks {result['tasks_after_warmup']} -> {result['tasks_quiet']}")
    if result["persisted_missing"] or result["deleted_back"]:
        failures.append("persisted state lost or resurrected")
    if fig.ops["joins"] == 0 or fig.ops["hub_received"] == 0 or fig.ops["rest"] == 0:
        failures.append("a load did not run")
    result["failures"] = failures
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--participants", type=int, default=4)
    p.add_argument("--sample-s", type=float, default=10.0)
    p.add_argument("--quiet-s", type=float, default=8.0)
    p.add_argument("--max-rss-mb-per-h", type=float, default=60.0)
    p.add_argument("--fd-margin", type=int, default=16)
    p.add_argument("--task-margin", type=int, default=16)
    args = p.parse_args()
    r = asyncio.run(soak(args))
    print(
        f"soak {r['minutes']} min: RSS {r['rss_mb_start']} -> {r['rss_mb_end']} MB "
        f"(slope after warm-up {r['rss_mb_per_h']} MB/h), fds {r['fds_after_warmup']} -> "
        f"{r['fds_quiet']} (quiet), asyncio tasks {r['tasks_after_warmup']} -> {r['tasks_quiet']} "
        f"(quiet), ops {r['ops']}, sessions kept {r['sessions_kept']}, missing after restart "
        f"{r['persisted_missing'] or 'none'}, deleted but back {r['deleted_back'] or 'none'}"
    )
    print("JSON " + json.dumps(r))
    if r["failures"]:
        print("FAIL: " + "; ".join(r["failures"]))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
