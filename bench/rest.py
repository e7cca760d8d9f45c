"""REST benchmark: ``vidhub serve`` (SQLite) under create-session + create-connection load.

Starts the server as a subprocess on loopback, then drives it with an aiohttp load generator
in this process (uvloop when available) through four phases, and prints the figures:

1. warm-up (closed loop);
2. throughput: closed loop, ``--concurrency`` clients each doing POST /sessions then
   POST /sessions/{id}/connection, for ``--duration`` seconds -> requests/s, and the server's
   CPU-µs per request from its own rusage (``/proc/<pid>/stat`` utime+stime deltas);
3. latency at a fixed ``--rate`` (default 1 000 req/s), open loop (each request is timed
   from its scheduled start, so a stall is not hidden) -> p50/p90/p99/max;
4. overload: open loop at twice the measured throughput over ``--overload-connections``
   keep-alive connections (a lean raw-socket generator, see :class:`RawFleet`) -> status
   histogram, goodput and latency; the goal is only 200 and 503/429 carrying Retry-After,
   never any other 5xx.

Bounded: it stops by itself in well under two minutes with the defaults (``--quick`` for a
≈20 s smoke run). Usage: ``.venv/bin/python bench/rest.py [--quick] [--store memory]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp

SECRET = "BENCH_SECRET"
HEADERS = {
    "Authorization": "Basic " + base64.b64encode(f"OPENVIDUAPP:{SECRET}".encode()).decode(),
    "Content-Type": "application/json",
}
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` in seconds, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    data_dir: tempfile.TemporaryDirectory[str]

    @classmethod
    def spawn(cls, store: str, max_inflight: int) -> Server:
        port = free_port()
        tmp = tempfile.TemporaryDirectory(prefix="vidhub-bench-")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENVIDU_", "VIDHUB_"))}
        # every client here shares one address: lift the per-address cap, not the others
        env["VIDHUB_MAX_TCP_CONNECTIONS_PER_IP"] = "0"
        # the load creates far more than the default 10 000 sessions: measure the API, not the cap
        env["VIDHUB_MAX_SESSIONS"] = "0"
        cmd = [sys.executable, "-m", "vidhub", "serve", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--secret", SECRET, "--data-dir", tmp.name]
        cmd += ["--store", store, "--log-level", "warning", "--max-inflight", str(max_inflight)]
        with open(os.path.join(tmp.name, "server.log"), "wb") as log:
            proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        return cls(proc, f"http://127.0.0.1:{port}", tmp)

    async def ready(self) -> None:
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as http:
            while self.proc.poll() is None and time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.url + "/health") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.05)  # polling a child process: nothing to wait on
        raise RuntimeError(f"server not ready (exit code {self.proc.poll()})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.data_dir.cleanup()


@dataclass
class Tally:
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)
    latencies: list[float] = field(default_factory=list)
    #: request written -> answer read, on one connection (excludes waiting for a connection)
    service: list[float] = field(default_factory=list)
    missing_retry_after: int = 0
    #: latencies of the served (200) answers only
    served: list[float] = field(default_factory=list)

    def record(self, status: str, latency: float) -> None:
        self.statuses[status] += 1
        self.latencies.append(latency)
        if status == "200":
            self.served.append(latency)


class Driver:
    """Issues the two REST calls and tallies outcomes."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.api = base + "/openvidu/api"
        self.sessions: collections.deque[str] = collections.deque(maxlen=4096)
        self.session_body = b"{}"
        self.connection_body = json.dumps({"role": "PUBLISHER", "data": "bench"}).encode()

    async def _post(self, url: str, body: bytes, tally: Tally, start: float) -> bytes | None:
        try:
            async with self.http.post(url, data=body, headers=HEADERS) as r:
                payload = await r.read()
                if r.status in (429, 503) and "Retry-After" not in r.headers:
                    tally.missing_retry_after += 1
                tally.record(str(r.status), time.perf_counter() - start)
                return payload if r.status == 200 else None
        except (aiohttp.ClientError, TimeoutError) as exc:
            tally.record(f"error:{type(exc).__name__}", time.perf_counter() - start)
            return None

    async def create_session(self, tally: Tally, start: float | None = None) -> str | None:
        t0 = time.perf_counter() if start is None else start
        body = await self._post(self.api + "/sessions", self.session_body, tally, t0)
        if body is None:
            return None
        sid: str = json.loads(body)["id"]
        self.sessions.append(sid)
        return sid

    async def create_connection(self, sid: str, tally: Tally, start: float | None = None) -> None:
        t0 = time.perf_counter() if start is None else start
        await self._post(f"{self.api}/sessions/{sid}/connection", self.connection_body, tally, t0)

    async def pair(self, tally: Tally) -> None:
        sid = await self.create_session(tally)
        if sid is not None:
            await self.create_connection(sid, tally)

    async def one_of_pair(self, i: int, tally: Tally, start: float) -> None:
        """Open-loop unit: even i creates a session, odd i a connection on a recent one."""
        if i % 2 == 0 or not self.sessions:
            await self.create_session(tally, start)
        else:
            await self.create_connection(self.sessions[-1], tally, start)


