"""Event hub benchmark: throughput, latency, CPU per event, memory per idle connection.

Run: ``.venv/bin/python bench/hub.py`` (about a minute; ``--quick`` for a smoke run).

A real ``vidhub serve`` runs as a child process on loopback; the clients are raw socket.io 0.9
over aiohttp in this process (cheaper than ftrack_api's threads, so the server is what is
measured). Server CPU comes from ``/proc/<pid>/stat`` (utime+stime) and memory from
``/proc/<pid>/status`` (VmRSS). The hub's publish path alone is also timed in-process with
``resource.getrusage`` on in-memory outboxes.

Figures:

1. filtered deliveries/s: 40 subscriber sockets, each with one matching and four
   non-matching subscriptions; one publisher pipelines events (64 unacked at most); counted
   as event frames received by the subscribers.
2. p50/p99 publish-to-deliver latency with the publisher paced at 70 % of the rate of (1),
   timed at every 10th subscriber (all 40 still receive everything).
3. CPU-µs per published event with 10 000 subscriptions of which 100 match (100 sockets x
   100 subscriptions; one matching each): server process CPU over the run / events, and the
   in-process hub publish path (routing, encoding once, queueing to 100 outboxes).
4. memory per idle connection: server RSS growth over 1000 connected sockets, each with one
   subscription (the reply subscriber every ftrack client registers).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from vidhub.hub import Hub, HubLimits  # noqa: E402

SECRET = "bench-secret"
AUTH = {"ftrack-user": "bench", "ftrack-api-key": SECRET}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------------- server process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENVIDU_", "VIDHUB_"))}
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
            SECRET,
            "--store",
            "memory",
            "--data-dir",
            str(tmp),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if PIN and len(os.sched_getaffinity(0)) >= 2:
        # server on one core, load generator on the other: they stop stealing from each other
        os.sched_setaffinity(proc.pid, {0})
        os.sched_setaffinity(0, {1})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


# ---------------------------------------------------------------------- raw client


def event_frame(ack: int, topic: str, data: dict[str, Any]) -> str:
    ev = {
        "id": f"b{ack}",
        "data": data,
        "topic": topic,
        "sent": None,
        "source": {"id": "bench"},
        "target": "",
        "inReplyToEvent": None,
    }
    return f"5:{ack}+::" + orjson.dumps({"name": "ftrack.event", "args": [ev]}).decode()


def sub_frame(ack: int, sub_id: str, expr: str) -> str:
    return event_frame(
        ack, "ftrack.meta.subscribe", {"subscriber": {"id": sub_id}, "subscription": expr}
    )


class RawWs(asyncio.Protocol):
    """A minimal WebSocket client: counting frames here costs far less than aiohttp's reader,
    so the bench process does not hide the server's speed. Frames out are masked with a zero
    key (valid, and the XOR is a no-op)."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.upgraded = False
        self.opened = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            assert buf.startswith(b"HTTP/1.1 101"), bytes(buf[:40])
            del buf[: end + 4]
            self.upgraded = True
        pos, size, conn = 0, len(buf), self.conn
        while size - pos >= 2:
            n = buf[pos + 1] & 0x7F
            off = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                off = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                off = pos + 10
            if size < off + n:
                break
            if buf[pos] & 0x0F == 1:
                conn.on_text(buf, off, off + n)
            pos = off + n
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed"))

    def send_text(self, text: str) -> None:
        data = text.encode()
        n = len(data)
        if n < 126:
            head = bytes([0x81, 0x80 | n])
        elif n < 65536:
            head = bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
        else:
            head = bytes([0x81, 0xFF]) + n.to_bytes(8, "big")
        assert self.transport is not None
        self.transport.write(head + b"\0\0\0\0" + data)

    async def send_str(self, text: str) -> None:
        self.send_text(text)

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.write(b"\x88\x82\0\0\0\0\x03\xe8")
            self.transport.close()


