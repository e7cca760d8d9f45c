"""SFU benchmark: server CPU per forwarded RTP packet, loss, join latency, OpenVidu parity room.

Run:  .venv/bin/python bench/sfu.py            (about 2 minutes; stops by itself)
      .venv/bin/python bench/sfu.py --quick    (smaller, ~40 s)

Layout (all on loopback):

* one **server process** (``--server``) hosts ``vidhub.sfu.router.Router`` objects behind a
  tiny JSON-lines control socket; its own ``getrusage`` is the server CPU measured;
* two **agent processes** (``--agent``) run aiortc bots. Publishers replay VP8 + Opus
  packets captured once at start (aiortc's pre-encoded ``pack()`` path: no live encoding),
  jumping to the next captured keyframe when the server sends a PLI. Subscribers count RTP
  headers straight off the wire (SRTP leaves them in clear) and never decrypt or decode
  media, so the load generators stay light;
* this **orchestrator** drives the scenarios and prints the figures.

Scenarios:

1. fan-out: 1 publisher; a 5 s ingest-only window; then 20 subscribers join at once
   (join latency = subscribe request start -> last packet of the first video frame at the
   bot); then a measurement window. Prints server CPU-us per forwarded packet (all-in and
   marginal over ingest), forwarded packets/s per core, subscriber loss, frozen subscribers.
2. parity: 4 sessions x 7 participants, everyone publishing and subscribing to the six
   others (28 publishers, 168 subscriptions). Prints server CPU, loss, frozen subscribers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import pickle
import resource
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

FPS = 30
VIDEO_TB = Fraction(1, 90000)
AUDIO_TB = Fraction(1, 48000)


# ---------------------------------------------------------------------------------------
# capture (once, in the orchestrator)


def capture(path: Path, seconds: int = 3, bitrate: int = 700_000) -> dict[str, Any]:
    """Encode a synthetic 640x480 VP8 clip (keyframe every 0.5 s) and an Opus tone."""
    import av

    w, h = 640, 480
    cc: Any = av.CodecContext.create("libvpx", "w")
    cc.width, cc.height, cc.pix_fmt = w, h, "yuv420p"
    cc.bit_rate = bitrate
    cc.time_base = Fraction(1, FPS)
    cc.framerate = Fraction(FPS, 1)
    cc.gop_size = FPS // 2
    rate = str(bitrate)
    cc.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": rate,
        "maxrate": rate,
        "bufsize": rate,
    }
    ramp = bytes((x * 255) // (2 * w + 2 * h) for x in range(2 * w + 2 * h))
    video: list[tuple[bytes, bool]] = []
    for i in range(seconds * FPS):
        frame = av.VideoFrame(w, h, "yuv420p")
        luma = bytearray(b"".join(ramp[(y + i * 6) % w : (y + i * 6) % w + w] for y in range(h)))
        bx, by = (i * 7) % (w - 96), (i * 5) % (h - 96)
        for r in range(96):
            s = (by + r) * w + bx
            luma[s : s + 96] = os.urandom(96)
        frame.planes[0].update(bytes(luma))
        for p in frame.planes[1:]:
            p.update(b"\x80" * p.buffer_size)
        frame.pts = i
        video += [(bytes(pkt), bool(pkt.is_keyframe)) for pkt in cc.encode(frame)]
    video += [(bytes(pkt), bool(pkt.is_keyframe)) for pkt in cc.encode(None)]

    ac: Any = av.CodecContext.create("libopus", "w")
    ac.sample_rate = 48000
    ac.layout = "stereo"
    ac.format = "s16"
    ac.bit_rate = 32000
    audio: list[bytes] = []
    for i in range(50):
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        pcm = array("h")
        for n in range(960):
            v = int(8000 * math.sin(2 * math.pi * 440 * (i * 960 + n) / 48000))
            pcm.extend((v, v))
        frame.planes[0].update(pcm.tobytes())
        frame.sample_rate = 48000
        frame.pts = i * 960
        audio += [bytes(pkt) for pkt in ac.encode(frame)]
    data = {"video": video, "audio": audio}
    path.write_bytes(pickle.dumps(data))
    return data


# ---------------------------------------------------------------------------------------
# server process


async def run_server(port_file: Path) -> None:
    from vidhub.sfu.router import Router

    routers: dict[str, Router] = {}

    def router(room: str) -> Router:
        if room not in routers:
            routers[room] = Router(host_addresses=["127.0.0.1"])
        return routers[room]

    def stats() -> dict[str, Any]:
        ru = resource.getrusage(resource.RUSAGE_SELF)
        pin = pout = drop = 0
        for r in routers.values():
            s = r.stats()
            pin += s.packets_in
            pout += s.packets_out
            drop += sum(c.packets_dropped for c in s.consumers)
        return {
            "cpu": ru.ru_utime + ru.ru_stime,
            "t": time.monotonic(),
            "in": pin,
            "out": pout,
            "dropped": drop,
        }

    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def one(msg: dict[str, Any]) -> None:
            reply: dict[str, Any] = {"rid": msg.get("rid")}
            try:
                op = msg["op"]
                if op == "publish":
                    reply["sdp"] = await router(msg["room"]).publish(msg["id"], msg["sdp"])
                elif op == "subscribe":
                    reply["sdp"] = await router(msg["room"]).subscribe(
                        msg["id"], msg["producer"], msg["sdp"]
                    )
                elif op == "stats":
                    reply.update(stats())
                elif op == "quit":
                    for r in routers.values():
                        await r.close()
                    done.set()
            except Exception as exc:
                reply["error"] = f"{type(exc).__name__}: {exc}"
            writer.write(json.dumps(reply).encode() + b"\n")

        tasks: set[asyncio.Task[None]] = set()
        try:
            while line := await reader.readline():
                task = asyncio.ensure_future(one(json.loads(line)))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks, return_exceptions=True)
        except (asyncio.CancelledError, ConnectionError):
            pass  # shutting down

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, limit=1 << 22)
    port = srv.sockets[0].getsockname()[1]
    await asyncio.to_thread(port_file.write_text, str(port))
    await done.wait()
    srv.close()


class Control:
    """Client of the server's control socket (requests may overlap)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.rid = 0
        self.task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, port: int) -> Control:
        r, w = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        return cls(r, w)

    async def _read(self) -> None:
        while line := await self.reader.readline():
            msg = json.loads(line)
            fut = self.waiting.pop(msg["rid"], None)
            if fut is not None and not fut.done():
                fut.set_result(msg)

    async def call(self, **msg: Any) -> dict[str, Any]:
        self.rid += 1
        msg["rid"] = self.rid
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiting[self.rid] = fut
        self.writer.write(json.dumps(msg).encode() + b"\n")
        reply = await asyncio.wait_for(fut, 60)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply

    async def close(self) -> None:
        self.writer.close()
        self.task.cancel()


