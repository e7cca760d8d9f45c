"""Call-page benchmark: load size and time to first remote frame for a deep-link join.

Starts ``vidhub serve`` (memory store, media on 127.0.0.1) and a Python ``Participant``
publishing aiortc's test video in room ``bench``, then opens ``/?room=bench&name=b<i>`` in a
fresh headless Chromium (Debian ``/usr/bin/chromium`` through ``tests/web/driver.mjs``) for
each of ``--runs`` joins, one at a time, and prints:

- the page's load size (the document plus every asset it fetched: bytes on the wire and
  decoded), and the number of requests;
- load time (navigation start -> ``load`` event) and time to the first remote video frame
  (navigation start -> the first frame of the publisher's video painted in the page, from
  ``requestVideoFrameCallback``), as p50 / max over the runs;
- the server's CPU-ms per join (page, token, signalling, publish, subscribe) from its own
  ``/proc/<pid>/stat``, between before the first page and after the last.

Bounded: about 20 s with the defaults. Usage: ``.venv/bin/python bench/web.py [--runs N]``.
Needs ``make test-deps`` (chromium and the npm peers).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.proc import ServerProcess  # noqa: E402
from tests.web.pages import Pages  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")

#: JS: what the page fetched and when it first showed remote video.
MEASURE = """(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource');
  const all = [nav, ...res];
  return {
    requests: all.length,
    transfer: all.reduce((a, e) => a + (e.transferSize || 0), 0),
    decoded: all.reduce((a, e) => a + (e.decodedBodySize || 0), 0),
    loadMs: nav.loadEventEnd,
    firstFrameMs: window.vidhubCall.firstRemoteFrameMs,
    marks: Object.fromEntries(performance.getEntriesByType('mark')
      .map((m) => [m.name.replace('vidhub:', ''), Math.round(m.startTime)])),
    scriptMs: Math.round(res.find((e) => e.name.endsWith('/call.js')).responseEnd),
  };
})()"""


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def token(srv: ServerProcess, room: str) -> str:
    requests.post(f"{srv.api}/sessions", json={"customSessionId": room}, auth=srv.auth, timeout=5)
    r = requests.post(f"{srv.api}/sessions/{room}/connection", json={}, auth=srv.auth, timeout=5)
    r.raise_for_status()
    tok: str = r.json()["token"]
    return tok


async def run(runs: int) -> None:
    from aiortc import VideoStreamTrack

    from vidhub.client import Participant

    with tempfile.TemporaryDirectory() as tmp:
        srv = ServerProcess(
            Path(tmp) / "data",
            extra_env={"VIDHUB_ICE_HOST_ADDRESSES": "127.0.0.1"},
            extra_args=["--store", "memory"],
        ).start()
        pages = await Pages(Path(tmp) / "chromium.log").start()
        bot = Participant(
            await asyncio.to_thread(token, srv, "bench"),
            metadata='{"clientData": "publisher"}',
            host_addresses=["127.0.0.1"],
        )
        try:
            await bot.join()
            await bot.publish(video=VideoStreamTrack())
            assert srv.proc is not None
            # one warm-up join (first Chromium start, first page load into the OS cache)
            await pages.open("warm", f"{srv.url}/?room=bench&name=warm")
            await pages.wait(
                "warm", "window.vidhubCall && window.vidhubCall.firstRemoteFrameMs", 30
            )
            await pages.close("warm")
            cpu0 = cpu_seconds(srv.proc.pid)
            results = []
            for i in range(runs):
                name = f"b{i}"
                await pages.open(name, f"{srv.url}/?room=bench&name={name}")
                await pages.wait(
                    name, "window.vidhubCall && window.vidhubCall.firstRemoteFrameMs", 30, "a frame"
                )
                results.append(await pages.eval(name, MEASURE))
                await pages.eval(name, "vidhubCall.room.leave().then(() => true)")
                await pages.close(name)
            cpu1 = cpu_seconds(srv.proc.pid)
        finally:
            await bot.leave()
            await pages.stop()
            srv.stop()
            if os.environ.get("VIDHUB_BENCH_SHOW_LOGS"):
                print(srv.log()[-3000:])
                print(pages.log()[-3000:])
            shed = srv.log().count("limit shed hit")
            if shed:
                print(f"note: the server logged {shed} load-shedding lines (503s)")
    first = results[0]
    loads = [r["loadMs"] for r in results]
    frames = [r["firstFrameMs"] for r in results]
    for r in results:
        print(json.dumps({k: r[k] for k in ("loadMs", "firstFrameMs", "scriptMs", "marks")}))
    print()
    print(f"deep-link joins: {runs}, one at a time, fresh Chromium profile each")
    print(
        f"page load size: {first['transfer'] / 1024:.1f} KiB on the wire,"
        f" {first['decoded'] / 1024:.1f} KiB decoded, {first['requests']} requests"
    )
    print(f"load event:        p50 {statistics.median(loads):.0f} ms, max {max(loads):.0f} ms")
    print(
        f"first remote frame: p50 {statistics.median(frames):.0f} ms,"
        f" max {max(frames):.0f} ms after navigation start (goal <= 1000 ms)"
    )
    print(f"server CPU per join: {1000 * (cpu1 - cpu0) / runs:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.runs))
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"load average: {load} at {time.strftime('%H:%M UTC', time.gmtime())}")


if __name__ == "__main__":
    main()