@dataclass
class Conn:
    ws: RawWs = field(init=False)
    received: int = 0
    acked: int = 0
    latencies: list[int] = field(default_factory=list)
    measure: bool = False
    acked_event: asyncio.Event = field(default_factory=asyncio.Event)

    def on_text(self, buf: bytearray, start: int, end: int) -> None:
        head = bytes(buf[start : start + 4])
        if head == b"5:::":
            self.received += 1
            TALLY.received += 1
            if TALLY.waits:
                TALLY.check()
            if self.measure:
                i = buf.find(b'"t":', start, end)
                if i >= 0:
                    j = k = i + 4
                    while 48 <= buf[k] <= 57:
                        k += 1
                    self.latencies.append(time.perf_counter_ns() - int(buf[j:k]))
        elif head == b"6:::":
            self.acked += 1
            TALLY.acked += 1
            if TALLY.waits:
                TALLY.check()
            self.acked_event.set()
        elif head[:3] == b"1::":
            if not self.ws.opened.done():
                self.ws.opened.set_result(None)
        elif head == b"2::":
            self.ws.send_text("2:::")


async def connect(http: aiohttp.ClientSession, port: int) -> Conn:
    async with http.get(f"http://127.0.0.1:{port}/socket.io/1/", headers=AUTH) as resp:
        sid = (await resp.text()).split(":")[0]
    conn = Conn()
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(lambda: RawWs(conn), "127.0.0.1", port)
    conn.ws = proto
    proto.transport.write(  # type: ignore[union-attr]
        (
            f"GET /socket.io/1/websocket/{sid} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await asyncio.wait_for(proto.opened, 10)
    return conn


async def reader(conn: Conn) -> None:
    """Frames are handled as they arrive (RawWs); this only keeps the old task shape."""
    await asyncio.Event().wait()


async def subscribe_all(conn: Conn, exprs: list[str], prefix: str) -> None:
    start = conn.acked
    for n, expr in enumerate(exprs):
        await conn.ws.send_str(sub_frame(n + 1, f"{prefix}-{n}", expr))
    while conn.acked < start + len(exprs):
        conn.acked_event.clear()
        await conn.acked_event.wait()


async def publish_pipelined(
    pub: Conn, topic: str, count: int, window: int, paced_rate: float | None = None
) -> float:
    """Publish ``count`` events with at most ``window`` unacked; returns elapsed seconds."""
    start_ack = pub.acked
    t0 = time.perf_counter()
    for n in range(count):
        while n - (pub.acked - start_ack) >= window:
            pub.acked_event.clear()
            await pub.acked_event.wait()
        if paced_rate is not None:
            due = t0 + n / paced_rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        await pub.ws.send_str(event_frame(n, topic, {"t": time.perf_counter_ns(), "n": n}))
    while pub.acked - start_ack < count:
        pub.acked_event.clear()
        await pub.acked_event.wait()
    return time.perf_counter() - t0


class Tally:
    """Frames received and acks seen over all sockets; wakes a waiter at its threshold only."""

    def __init__(self) -> None:
        self.received = 0
        self.acked = 0
        self.waits: list[tuple[str, int, asyncio.Future[None]]] = []

    def check(self) -> None:
        for item in list(self.waits):
            attr, target, fut = item
            if getattr(self, attr) >= target:
                self.waits.remove(item)
                if not fut.done():
                    fut.set_result(None)

    async def wait(self, attr: str, target: int, limit_s: float) -> None:
        if getattr(self, attr) >= target:
            return
        fut = asyncio.get_running_loop().create_future()
        item = (attr, target, fut)
        self.waits.append(item)
        try:
            await asyncio.wait_for(fut, limit_s)
        except TimeoutError:
            print(f"warning: {attr} reached {getattr(self, attr)} of {target}", file=sys.stderr)
        finally:
            if item in self.waits:
                self.waits.remove(item)


async def wait_received(conns: list[Conn], expected: int, limit_s: float) -> None:
    """Wait until ``conns`` together received ``expected`` events (they are the only
    subscribers in each scenario, so the global tally is theirs)."""
    start = sum(c.received for c in conns)
    await TALLY.wait("received", TALLY.received + expected - start, limit_s)


# ---------------------------------------------------------------------- scenarios


async def throughput_and_latency(port: int, pid: int, quick: bool) -> dict[str, float]:
    n_subs = 40
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        subs = [await connect(http, port) for _ in range(n_subs)]
        pub = await connect(http, port)
        tasks = [asyncio.create_task(reader(c)) for c in [*subs, pub]]
        for i, c in enumerate(subs):
            await subscribe_all(
                c,
                [
                    "topic=bench.hit",
                    f"topic=bench.miss.{i}",
                    "topic=bench.other and data.n=1",
                    "data.kind=zzz*",
                    f"topic=bench.hit and data.x=never{i}",
                ],
                f"s{i}",
            )
        # warm-up, then the measured run
        await publish_pipelined(pub, "bench.hit", 300, 64)
        await wait_received(subs, 300 * n_subs, 10)
        count = 1000 if quick else 6000
        base = sum(c.received for c in subs)
        cpu0 = cpu_seconds(pid)
        t0 = time.perf_counter()
        await publish_pipelined(pub, "bench.hit", count, 64)
        await wait_received(subs, base + count * n_subs, 30)
        elapsed = time.perf_counter() - t0
        server_busy = (cpu_seconds(pid) - cpu0) / elapsed
        delivered = sum(c.received for c in subs) - base
        rate = delivered / elapsed
        pub_rate = count / elapsed
        # latency at 70 % of the measured publish rate
        for c in subs[::10]:  # a sample keeps the client's parsing off the critical path
            c.measure = True
        lat_count = 600 if quick else 3000
        base = sum(c.received for c in subs)
        await publish_pipelined(pub, "bench.hit", lat_count, 1_000_000, paced_rate=0.7 * pub_rate)
        await wait_received(subs, base + lat_count * n_subs, 30)
        lats = sorted(x for c in subs for x in c.latencies)
        for t in tasks:
            t.cancel()
        for c in [*subs, pub]:
            await c.ws.close()
    return {
        "deliveries_per_s": rate,
        "server_busy": server_busy,
        "publishes_per_s": pub_rate,
        "lat_rate": 0.7 * pub_rate,
        "p50_ms": lats[len(lats) // 2] / 1e6,
        "p99_ms": lats[int(len(lats) * 0.99)] / 1e6,
        "lat_samples": len(lats),
    }


async def server_cpu_per_event(port: int, pid: int, quick: bool) -> dict[str, float]:
    n_conns, per_conn = 100, 100
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        conns = [await connect(http, port) for _ in range(n_conns)]
        pub = await connect(http, port)
        tasks = [asyncio.create_task(reader(c)) for c in [*conns, pub]]
        for i, c in enumerate(conns):
            exprs = (
                ["topic=bench.cpu"]
                + [f"topic=bench.unrelated.{i}.{k}" for k in range(per_conn - 2)]
                + [f"data.kind=z{i}*"]
            )
            await subscribe_all(c, exprs, f"c{i}")
        await publish_pipelined(pub, "bench.cpu", 200, 64)
        await wait_received(conns, 200 * n_conns, 10)
        count = 500 if quick else 3000
        base = sum(c.received for c in conns)
        cpu0 = cpu_seconds(pid)
        await publish_pipelined(pub, "bench.cpu", count, 64)
        await wait_received(conns, base + count * n_conns, 30)
        cpu1 = cpu_seconds(pid)
        for t in tasks:
            t.cancel()
        for c in [*conns, pub]:
            await c.ws.close()
    return {"server_us_per_event": (cpu1 - cpu0) / count * 1e6, "events": count}


def inprocess_publish_path(quick: bool) -> dict[str, float]:
    class Null:
        __slots__ = ("n",)

        def __init__(self) -> None:
            self.n = 0

        def send(self, frame: str) -> bool:
            self.n += 1
            return True

        def close(self, reason: str) -> None:
            pass

    hub = Hub(limits=HubLimits(max_subscriptions=1000))
    pub = hub.open("pub", "bench", Null())
    for i in range(100):
        s = hub.open(f"s{i}", "bench", Null())
        sub = {"topic": "ftrack.meta.subscribe", "data": {}}
        for k in range(100):
            if k == 0:
                expr = "topic=bench.cpu"
            elif k == 99:
                expr = f"data.kind=z{i}*"
            else:
                expr = f"topic=bench.unrelated.{i}.{k}"
            sub["data"] = {"subscriber": {"id": f"{i}-{k}"}, "subscription": expr}
            assert hub.handle(s, [dict(sub)]).success
    assert hub.subscription_count == 10_000
    count = 5000 if quick else 30000
    events = [
        orjson.loads(event_frame(n, "bench.cpu", {"t": n, "n": n}).split("::", 1)[1])["args"]
        for n in range(count)
    ]
    gc.collect()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for args in events:
        hub.handle(pub, args)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    used = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    assert hub.delivered == count * 100, hub.delivered
    return {"hub_us_per_event": used / count * 1e6, "events": count}


async def memory_per_idle_connection(port: int, pid: int, quick: bool) -> dict[str, float]:
    n = 200 if quick else 1000
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        warm = [await connect(http, port) for _ in range(20)]  # first-use allocations
        await asyncio.sleep(0.5)
        before = rss_bytes(pid)
        conns = [await connect(http, port) for _ in range(n)]
        tasks = [asyncio.create_task(reader(c)) for c in conns]
        acked0 = TALLY.acked
        for i, c in enumerate(conns):
            await c.ws.send_str(sub_frame(1, f"reply-{i}", "topic=ftrack.meta.reply"))
        await TALLY.wait("acked", acked0 + n, 30)
        await asyncio.sleep(0.5)
        after = rss_bytes(pid)
        for t in tasks:
            t.cancel()
        for c in [*conns, *warm]:
            await c.ws.close()
    return {"bytes_per_conn": (after - before) / n, "conns": n}


async def main_async(quick: bool) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(Path(tmp))
        try:
            # memory first, on a fresh server: later phases leave freed arenas to reuse
            mem = await memory_per_idle_connection(port, proc.pid, quick)
            tp = await throughput_and_latency(port, proc.pid, quick)
            cpu = await server_cpu_per_event(port, proc.pid, quick)
        finally:
            proc.terminate()
            proc.wait(10)
    hub = inprocess_publish_path(quick)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    print(f"cpus: {os.cpu_count()}  python: {sys.version.split()[0]}")
    print(
        f"filtered deliveries/s: {tp['deliveries_per_s']:,.0f} "
        f"({tp['publishes_per_s']:,.0f} publishes/s x 40 subscribers; server used "
        f"{tp['server_busy']:.0%} of a core)  "
        f"[goal >= 100k: {verdict(tp['deliveries_per_s'] >= 100_000)}]"
    )
    print(
        f"latency at {tp['lat_rate']:,.0f} publishes/s (70 %): p50 {tp['p50_ms']:.2f} ms, "
        f"p99 {tp['p99_ms']:.2f} ms over {tp['lat_samples']:,} deliveries  "
        f"[goal p99 <= 50 ms: {verdict(tp['p99_ms'] <= 50)}]"
    )
    print(
        f"10k subscriptions, 100 matching: hub publish path {hub['hub_us_per_event']:.1f} "
        f"CPU-us/event (in-process getrusage)  "
        f"[goal <= 50 us: {verdict(hub['hub_us_per_event'] <= 50)}]"
    )
    print(
        f"10k subscriptions, 100 matching: whole server {cpu['server_us_per_event']:.1f} "
        f"CPU-us/event incl. 100 socket writes (/proc/<pid>/stat)"
    )
    print(
        f"memory per idle connection: {mem['bytes_per_conn'] / 1024:.1f} kB RSS "
        f"over {mem['conns']:.0f} sockets  [goal <= 30 kB: "
        f"{verdict(mem['bytes_per_conn'] <= 30 * 1024)}]"
    )


TALLY = Tally()
PIN = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (smoke run)")
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the server and the clients to cores"
    )
    args = parser.parse_args()
    global PIN
    PIN = not args.no_pin
    asyncio.run(main_async(args.quick))


if __name__ == "__main__":
    main()