# ---------------------------------------------------------------------------------------
# agent process: publisher and subscriber bots


class Replay:
    """Paced replay of captured packets as av.Packet (aiortc packetises, never encodes)."""

    def __init__(self, kind: str, frames: list[tuple[bytes, bool]], rate: int, step: int) -> None:
        from aiortc import MediaStreamTrack

        outer = self

        class Track(MediaStreamTrack):
            def __init__(self) -> None:
                super().__init__()
                self.kind = kind

            async def recv(self) -> Any:
                return await outer.next()

        self.track = Track()
        self.frames = frames
        self.rate = rate
        self.step = step
        self.tb = VIDEO_TB if kind == "video" else AUDIO_TB
        self.i = int.from_bytes(os.urandom(2), "big") % len(frames)
        if kind == "video":
            while not frames[self.i][1]:
                self.i = (self.i + 1) % len(frames)
        self.n = 0
        self.t0: float | None = None
        self.want_key = False

    def request_keyframe(self) -> None:
        self.want_key = True

    async def next(self) -> Any:
        import av

        now = time.monotonic()
        if self.t0 is None:
            self.t0 = now
        delay = self.t0 + self.n / self.rate - now
        if delay > 0:
            await asyncio.sleep(delay)
        if self.want_key:
            self.want_key = False
            while not self.frames[self.i][1]:
                self.i = (self.i + 1) % len(self.frames)
        data = self.frames[self.i][0]
        self.i = (self.i + 1) % len(self.frames)
        pkt = av.Packet(data)
        pkt.pts = self.n * self.step
        pkt.time_base = self.tb
        self.n += 1
        return pkt


class WireCounter:
    """Stands in for a subscriber's inbound SRTP session: counts RTP headers, drops payloads.

    RTCP still goes through the real session, so the bot's DTLS/RTCP behaviour is intact.
    """

    def __init__(self, real: Any) -> None:
        self.real = real
        self.streams: dict[int, list[int]] = {}  # ssrc -> [count, max_ext_seq, frames, pt]
        self.first_frame: float | None = None
        self.got_frame = asyncio.Event()

    def unprotect_rtcp(self, data: bytes) -> bytes:
        out: bytes = self.real.unprotect_rtcp(data)
        return out

    def unprotect(self, data: bytes) -> bytes:
        b1 = data[1]
        seq, _ts, ssrc = struct.unpack_from("!HII", data, 2)
        st = self.streams.get(ssrc)
        if st is None:
            st = self.streams[ssrc] = [0, seq, 0, b1 & 0x7F]
        else:
            last = st[1]
            ext = last + (((seq - last) + 0x8000) & 0xFFFF) - 0x8000
            if ext > last:
                st[1] = ext
        st[0] += 1
        if b1 & 0x80 and (b1 & 0x7F) == self.video_pt:
            st[2] += 1
            if self.first_frame is None:
                self.first_frame = time.monotonic()
                self.got_frame.set()
        return b""  # aiortc drops it as a runt packet: nothing parsed, nothing decoded

    video_pt = -1