async def closed_loop(driver: Driver, concurrency: int, seconds: float) -> Tally:
    tally = Tally()
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            await driver.pair(tally)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tally


async def open_loop(
    rate: float, seconds: float, unit: Callable[[int, Tally, float], Awaitable[None]]
) -> tuple[Tally, float]:
    """Start ``unit`` at ``rate`` per second for ``seconds``; returns the tally and the rate
    actually offered (the generator may fall behind at very high rates)."""
    tally = Tally()
    tasks: set[asyncio.Task[None]] = set()
    n = int(rate * seconds)
    t0 = time.perf_counter()
    for i in range(n):
        target = t0 + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(unit(i, tally, target))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    offered = n / max(time.perf_counter() - t0, 1e-9)
    if tasks:
        await asyncio.wait(tasks, timeout=30)
    return tally, offered


class RawFleet:
    """A lean HTTP/1.1 keep-alive load generator for the overload phase.

    The aiohttp client costs more CPU per request than the server does, so on a 2-core box it
    cannot offer twice the server's capacity. This one writes pre-encoded requests over
    ``connections`` raw asyncio streams and parses only the status line, two headers and, for
    a new session, its id. Requests are tickets put on a queue at the target rate (open loop);
    each connection takes the next ticket when its previous answer is in, so latency counts
    from the ticket's scheduled time, including any wait for a free connection.
    """

    def __init__(self, base: str, connections: int) -> None:
        host_port = base.removeprefix("http://")
        self.host, port = host_port.split(":")
        self.port = int(port)
        self.connections = connections
        auth = HEADERS["Authorization"]
        head = f"Host: {host_port}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n"
        self._session_req = (
            f"POST /openvidu/api/sessions HTTP/1.1\r\n{head}Content-Length: 2\r\n\r\n{{}}"
        ).encode()
        conn_body = b'{"role":"PUBLISHER","data":"bench"}'
        self._conn_head = head.encode() + b"Content-Length: %d\r\n\r\n" % len(conn_body)
        self._conn_body = conn_body
        self.session_id = b""

    def _request(self, i: int) -> tuple[bytes, bool]:
        if i % 2 == 0 or not self.session_id:
            return self._session_req, True
        line = b"POST /openvidu/api/sessions/" + self.session_id + b"/connection HTTP/1.1\r\n"
        return line + self._conn_head + self._conn_body, False

    async def run(self, rate: float, seconds: float, drain_s: float) -> tuple[Tally, float, int]:
        """Offer ``rate`` req/s for ``seconds``; returns the tally, the offered rate and how
        many tickets were still unsent when the drain deadline passed."""
        tally = Tally()
        tickets: asyncio.Queue[tuple[int, float]] = asyncio.Queue()

        async def worker() -> None:
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                while True:
                    i, target = await tickets.get()
                    payload, is_session = self._request(i)
                    sent = time.perf_counter()
                    writer.write(payload)
                    head = await reader.readuntil(b"\r\n\r\n")
                    status = head[9:12].decode()
                    lower = head.lower()
                    at = lower.find(b"content-length:")
                    length = int(lower[at + 15 : lower.find(b"\r\n", at)]) if at >= 0 else 0
                    body = await reader.readexactly(length) if length else b""
                    if status in ("429", "503") and b"retry-after:" not in lower:
                        tally.missing_retry_after += 1
                    if is_session and status == "200":
                        self.session_id = body[7 : body.index(b'"', 7)]
                    now = time.perf_counter()
                    tally.record(status, now - target)
                    tally.service.append(now - sent)
                    tickets.task_done()
            except (OSError, asyncio.IncompleteReadError) as exc:
                tally.record(f"error:{type(exc).__name__}", 0.0)
            finally:
                writer.close()

        workers = [asyncio.create_task(worker()) for _ in range(self.connections)]
        n = int(rate * seconds)
        t0 = time.perf_counter()
        for i in range(n):
            target = t0 + i / rate
            delay = target - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tickets.put_nowait((i, target))
        offered = n / max(time.perf_counter() - t0, 1e-9)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(tickets.join(), drain_s)
        unsent = tickets.qsize()
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        return tally, offered, unsent


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, object]:
    server = Server.spawn(args.store, args.max_inflight)
    pid = server.proc.pid
    pinned = not args.no_pin and len(os.sched_getaffinity(0)) >= 2
    if pinned:  # the server on one core, this generator on another
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(pid, {cores[0]})
        os.sched_setaffinity(0, {cores[1]})
    results: dict[str, object] = {"store": args.store, "pinned": pinned}
    try:
        await server.ready()
        timeout = aiohttp.ClientTimeout(total=15)
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            driver = Driver(http, server.url)
            await closed_loop(driver, args.concurrency, args.warmup)

            cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            tally = await closed_loop(driver, args.concurrency, args.duration)
            cpu1, t1 = cpu_seconds(pid), time.perf_counter()
            ok = tally.statuses["200"]
            total = sum(tally.statuses.values())
            rps = ok / (t1 - t0)
            results["throughput"] = {
                "requests_per_s": round(rps),
                "server_cpu_us_per_request": round((cpu1 - cpu0) / max(total, 1) * 1e6, 1),
                "server_cpu_share": round((cpu1 - cpu0) / (t1 - t0), 2),
                "statuses": dict(tally.statuses),
                "p50_ms": round(pct(tally.latencies, 0.5) * 1e3, 2),
                "p99_ms": round(pct(tally.latencies, 0.99) * 1e3, 2),
            }

            lat, offered = await open_loop(args.rate, args.latency_duration, driver.one_of_pair)
            results["fixed_rate"] = {
                "rate": args.rate,
                "offered": round(offered),
                "p50_ms": round(pct(lat.latencies, 0.5) * 1e3, 2),
                "p90_ms": round(pct(lat.latencies, 0.9) * 1e3, 2),
                "p99_ms": round(pct(lat.latencies, 0.99) * 1e3, 2),
                "max_ms": round(max(lat.latencies, default=float("nan")) * 1e3, 2),
                "statuses": dict(lat.statuses),
            }

            # overload: keep-alive clients offering twice what the server served above
            over_rate = 2 * max(rps, args.rate)
            fleet = RawFleet(server.url, args.overload_connections)
            cpu0, t0 = cpu_seconds(pid), time.perf_counter()
            over, offered, unsent = await fleet.run(
                over_rate, args.overload_duration, args.overload_duration
            )
            cpu1, t1 = cpu_seconds(pid), time.perf_counter()
            server_other = {
                s: n
                for s, n in over.statuses.items()
                if s.isdigit() and s not in ("200", "429", "503") and s.startswith("5")
            }
            results["overload"] = {
                "target_rate": round(over_rate),
                "offered": round(offered),
                "connections": args.overload_connections,
                "statuses": dict(over.statuses),
                "unsent_at_deadline": unsent,
                "served_200_per_s": round(over.statuses["200"] / (t1 - t0)),
                "server_cpu_share": round((cpu1 - cpu0) / (t1 - t0), 2),
                "shed_without_retry_after": over.missing_retry_after,
                "server_other_5xx": server_other,
                "p50_ms": round(pct(over.latencies, 0.5) * 1e3, 2),
                "p99_ms": round(pct(over.latencies, 0.99) * 1e3, 2),
                "served_p50_ms": round(pct(over.served, 0.5) * 1e3, 2),
                "served_p99_ms": round(pct(over.served, 0.99) * 1e3, 2),
                "on_connection_p50_ms": round(pct(over.service, 0.5) * 1e3, 2),
                "on_connection_p99_ms": round(pct(over.service, 0.99) * 1e3, 2),
            }
            results["server_alive"] = server.proc.poll() is None
            async with http.get(server.url + "/health") as r:
                results["health_after"] = r.status
    finally:
        server.stop()
    return results


