"""Recording benchmark: server CPU per recorded INDIVIDUAL stream-second, COMPOSED speed.

Run:  .venv/bin/python bench/recording.py            (about 1 minute; stops by itself)
      .venv/bin/python bench/recording.py --quick    (about 30 s)

1. INDIVIDUAL. A **server process** (``--server``) hosts one ``vidhub.sfu.router.Router``;
   its own ``getrusage`` is the CPU measured. An agent process of ``bench/sfu.py`` publishes
   N streams of replayed, pre-encoded VP8 640x480 30 fps (~700 kbit/s) + Opus (no live
   encoding). The server's CPU is measured over a window while it only ingests, then over
   a window of the same length while it also records every stream into WebM
   (``Router.start_recording``: depacketise + mux, no decoding). Printed: the marginal
   server CPU per recorded stream-second, as a percentage of one core (goal <= 2 %), and
   what the files hold.
2. COMPOSED. The compositor of ``vidhub.recording.composer`` is driven as fast as it goes,
   in this process, over 4 streams of the same VP8 640x480 30 fps + Opus input: decode
   everything, lay out the BEST_FIT grid at 1280x720 25 fps, mix audio, encode H.264/AAC
   MP4. Printed: the real-time factor (media seconds per wall second; >= 1.0 means it keeps
   up live) and the CPU seconds per media second (the factor on an uncontended core: a
   shared machine stretches the wall clock, not the CPU time).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import sfu as sfu_bench  # noqa: E402  (bench/sfu.py: capture, agents, control client)

FPS = sfu_bench.FPS


# ---------------------------------------------------------------------------------------
# server process (INDIVIDUAL)


async def run_server(port_file: Path) -> None:
    from vidhub.sfu.router import Router

    router = Router(host_addresses=["127.0.0.1"])
    done = asyncio.Event()

    def cpu() -> dict[str, float]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        return {"cpu": ru.ru_utime + ru.ru_stime, "t": time.monotonic()}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def one(msg: dict[str, Any]) -> None:
            reply: dict[str, Any] = {"rid": msg.get("rid")}
            try:
                op = msg["op"]
                if op == "publish":
                    reply["sdp"] = await router.publish(msg["id"], msg["sdp"])
                elif op == "stats":
                    reply.update(cpu())
                elif op == "record":
                    for pid in router.producer_ids():
                        await router.start_recording(pid, pid, str(Path(msg["dir"]) / pid))
                elif op == "stop_record":
                    files = []
                    for pid in router.producer_ids():
                        rec = await router.stop_recording(pid)
                        if rec is not None:
                            f = rec.file
                            files.append([f.size, f.video_frames, f.audio_frames, f.duration])
                    reply["files"] = files
                elif op == "quit":
                    await router.close()
                    done.set()
            except Exception as exc:
                reply["error"] = f"{type(exc).__name__}: {exc}"
            writer.write(json.dumps(reply).encode() + b"\n")

        try:
            while line := await reader.readline():
                await one(json.loads(line))
        except (asyncio.CancelledError, ConnectionError):
            pass

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 22)
    await asyncio.to_thread(port_file.write_text, str(srv.sockets[0].getsockname()[1]))
    await done.wait()
    srv.close()


def call(port: int, **msg: Any) -> dict[str, Any]:
    import socket

    msg["rid"] = 1
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(json.dumps(msg).encode() + b"\n")
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    out: dict[str, Any] = json.loads(buf)
    if "error" in out:
        raise RuntimeError(out["error"])
    return out


def start_server(tmp: Path) -> tuple[Any, int]:
    import subprocess

    port_file = tmp / "port"
    proc = subprocess.Popen([sys.executable, __file__, "--server", str(port_file)])
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("server did not start")
        time.sleep(0.05)  # polling a child's port file: no event to wait on
    return proc, int(port_file.read_text())


def measure(port: int, seconds: float) -> float:
    """Server CPU seconds per wall second over a window."""
    a = call(port, op="stats")
    time.sleep(seconds)
    b = call(port, op="stats")
    return (b["cpu"] - a["cpu"]) / (b["t"] - a["t"])


def scenario_individual(tmp: Path, cap: Path, streams: int, win: float) -> dict[str, Any]:
    proc, port = start_server(tmp)
    agent = sfu_bench.Agent(
        {
            "port": port,
            "capture": str(cap),
            "publishers": [{"room": "r", "id": f"pub{i}"} for i in range(streams)],
            "subscriptions": [],
        }
    )
    try:
        agent.send("publish")
        agent.recv()
        time.sleep(1.0)
        ingest = [measure(port, win) for _ in range(2)]
        call(port, op="record", dir=str(tmp / "rec"))
        time.sleep(1.0)
        recording = [measure(port, win) for _ in range(2)]
        files = call(port, op="stop_record")["files"]
    finally:
        agent.stop()
        try:
            call(port, op="quit")
            proc.wait(30)
        except Exception:
            proc.kill()
            proc.wait()
    base, rec = min(ingest), min(recording)
    return {
        "streams": streams,
        "ingest_pct": 100 * base,
        "recording_pct": 100 * rec,
        "per_stream_pct": 100 * (rec - base) / streams,
        "runs": [100 * x for x in ingest + recording],
        "files": files,
    }


# ---------------------------------------------------------------------------------------
# COMPOSED throughput (in this process)


def scenario_composed(tmp: Path, media: dict[str, Any], seconds: float) -> dict[str, Any]:
    from vidhub.recording.composer import RATE, Composer, _Stream

    comp = Composer(str(tmp / "feed.sock"), str(tmp / "grid.mp4"), 1280, 720, 25, True, True)
    streams = []
    for i in range(4):
        st = _Stream(sock=None, order=i)  # type: ignore[arg-type]
        comp._hello(st, json.dumps({"stream": f"s{i}", "video": "VP8", "audio": True}).encode())
        comp.streams[i] = st  # type: ignore[index]  (keyed by socket in the live process)
        streams.append(st)
    video, audio = media["video"], media["audio"]
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    out_frames = int(seconds * 25)
    in_video = in_audio = 0
    for tick in range(out_frames):
        t = tick / 25
        while in_video / FPS <= t:  # decode the input due by this output tick
            data, key = video[in_video % len(video)]
            for st in streams:
                comp._decode_video(st, data, key)
            in_video += 1
        while in_audio * 960 / RATE <= t:
            for st in streams:
                comp._decode_audio(st, audio[in_audio % len(audio)])
            in_audio += 1
        while comp.audio_samples / RATE <= t:
            comp._mix()
        comp._compose(tick)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    comp.streams = {}
    result = comp._finish(wall)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    return {
        "media_s": seconds,
        "wall_s": wall,
        "rtf": seconds / wall,
        "cpu_per_media_s": cpu / seconds,
        "cpu_rtf": seconds / cpu if cpu else float("inf"),
        "size": result["size"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", metavar="PORT_FILE")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--streams", type=int, default=4)
    args = ap.parse_args()
    if args.server:
        asyncio.run(run_server(Path(args.server)))
        return
    win = 4.0 if args.quick else 8.0
    composed_s = 6.0 if args.quick else 12.0
    with tempfile.TemporaryDirectory(prefix="vidhub-bench-rec-") as d:
        tmp = Path(d)
        cap = tmp / "capture.pkl"
        media = sfu_bench.capture(cap)
        ind = scenario_individual(tmp, cap, args.streams, win)
        print(
            f"INDIVIDUAL: {ind['streams']} x VP8 640x480 30 fps + Opus, {win:.0f} s windows\n"
            f"  server CPU ingest only:      {ind['ingest_pct']:.1f} % of a core\n"
            f"  server CPU while recording:  {ind['recording_pct']:.1f} % of a core\n"
            f"  => per recorded stream:      {ind['per_stream_pct']:.2f} % of a core "
            f"(goal <= 2 %)\n"
            f"  windows (ingest x2, recording x2): "
            + ", ".join(f"{x:.1f}" for x in ind["runs"])
            + "\n  files [bytes, video frames, audio frames, seconds]: "
            + json.dumps(ind["files"])
        )
        comp = scenario_composed(tmp, media, composed_s)
        print(
            f"COMPOSED: 4 x VP8 640x480 30 fps + Opus -> BEST_FIT 1280x720 25 fps H.264/AAC\n"
            f"  {comp['media_s']:.0f} s of media in {comp['wall_s']:.1f} s wall: "
            f"real-time factor {comp['rtf']:.2f}x by wall clock (goal >= 1.0x)\n"
            f"  CPU per media second: {comp['cpu_per_media_s']:.2f} s, i.e. "
            f"{comp['cpu_rtf']:.2f}x real time per core of CPU actually given; "
            f"file {comp['size']} bytes"
        )


if __name__ == "__main__":
    main()