async def run_agent(cfg: dict[str, Any]) -> None:
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from vidhub.sfu import aiortc_glue

    aiortc_glue.install_host_addresses(["127.0.0.1"])
    media = pickle.loads(await asyncio.to_thread(Path(cfg["capture"]).read_bytes))
    served: dict[str, str] | None = cfg.get("tokens")  # bot id -> token: via vidhub serve
    ctl = await Control.connect(cfg["port"]) if served is None else None
    people: dict[str, Any] = {}  # bot id -> Participant (served mode)
    streams: dict[str, str] = {}  # bot id -> its stream id (served mode)
    rpc_ms: list[float] = []  # receiveVideoFrom round trips (served mode)
    pcs: list[Any] = []
    subs: list[tuple[dict[str, Any], WireCounter, float]] = []
    out = sys.stdout

    def say(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    async def publish(p: dict[str, Any]) -> None:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.append(pc)
        video = Replay("video", media["video"], FPS, 3000)
        audio = Replay("audio", [(a, True) for a in media["audio"]], 50, 960)
        tv = pc.addTransceiver(video.track, direction="sendonly")
        pc.addTransceiver(audio.track, direction="sendonly")
        tv.sender._send_keyframe = video.request_keyframe  # PLI -> jump to a keyframe
        connected = asyncio.Event()

        @pc.on("connectionstatechange")
        def _state() -> None:
            if pc.connectionState == "connected":
                connected.set()

        await pc.setLocalDescription(await pc.createOffer())
        if served is not None:
            from vidhub.client.participant import Participant
            from vidhub.protocol.openvidu_rpc import PublishVideoParams

            who = people[p["id"]] = Participant(served[p["id"]], request_timeout=60)
            await who.join()
            params = PublishVideoParams(
                sdp_offer=pc.localDescription.sdp,
                has_audio=True,
                has_video=True,
                type_of_video="CAMERA",
                frame_rate=FPS,
                video_dimensions='{"width":640,"height":480}',
            )
            res = await who.request("publishVideo", params.to_params())
            streams[p["id"]] = str(res["id"])
            answer = res["sdpAnswer"]
        else:
            assert ctl is not None
            reply = await ctl.call(
                op="publish", room=p["room"], id=p["id"], sdp=pc.localDescription.sdp
            )
            answer = reply["sdp"]
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await asyncio.wait_for(connected.wait(), 30)

    async def subscribe(s: dict[str, Any], stream_ids: dict[str, str]) -> None:
        t0 = time.monotonic()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.append(pc)
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        dtls = pc.getTransceivers()[0].receiver.transport
        counter = WireCounter(None)

        @dtls.on("statechange")
        def _dtls_state() -> None:
            if dtls.state == "connected" and not isinstance(dtls._rx_srtp, WireCounter):
                counter.real = dtls._rx_srtp
                dtls._rx_srtp = counter

        await pc.setLocalDescription(await pc.createOffer())
        if served is not None:
            from vidhub.protocol.openvidu_rpc import ReceiveVideoFromParams

            params = ReceiveVideoFromParams(
                stream_ids[s["producer"]], sdp_offer=pc.localDescription.sdp
            )
            t_rpc = time.monotonic()
            res = await people[s["who"]].request("receiveVideoFrom", params.to_params())
            rpc_ms.append(1000 * (time.monotonic() - t_rpc))
            answer = res["sdpAnswer"]
        else:
            assert ctl is not None
            reply = await ctl.call(
                op="subscribe",
                room=s["room"],
                id=s["id"],
                producer=s["producer"],
                sdp=pc.localDescription.sdp,
            )
            answer = reply["sdp"]
        for line in answer.splitlines():
            if line.startswith("m=video"):
                counter.video_pt = int(line.split()[3])
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        subs.append((s, counter, t0))

    marks: dict[int, tuple[int, int, int]] = {}
    t_mark = 0.0
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        cmd, _, arg = line.strip().partition(" ")
        if cmd == "publish":
            done = await asyncio.gather(
                *(publish(p) for p in cfg["publishers"]), return_exceptions=served is not None
            )
            failed = [repr(r) for r in done if isinstance(r, BaseException)]
            say({"ok": True, "streams": streams, "failed": failed})
        elif cmd == "subscribe":
            ids = json.loads(arg) if arg else {}
            done = await asyncio.gather(
                *(
                    subscribe(s, ids)
                    for s in cfg["subscriptions"]
                    if s["producer"] in ids or not ids
                ),
                return_exceptions=served is not None,
            )
            refused = [repr(r) for r in done if isinstance(r, BaseException)]
            waits = [c.got_frame.wait() for _, c, _ in subs]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waits), 15)
            lat = [c.first_frame - t0 for _, c, t0 in subs if c.first_frame is not None]
            say(
                {
                    "latencies": lat,
                    "no_frame": sum(c.first_frame is None for _, c, _ in subs),
                    "rpc_ms": rpc_ms,
                    "refused": refused,
                }
            )
        elif cmd == "mark":
            t_mark = time.monotonic()
            for i, (_, c, _) in enumerate(subs):
                v = c.streams.get(_video_ssrc(c), [0, 0, 0, 0])
                tot = sum(st[0] for st in c.streams.values())
                exp = sum(st[1] for st in c.streams.values())
                marks[i] = (tot, exp, v[2])
            ru = resource.getrusage(resource.RUSAGE_SELF)
            say({"cpu": ru.ru_utime + ru.ru_stime})
        elif cmd == "report":
            dur = time.monotonic() - t_mark
            rows = []
            for i, (_, c, _) in enumerate(subs):
                v = c.streams.get(_video_ssrc(c), [0, 0, 0, 0])
                tot = sum(st[0] for st in c.streams.values())
                exp = sum(st[1] for st in c.streams.values())
                m = marks.get(i, (0, 0, 0))
                rows.append({"recv": tot - m[0], "expected": exp - m[1], "frames": v[2] - m[2]})
            ru = resource.getrusage(resource.RUSAGE_SELF)
            say({"dur": dur, "subs": rows, "cpu": ru.ru_utime + ru.ru_stime})
        elif cmd == "quit":
            break
    await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)
    await asyncio.gather(*(p.leave() for p in people.values()), return_exceptions=True)
    if ctl is not None:
        await ctl.close()