def report(r: dict[str, object]) -> None:
    tp = r["throughput"]
    fr = r["fixed_rate"]
    ov = r["overload"]
    assert isinstance(tp, dict) and isinstance(fr, dict) and isinstance(ov, dict)
    print(f"store: {r['store']}, pinned to separate cores: {r['pinned']}")
    print(
        f"throughput (closed loop): {tp['requests_per_s']} req/s, "
        f"server CPU {tp['server_cpu_us_per_request']} µs/request "
        f"({tp['server_cpu_share']:.0%} of a core), p50 {tp['p50_ms']} ms, p99 {tp['p99_ms']} ms, "
        f"statuses {tp['statuses']}"
    )
    print(
        f"fixed {fr['rate']} req/s (offered {fr['offered']}): p50 {fr['p50_ms']} ms, "
        f"p90 {fr['p90_ms']} ms, p99 {fr['p99_ms']} ms, max {fr['max_ms']} ms, "
        f"statuses {fr['statuses']}"
    )
    print(
        f"overload at {ov['target_rate']} req/s (offered {ov['offered']}): statuses "
        f"{ov['statuses']} (unsent at the drain deadline {ov['unsent_at_deadline']}), "
        f"200s served {ov['served_200_per_s']}/s (server "
        f"{ov['server_cpu_share']:.0%} of a core), shed without Retry-After "
        f"{ov['shed_without_retry_after']}, other 5xx {ov['server_other_5xx'] or 'none'}, "
        f"p50 {ov['p50_ms']} ms, p99 {ov['p99_ms']} ms from scheduled start (served 200s: "
        f"p50 {ov['served_p50_ms']} ms, p99 {ov['served_p99_ms']} ms); on the "
        f"connection p50 {ov['on_connection_p50_ms']} ms, p99 {ov['on_connection_p99_ms']} ms "
        f"({ov['connections']} client connections)"
    )
    print(f"server alive after overload: {r['server_alive']}, /health {r['health_after']}")
    print("JSON " + json.dumps(r))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--latency-duration", type=float, default=10.0)
    p.add_argument("--overload-duration", type=float, default=6.0)
    p.add_argument("--max-inflight", type=int, default=256)
    p.add_argument("--overload-connections", type=int, default=512)
    p.add_argument("--quick", action="store_true", help="short phases (≈20 s)")
    p.add_argument("--no-pin", action="store_true", help="do not pin server and generator to cores")
    p.add_argument("--asyncio", action="store_true", help="plain asyncio loop in the generator")
    args = p.parse_args()
    if args.quick:
        args.warmup, args.duration, args.latency_duration, args.overload_duration = 1, 4, 4, 3
    if not args.asyncio:
        with contextlib.suppress(ImportError):
            import uvloop

            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    report(asyncio.run(run(args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
