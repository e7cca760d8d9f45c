"""Cluster hub benchmark: cross-node deliveries per node core, added publish-to-deliver latency.

Run: ``.venv/bin/python bench/cluster.py`` (about a minute; ``--quick`` for a smoke run).

A loopback ``redis-server`` and 1, 2 and 3 real ``vidhub serve`` nodes (``--store redis``)
run as child processes; the clients are bench/hub.py's raw socket.io 0.9 clients in this
process. One publisher is connected to node 1; 20 subscriber sockets (one matching
subscription each) are connected to every *other* node, so every delivery counted crossed
Redis (with one node, the subscribers are on node 1: the baseline). Server CPU comes from
``/proc/<pid>/stat`` (utime+stime) of each node.

Figures, per cluster size:

1. cross-node deliveries/s per node core (events published in chunks of 500, each waited
   for, so slow subscribers are never dropped): frames delivered to the subscribers of the
   receiving nodes, divided by the CPU seconds those nodes used (decoding the batches from
   Redis, routing, writing to sockets): the rate one fully busy core of a receiving node
   sustains. The wall-clock rate is printed too.
2. p50/p99 publish-to-deliver latency with the publisher paced at 300 events/s, timed at
   every subscriber, and the p99 added compared with the single node.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import hub as hb  # noqa: E402  (bench/hub.py: the raw clients)

SUBS_PER_NODE = 20
CHUNK = 500
LAT_RATE = 300.0


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found on PATH")
    port = hb.free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc)
    return proc, port


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"child exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a child process we do not control
    proc.kill()
    raise RuntimeError(f"port {port} never opened")


def start_node(tmp: Path, n: int, redis_url: str) -> tuple[subprocess.Popen[bytes], int]:
    port = hb.free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENVIDU_", "VIDHUB_"))}
    env["VIDHUB_NODE_ID"] = f"bench-n{n}"
    data = tmp / f"n{n}"
    data.mkdir()
    logs = os.environ.get("BENCH_LOG_DIR")
    out = open(Path(logs) / f"n{n}.log", "ab") if logs else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vidhub",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--secret",
            hb.SECRET,
            "--store",
            "redis",
            "--redis-url",
            redis_url,
            "--data-dir",
            str(data),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    wait_health(port, proc)
    return proc, port


def wait_health(port: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the node's ``/health`` answers 200 (the app is up, not just the port)."""
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)  # polling a child process we do not control
    proc.kill()
    raise RuntimeError(f"node on port {port} never became healthy")


async def scenario(nodes: list[tuple[subprocess.Popen[bytes], int]], quick: bool) -> dict[str, Any]:
    receivers = nodes[1:] or nodes[:1]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        subs = [await hb.connect(http, port) for _, port in receivers for _ in range(SUBS_PER_NODE)]
        pub = await hb.connect(http, nodes[0][1])
        for i, c in enumerate(subs):
            await hb.subscribe_all(c, ["topic=bench.hit"], f"s{i}")  # acked: in effect on the bus
        n_subs = len(subs)
        await hb.publish_pipelined(pub, "bench.hit", 300, 64)  # warm-up
        await hb.wait_received(subs, 300 * n_subs, 20)
        count = 1500 if quick else 8000
        base = sum(c.received for c in subs)
        cpu0 = [hb.cpu_seconds(p.pid) for p, _ in receivers]
        t0 = time.perf_counter()
        # in chunks, each waited for: the subscribers (this process) stay within the hub's
        # slow-consumer bound, so nothing is dropped and every delivery is counted
        for done in range(0, count, CHUNK):
            n = min(CHUNK, count - done)
            await hb.publish_pipelined(pub, "bench.hit", n, 64)
            await hb.wait_received(subs, base + (done + n) * n_subs, 60)
        elapsed = time.perf_counter() - t0
        cpu = sum(hb.cpu_seconds(p.pid) - c0 for (p, _), c0 in zip(receivers, cpu0, strict=True))
        delivered = sum(c.received for c in subs) - base
        for c in subs[::5]:  # a sample keeps the client's parsing off the critical path
            c.measure = True
        lat_count = 600 if quick else 3000
        base = sum(c.received for c in subs)
        await hb.publish_pipelined(pub, "bench.hit", lat_count, 1_000_000, paced_rate=LAT_RATE)
        await hb.wait_received(subs, base + lat_count * n_subs, 60)
        lats = sorted(x for c in subs for x in c.latencies)
        for c in [*subs, pub]:
            await c.ws.close()
    return {
        "per_core": delivered / cpu if cpu > 0 else float("nan"),
        "wall": delivered / elapsed,
        "busy": cpu / elapsed / len(receivers),
        "p50_ms": lats[len(lats) // 2] / 1e6,
        "p99_ms": lats[int(len(lats) * 0.99)] / 1e6,
        "samples": len(lats),
        "subs": n_subs,
    }


async def main_async(quick: bool, sizes: list[int]) -> None:
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            redis, rport = start_redis(Path(tmp))
            nodes: list[tuple[subprocess.Popen[bytes], int]] = []
            try:
                for n in range(1, size + 1):
                    nodes.append(start_node(Path(tmp), n, f"redis://127.0.0.1:{rport}/0"))
                results[size] = await scenario(nodes, quick)
            finally:
                for proc, _ in nodes:
                    proc.terminate()
                for proc, _ in nodes:
                    try:
                        proc.wait(30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                redis.terminate()
                redis.wait(10)
    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}")
    base = results.get(1)
    for size, r in results.items():
        where = "same node (baseline)" if size == 1 else f"{size - 1} receiving node(s)"
        line = (
            f"{size} node(s), {r['subs']} subscribers on {where}: "
            f"{r['per_core']:,.0f} deliveries per receiving-node CPU-second "
            f"({r['wall']:,.0f}/s wall, receivers {r['busy']:.0%} busy); "
            f"latency at {LAT_RATE:,.0f} ev/s p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms"
        )
        if size > 1:
            line += f"  [goal >= 30k/core: {'met' if r['per_core'] >= 30_000 else 'NOT met'}]"
            if base is not None:
                added = r["p99_ms"] - base["p99_ms"]
                line += (
                    f"  added p50 {r['p50_ms'] - base['p50_ms']:+.2f} ms, added p99 "
                    f"{added:+.2f} ms [goal <= 10 ms: {'met' if added <= 10 else 'NOT met'}]"
                )
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (smoke run)")
    parser.add_argument("--sizes", default="1,2,3", help="cluster sizes to run (comma list)")
    args = parser.parse_args()
    hb.PIN = False
    asyncio.run(main_async(args.quick, [int(s) for s in args.sizes.split(",")]))


if __name__ == "__main__":
    main()