def _video_ssrc(c: WireCounter) -> int:
    for ssrc, st in c.streams.items():
        if st[3] == c.video_pt:
            return ssrc
    return -1


# ---------------------------------------------------------------------------------------
# orchestrator


class Agent:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--agent", json.dumps(cfg), *LOOP_FLAG],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, cmd: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cmd + "\n")
        self.proc.stdin.flush()

    def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("agent died")
        out: dict[str, Any] = json.loads(line)
        return out

    def stop(self) -> None:
        try:
            self.send("quit")
            self.proc.wait(20)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def everyone(agents: list[Agent], cmd: str) -> list[dict[str, Any]]:
    for a in agents:
        a.send(cmd)
    return [a.recv() for a in agents]


LOOP_FLAG: list[str] = []


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = tmp / "port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--server", str(port_file), *LOOP_FLAG])
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def server_stats(port: int) -> dict[str, Any]:
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b'{"op": "stats", "rid": 1}\n')
        buf = b""
        while not buf.endswith(b"\n"):
            buf += s.recv(65536)
    out: dict[str, Any] = json.loads(buf)
    return out


def stop_server(proc: subprocess.Popen[bytes], port: int) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b'{"op": "quit", "rid": 1}\n')
            s.recv(100)
        proc.wait(30)
    except Exception:
        proc.kill()
        proc.wait()


def window(
    agents: list[Agent], port: int, seconds: float, served: Served | None = None
) -> dict[str, Any]:
    marks = everyone(agents, "mark")
    s0 = served.stats() if served else server_stats(port)
    time.sleep(seconds)
    s1 = served.stats() if served else server_stats(port)
    reports = everyone(agents, "report")
    rows = [r for rep in reports for r in rep["subs"]]
    wall = s1["t"] - s0["t"]
    cpu = s1["cpu"] - s0["cpu"]
    recv = sum(r["recv"] for r in rows)
    # through vidhub serve the server's own counters are per worker: count what arrived
    out_pkts = recv if served else s1["out"] - s0["out"]
    in_pkts = s1["in"] - s0["in"]
    per_process = {
        name: 100 * (s1["procs"][name] - s0["procs"].get(name, 0.0)) / wall
        for name in (s1.get("procs") or {})
    }
    exp = sum(r["expected"] for r in rows)
    dur = statistics.mean(rep["dur"] for rep in reports)
    fps = [r["frames"] / dur for r in rows]
    agent_cpu = [
        100 * (rep["cpu"] - m["cpu"]) / rep["dur"] for m, rep in zip(marks, reports, strict=True)
    ]
    return {
        "agent_cpu": agent_cpu,
        "server_dropped": s1["dropped"] - s0["dropped"],
        "wall": wall,
        "cpu_pct": 100 * cpu / wall,
        "cpu_s": cpu,
        "in_pps": in_pkts / wall,
        "out_pps": out_pkts / wall,
        "us_per_out": 1e6 * cpu / out_pkts if out_pkts else float("nan"),
        "loss_pct": 100 * (1 - recv / exp) if exp else float("nan"),
        "min_fps": min(fps) if fps else float("nan"),
        "frozen": sum(f < FPS / 2 for f in fps),
        "subs": len(rows),
        "per_process_cpu": per_process,
    }


def windows(
    agents: list[Agent], port: int, seconds: float, reps: int, served: Served | None = None
) -> dict[str, Any]:
    """``reps`` back-to-back windows: the median one, plus every run's figures and the worst
    loss / fps / frozen count over all of them."""
    runs = [window(agents, port, seconds, served) for _ in range(reps)]
    med = sorted(runs, key=lambda r: r["us_per_out"])[len(runs) // 2]
    out = dict(med)
    out["us_runs"] = [r["us_per_out"] for r in runs]
    out["cpu_runs"] = [r["cpu_pct"] for r in runs]
    out["loss_pct"] = max(r["loss_pct"] for r in runs)
    out["min_fps"] = min(r["min_fps"] for r in runs)
    out["frozen"] = max(r["frozen"] for r in runs)
    out["server_dropped"] = sum(r["server_dropped"] for r in runs)
    return out


class Served:
    """``vidhub serve --media-workers N`` in a subprocess, measured from /proc.

    Server CPU = the main process plus every media worker (utime + stime of each pid, the
    workers' pids read from ``/health``).
    """

    def __init__(self, workers: int) -> None:
        import requests

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        # The door limits (join deadline, load shedding) are switched off: on a contended box
        # a starved load generator would be refused at the door, and this measures media.
        env = dict(
            os.environ,
            VIDHUB_ICE_HOST_ADDRESSES="127.0.0.1",
            VIDHUB_JOIN_TIMEOUT="0",
            VIDHUB_SHED_BUDGET_MS="0",
        )
        cmd = [sys.executable, "-m", "vidhub", "serve", "--port", str(self.port)]
        cmd += [
            "--store",
            "memory",
            "--media-workers",
            str(workers),
            "--log-level",
            os.environ.get("BENCH_LOG", "warning"),
        ]
        self.proc = subprocess.Popen(cmd, env=env)
        self.base = f"http://127.0.0.1:{self.port}"
        self.http = requests.Session()
        self.http.auth = ("OPENVIDUAPP", "MY_SECRET")
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.http.get(self.base + "/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("vidhub serve did not start")
            time.sleep(0.1)
        self.workers = [
            int(w["pid"])
            for w in self.http.get(self.base + "/health").json().get("mediaWorkers", [])
        ]

    def token(self, session: str) -> str:
        self.http.post(self.base + "/openvidu/api/sessions", json={"customSessionId": session})
        r = self.http.post(f"{self.base}/openvidu/api/sessions/{session}/connection", json={})
        r.raise_for_status()
        tok: str = r.json()["token"]
        return tok

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = self.http.get(self.base + "/health").json()
        return out

    @staticmethod
    def _cpu(pid: int) -> float:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stats(self) -> dict[str, Any]:
        procs = {"main": self._cpu(self.proc.pid)}
        for i, pid in enumerate(self.workers):
            procs[f"worker{i}"] = self._cpu(pid)
        return {
            "cpu": sum(procs.values()),
            "t": time.monotonic(),
            "in": 0,
            "out": 0,
            "dropped": 0,
            "procs": procs,
        }

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.http.close()


def scenario_served_parity(
    cap: Path, workers: int, rooms: int, size: int, win: float, reps: int
) -> dict[str, Any]:
    """The parity room through ``vidhub serve``: OpenVidu signalling, media via the workers."""
    srv = Served(workers)
    cfgs: list[dict[str, Any]] = [
        {"port": 0, "capture": str(cap), "publishers": [], "subscriptions": [], "tokens": {}}
        for _ in range(2)
    ]
    k = 0
    for r in range(rooms):
        for p in range(size):
            cfg = cfgs[k % 2]
            k += 1
            bot = f"r{r}p{p}"
            cfg["publishers"].append({"room": f"room{r}", "id": bot})
            cfg["tokens"][bot] = srv.token(f"bench-room{r}")
            for q in range(size):
                if q != p:
                    cfg["subscriptions"].append(
                        {
                            "room": f"room{r}",
                            "id": f"{bot}-r{r}p{q}",
                            "producer": f"r{r}p{q}",
                            "who": bot,
                        }
                    )
    agents = [Agent(c) for c in cfgs]
    try:
        published = everyone(agents, "publish")
        stream_ids = {b: sid for rep in published for b, sid in rep["streams"].items()}
        joined = everyone(agents, "subscribe " + json.dumps(stream_ids))
        failures = [f for rep in published for f in rep["failed"]]
        failures += [f for j in joined for f in j["refused"]]
        lat = [x for j in joined for x in j["latencies"]]
        rpc = [x for j in joined for x in j["rpc_ms"]]
        time.sleep(2.0)
        res = windows(agents, srv.port, win, reps, srv)
        res["join_p50_ms"] = 1000 * statistics.median(lat) if lat else float("nan")
        res["rpc_p50_ms"] = statistics.median(rpc) if rpc else float("nan")
        res["no_frame"] = sum(j["no_frame"] for j in joined)
        res["publishers"] = rooms * size
        res["workers"] = workers
        res["placement"] = [w["sessions"] for w in srv.health().get("mediaWorkers", [])]
        res["restarts"] = sum(w["restarts"] for w in srv.health().get("mediaWorkers", []))
        res["failures"] = failures
        return res
    finally:
        for a in agents:
            a.stop()
        srv.stop()


def print_served_parity(par: dict[str, Any], rooms: int, size: int, reps: int, win: float) -> None:
    procs = ", ".join(f"{k} {v:.0f} %" for k, v in par["per_process_cpu"].items())
    print(
        f"\n[parity via vidhub serve, --media-workers {par['workers']}] {rooms} sessions x "
        f"{size}: {par['publishers']} publishers, {par['subs']} subscriptions, "
        f"{reps} x {win:.0f} s windows; sessions per worker {par['placement']}"
    )
    print(
        f"  received by subscribers {par['out_pps']:.0f} pkt/s; server CPU "
        f"{par['cpu_pct']:.1f} % of one core (runs: {_runs(par['cpu_runs'])}): {procs}"
    )
    print(
        f"  CPU per forwarded packet (all processes, ingest and signalling included): "
        f"{par['us_per_out']:.1f} us"
    )
    print(
        f"  subscriber loss {par['loss_pct']:.2f} % (goal < 1 %), min fps {par['min_fps']:.1f}, "
        f"frozen {par['frozen']}, without frame {par['no_frame']}, join p50 "
        f"{par['join_p50_ms']:.0f} ms, receiveVideoFrom RPC p50 {par['rpc_p50_ms']:.1f} ms; "
        f"load-generator CPU % {_runs(par['agent_cpu'])}"
    )
    if par["failures"] or par["restarts"]:
        kinds = sorted({f.split("(")[0] for f in par["failures"]})
        print(
            f"  NOT CLEAN: {len(par['failures'])} publish/subscribe requests failed "
            f"({', '.join(kinds)}), worker restarts {par['restarts']}; first: "
            f"{'; '.join(sorted(set(par['failures']))[:3])}"
        )


async def channel_latency(cap: Path, joins: int) -> dict[str, Any]:
    """What the control channel adds to a join: the same ``subscribe`` calls (sequential,
    one publisher, fresh subscriber PCs) against an in-process Router and a worker-backed
    one, plus the channel's bare round trip (the heartbeat ``ping``)."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

    from vidhub.media.channel import RouterSettings
    from vidhub.media.pool import WorkerPool
    from vidhub.sfu import aiortc_glue
    from vidhub.sfu.router import Router

    aiortc_glue.install_host_addresses(["127.0.0.1"])
    media = pickle.loads(await asyncio.to_thread(cap.read_bytes))

    async def subscribe_times(router: Any) -> list[float]:
        pub = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        video = Replay("video", media["video"], FPS, 3000)
        audio = Replay("audio", [(a, True) for a in media["audio"]], 50, 960)
        pub.addTransceiver(video.track, direction="sendonly")
        pub.addTransceiver(audio.track, direction="sendonly")
        await pub.setLocalDescription(await pub.createOffer())
        answer = await router.publish("pub", pub.localDescription.sdp)
        await pub.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        out = []
        for i in range(joins + 2):
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
            await pc.setLocalDescription(await pc.createOffer())
            t0 = time.perf_counter()
            await router.subscribe(f"s{i}", "pub", pc.localDescription.sdp)
            out.append(1000 * (time.perf_counter() - t0))
            await pc.close()
            await router.close_consumer(f"s{i}")
        await pub.close()
        return out[2:]  # the first two warm up the process

    local = Router(host_addresses=["127.0.0.1"])
    inproc = await subscribe_times(local)
    await local.close()
    pool = await WorkerPool(
        1, RouterSettings(host_addresses=("127.0.0.1",)), log_level="warning"
    ).start()
    try:
        remote = pool.router("bench")
        worker = await subscribe_times(remote)
        await remote.close()
        pings = []
        for _ in range(200):
            t0 = time.perf_counter()
            await pool._workers[0].call("ping", {}, 5.0)
            pings.append(1000 * (time.perf_counter() - t0))
    finally:
        await pool.close()
    return {"inproc": inproc, "worker": worker, "ping": pings}


def print_channel(res: dict[str, Any]) -> None:
    a, b = statistics.median(res["inproc"]), statistics.median(res["worker"])
    print(
        f"\n[control channel] {len(res['inproc'])} sequential subscribe calls (offer -> answer), "
        "in-process Router vs one media worker"
    )
    print(
        f"  in-process p50 {a:.1f} ms, via worker p50 {b:.1f} ms: added {b - a:+.1f} ms "
        f"(goal <= 10 ms); bare channel round trip p50 {statistics.median(res['ping']):.3f} ms, "
        f"p95 {pct(res['ping'], 0.95):.3f} ms"
    )


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def scenario_fanout(tmp: Path, cap: Path, n_subs: int, win: float, reps: int) -> dict[str, Any]:
    proc, port = start_server(tmp)
    pub_agent = Agent(
        {
            "port": port,
            "capture": str(cap),
            "publishers": [{"room": "fan", "id": "pub"}],
            "subscriptions": [],
        }
    )
    half = n_subs // 2
    sub_agents = [
        Agent(
            {
                "port": port,
                "capture": str(cap),
                "publishers": [],
                "subscriptions": [{"room": "fan", "id": f"sub{i}", "producer": "pub"} for i in ids],
            }
        )
        for ids in (range(half), range(half, n_subs))
    ]
    agents = [pub_agent, *sub_agents]
    try:
        everyone(agents, "publish")
        time.sleep(1.0)
        base = window(agents, port, 5.0)
        joined = everyone(agents, "subscribe")
        lat = [x for j in joined for x in j["latencies"]]
        time.sleep(1.0)
        res = windows(agents, port, win, reps)
        res["ingest_cpu_pct"] = base["cpu_pct"]
        res["marginal_us"] = (
            1e6 * (res["cpu_pct"] - base["cpu_pct"]) / 100 / res["out_pps"]
            if res["out_pps"]
            else float("nan")
        )
        res["join_p50_ms"] = 1000 * statistics.median(lat) if lat else float("nan")
        res["join_p95_ms"] = 1000 * pct(lat, 0.95) if lat else float("nan")
        res["join_max_ms"] = 1000 * max(lat) if lat else float("nan")
        res["no_frame"] = sum(j["no_frame"] for j in joined)
        return res
    finally:
        for a in agents:
            a.stop()
        stop_server(proc, port)


def scenario_parity(
    tmp: Path, cap: Path, rooms: int, size: int, win: float, reps: int
) -> dict[str, Any]:
    proc, port = start_server(tmp)
    cfgs: list[dict[str, Any]] = [
        {"port": port, "capture": str(cap), "publishers": [], "subscriptions": []} for _ in range(2)
    ]
    k = 0
    for r in range(rooms):
        for p in range(size):
            cfg = cfgs[k % 2]
            k += 1
            cfg["publishers"].append({"room": f"room{r}", "id": f"r{r}p{p}"})
            for q in range(size):
                if q != p:
                    cfg["subscriptions"].append(
                        {"room": f"room{r}", "id": f"r{r}p{p}-r{r}p{q}", "producer": f"r{r}p{q}"}
                    )
    agents = [Agent(c) for c in cfgs]
    try:
        everyone(agents, "publish")
        joined = everyone(agents, "subscribe")
        lat = [x for j in joined for x in j["latencies"]]
        time.sleep(2.0)
        res = windows(agents, port, win, reps)
        res["join_p50_ms"] = 1000 * statistics.median(lat) if lat else float("nan")
        res["no_frame"] = sum(j["no_frame"] for j in joined)
        res["publishers"] = rooms * size
        return res
    finally:
        for a in agents:
            a.stop()
        stop_server(proc, port)


async def served_join(
    cap: Path, base: str, n: int, stages: dict[str, list[float]]
) -> tuple[list[float], list[float]]:
    """Token -> first decoded frame through the real server: 5 joins 0.5 s apart, then
    ``n`` concurrent joiners. ``stages`` gets the concurrent joins' per-stage durations
    (token, joinRoom, receiveVideoFrom, connected = ICE+DTLS up, frame = first decoded)."""
    import aiohttp

    from vidhub.client.participant import Participant

    media = pickle.loads(await asyncio.to_thread(cap.read_bytes))
    import base64

    cred = base64.b64encode(b"OPENVIDUAPP:MY_SECRET").decode()
    headers = {"Authorization": f"Basic {cred}"}
    async with aiohttp.ClientSession(base, headers=headers) as http:
        async with http.post("/openvidu/api/sessions", json={}) as r:
            session = (await r.json())["id"]

        async def token() -> str:
            async with http.post(f"/openvidu/api/sessions/{session}/connection", json={}) as r:
                tok: str = (await r.json())["token"]
                return tok

        pub = Participant(await token(), host_addresses=["127.0.0.1"])
        await pub.join()
        video = Replay("video", media["video"], FPS, 3000)
        audio = Replay("audio", [(a, True) for a in media["audio"]], 50, 960)
        stream = await pub.publish(audio=audio.track, video=video.track)
        pc: Any = pub._publisher_pc  # bench only: route PLIs to the replay's keyframe jump
        for t in pc.getTransceivers():
            if t.kind == "video":
                t.sender._send_keyframe = video.request_keyframe
        connected = asyncio.Event()
        pc.on(
            "connectionstatechange", lambda: pc.connectionState == "connected" and connected.set()
        )
        if pc.connectionState != "connected":
            await asyncio.wait_for(connected.wait(), 30)

        async def one() -> float:
            t0 = time.monotonic()
            marks: dict[str, float] = {}
            p = Participant(await token(), host_addresses=["127.0.0.1"])
            marks["token"] = time.monotonic()
            try:
                await p.join()
                marks["joinRoom"] = time.monotonic()
                sub = await p.subscribe(stream)
                marks["receiveVideoFrom"] = time.monotonic()
                sub_pc = sub.pc

                def _up() -> None:
                    if sub_pc.connectionState == "connected" and "connected" not in marks:
                        marks["connected"] = time.monotonic()

                sub_pc.on("connectionstatechange", _up)
                _up()
                track = sub.video
                assert track is not None
                while True:
                    frame: Any = await asyncio.wait_for(track.recv(), 15)
                    if frame.width > 0:
                        marks["frame"] = time.monotonic()
                        # Stage durations (each from the previous mark), for the breakdown.
                        prev = t0
                        for name in ("token", "joinRoom", "receiveVideoFrom", "connected", "frame"):
                            at = marks.get(name, prev)
                            stages.setdefault(name, []).append(at - prev)
                            prev = at
                        return time.monotonic() - t0
            finally:
                await p.leave()

        try:
            alone = []
            for _ in range(5):
                alone.append(await one())
                # Pace the joins past the 300 ms PLI coalescing window, so each one is
                # measured alone rather than waiting on its predecessor's keyframe request.
                await asyncio.sleep(0.5)
            stages.clear()
            together = list(await asyncio.gather(*(one() for _ in range(n))))
            return alone, together
        finally:
            await pub.leave()


def scenario_served(
    cap: Path, n: int, stages: dict[str, list[float]]
) -> tuple[list[float], list[float]]:
    """``vidhub serve`` in a subprocess; joiners in this process."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, VIDHUB_ICE_HOST_ADDRESSES="127.0.0.1")
    cmd = [sys.executable, "-m", "vidhub", "serve", "--port", str(port), "--store", "memory"]
    proc = subprocess.Popen([*cmd, "--log-level", os.environ.get("BENCH_LOG", "warning")], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("vidhub serve did not start") from None
                time.sleep(0.1)
        return asyncio.run(served_join(cap, base, n, stages))
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


def print_served(
    n: int, alone: list[float], lat: list[float], stages: dict[str, list[float]], run: int
) -> None:
    print(
        f"\n[join via vidhub serve, run {run + 1}] REST token -> joinRoom -> receiveVideoFrom -> "
        "first decoded 640x480 frame (joiners decode, in one process)"
    )
    print(
        f"  one at a time (5 joins, 0.5 s apart): "
        f"p50 {1000 * statistics.median(alone):.0f} ms, "
        f"max {1000 * max(alone):.0f} ms"
    )
    print(
        f"  {n} concurrent: p50 {1000 * statistics.median(lat):.0f} ms, "
        f"p95 {1000 * pct(lat, 0.95):.0f} ms, max {1000 * max(lat):.0f} ms  (goal p50 <= 300)"
    )
    parts = ", ".join(
        f"{name} {1000 * statistics.median(v):.0f}/{1000 * max(v):.0f}"
        for name, v in stages.items()
    )
    print(f"  concurrent, per stage median/max ms (each from the previous): {parts}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", metavar="PORT_FILE")
    ap.add_argument("--agent", metavar="JSON")
    ap.add_argument("--asyncio", action="store_true", help="plain asyncio loop, not uvloop")
    ap.add_argument("--quick", action="store_true", help="smaller run (~40 s)")
    ap.add_argument("--rooms", type=int, default=4)
    ap.add_argument("--size", type=int, default=7)
    ap.add_argument("--subs", type=int, default=20)
    ap.add_argument(
        "--only",
        choices=("fanout", "served", "parity", "workers", "channel"),
        action="append",
        help="run only this scenario (repeatable); default: all but workers",
    )
    ap.add_argument(
        "--workers-runs",
        default="0:4x7,1:4x7,2:4x7,2:8x7",
        help="for --only workers: WORKERS:ROOMSxSIZE runs through vidhub serve, comma-separated",
    )
    ap.add_argument(
        "--served-runs",
        type=int,
        default=1,
        choices=range(1, 6),
        metavar="1-5",
        help="repeat the join-via-vidhub-serve scenario (fresh server each time)",
    )
    args = ap.parse_args()
    only = set(args.only or ("fanout", "served", "parity"))
    runs = [
        (int(w), int(rs.split("x")[0]), int(rs.split("x")[1]))
        for w, rs in (r.split(":") for r in args.workers_runs.split(","))
    ]
    if not args.asyncio:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    else:
        LOOP_FLAG.append("--asyncio")
    if args.server:
        asyncio.run(run_server(Path(args.server)))
        return
    if args.agent:
        asyncio.run(run_agent(json.loads(args.agent)))
        return

    t_start = time.monotonic()
    win = 5.0 if args.quick else 10.0
    reps = 1 if args.quick else 3
    rooms, size = (1, 7) if args.quick else (args.rooms, args.size)
    with tempfile.TemporaryDirectory(prefix="vidhub-bench-sfu-") as d:
        tmp = Path(d)
        cap = tmp / "capture.pkl"
        media = capture(cap)
        vbytes = sum(len(v) for v, _ in media["video"]) / len(media["video"])
        print(f"loop: {'asyncio' if args.asyncio else 'uvloop'}; cores: {os.cpu_count()}")
        print(f"capture: VP8 640x480 {FPS} fps, {vbytes:.0f} B/frame avg, keyframe every 0.5 s;")
        print(f"         Opus 20 ms, {sum(map(len, media['audio'])) / len(media['audio']):.0f} B")
        if "fanout" in only:
            fan = scenario_fanout(tmp, cap, args.subs, win, reps)
            print(
                f"\n[fan-out] 1 publisher -> {fan['subs']} subscribers, "
                f"{reps} x {win:.0f} s windows "
                f"(median shown; all-in us per run: {_runs(fan['us_runs'])})"
            )
            print(f"  ingest only: server CPU {fan['ingest_cpu_pct']:.1f} % of one core")
            print(
                f"  in {fan['in_pps']:.0f} pkt/s, out {fan['out_pps']:.0f} pkt/s, "
                f"server CPU {fan['cpu_pct']:.1f} % of one core"
            )
            print(
                f"  CPU per forwarded packet: all-in {fan['us_per_out']:.1f} us, "
                f"marginal {fan['marginal_us']:.1f} us  (goal <= 25 us)"
            )
            print(f"  forwarded packets/s per core: {1e6 / fan['us_per_out']:.0f} (all-in)")
            print(
                f"  subscriber loss {fan['loss_pct']:.2f} % (worst window), min fps "
                f"{fan['min_fps']:.1f}, frozen {fan['frozen']}, not sent by server "
                f"{fan['server_dropped']} pkts; load-generator CPU % {_runs(fan['agent_cpu'])}"
            )
            print(
                f"  join (subscribe request -> first full video frame), {args.subs} concurrent: "
                f"p50 {fan['join_p50_ms']:.0f} ms, p95 {fan['join_p95_ms']:.0f} ms, "
                f"max {fan['join_max_ms']:.0f} ms, without frame {fan['no_frame']}  "
                "(goal p50 <= 300)"
            )
        if "served" in only:
            for run in range(args.served_runs):
                stages: dict[str, list[float]] = {}
                alone, lat = scenario_served(cap, args.subs, stages)
                print_served(args.subs, alone, lat, stages, run)
        if "parity" in only:
            par = scenario_parity(tmp, cap, rooms, size, win, reps)
            print(
                f"\n[parity] {rooms} sessions x {size} participants: "
                f"{par['publishers']} publishers, "
                f"{par['subs']} subscriptions, {reps} x {win:.0f} s windows"
            )
            print(f"  server CPU % per run: {_runs(par['cpu_runs'])}")
            print(
                f"  in {par['in_pps']:.0f} pkt/s, out {par['out_pps']:.0f} pkt/s, "
                f"server CPU {par['cpu_pct']:.1f} % of one core  (goal <= 85 %)"
            )
            print(
                f"  CPU per forwarded packet (all-in, ingest included): {par['us_per_out']:.1f} us"
            )
            print(
                f"  subscriber loss {par['loss_pct']:.2f} % (goal < 1 %), min fps "
                f"{par['min_fps']:.1f}, frozen {par['frozen']}, without frame {par['no_frame']}, "
                f"join p50 {par['join_p50_ms']:.0f} ms"
            )
            print(
                f"  not sent by server {par['server_dropped']} pkts (gated/unconnected); "
                f"load-generator CPU % {_runs(par['agent_cpu'])}"
            )
        if "channel" in only:
            print_channel(asyncio.run(channel_latency(cap, 10 if args.quick else 30)))
        if "workers" in only:
            for workers, w_rooms, w_size in runs:
                wpar = scenario_served_parity(cap, workers, w_rooms, w_size, win, reps)
                print_served_parity(wpar, w_rooms, w_size, reps, win)
    print(f"\ntotal {time.monotonic() - t_start:.0f} s")


if __name__ == "__main__":
    main()
