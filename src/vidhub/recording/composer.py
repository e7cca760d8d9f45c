"""The COMPOSED recorder process: decode the session's streams, lay them out, encode one file.

Run as ``python -m vidhub.recording.composer --socket S --out FILE --width W --height H
--fps F [--no-audio] [--no-video]`` by :mod:`vidhub.recording.composed`. It listens on the
Unix ``SOCK_SEQPACKET`` socket ``S``; each stream being recorded connects and sends its
encoded frames (:mod:`vidhub.sfu.feed`). It prints ``READY`` once listening, and on a
``stop`` line (or end of input) on stdin it finishes the file and prints
``RESULT {"size":..,"duration":..,"frames":..,"skipped":..}``.

Theory of operation: a live compositor driven by its own clock. Video is decoded as it
arrives and each stream keeps only its latest picture; at every output tick (``--fps``) the
pictures are scaled into OpenVidu's ``BEST_FIT`` grid on a black canvas and encoded (H.264,
``ultrafast``). Audio is decoded into a per-stream buffer, and every 1024 samples the buffers
are mixed (summed, clipped) and encoded (AAC). An audio-only recording encodes the mix with
Opus into WebM. When the process falls behind, it skips output ticks (the picture holds; the
file's timing stays right), and when it stops reading, the sender's socket fills and the
*sender* drops frames, so the SFU never waits for this process.

The file is written as ``FILE.part`` and renamed to ``FILE`` once closed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import selectors
import socket
import sys
import time
import warnings
from array import array
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

from vidhub.sfu.feed import HEADER, KIND_AUDIO, KIND_HELLO, KIND_VIDEO

__all__ = ["Composer", "best_fit", "main", "mix_s16"]

with warnings.catch_warnings():
    # audioop (C, saturating adds) is deprecated since 3.11 and gone in 3.13: use it while
    # it exists, with the pure-Python mix below as the fallback.
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import audioop as _audioop
    except ImportError:  # Python 3.13+
        _audioop = None  # type: ignore[assignment]

RATE = 48000
#: Mixed audio buffered per stream at most (seconds); beyond it the oldest is dropped.
MAX_AUDIO_BACKLOG_S = 0.3
_DECODERS = {"VP8": "vp8", "H264": "h264"}


def best_fit(n: int, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Tiles (x, y, w, h) of OpenVidu's BEST_FIT layout for ``n`` videos on the canvas:
    a grid of ``ceil(sqrt(n))`` columns filled row by row, even sizes for 4:2:0."""
    if n <= 0:
        return []
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    tw, th = (width // cols) & ~1, (height // rows) & ~1
    tiles = []
    for i in range(n):
        r, c = divmod(i, cols)
        in_row = min(cols, n - r * cols)
        x0 = (width - in_row * tw) // 2  # a short last row is centred
        tiles.append(((x0 + c * tw) & ~1, (r * th + (height - rows * th) // 2) & ~1, tw, th))
    return tiles


def mix_s16(a: bytes, b: bytes) -> bytes:
    """Sum two equal-length s16 buffers sample by sample, clipping to the int16 range."""
    if _audioop is not None:
        return bytes(_audioop.add(a, b, 2))
    x, y = array("h", a), array("h", b)
    return array("h", (max(-32768, min(32767, p + q)) for p, q in zip(x, y, strict=True))).tobytes()


def _fit(fw: int, fh: int, tw: int, th: int) -> tuple[int, int]:
    scale = min(tw / fw, th / fh)
    return max(2, int(fw * scale) & ~1), max(2, int(fh * scale) & ~1)


@dataclass(eq=False)
class _Stream:
    sock: socket.socket
    stream_id: str = ""
    video: Any = None  # decoder context
    audio: Any = None
    resampler: Any = None
    picture: Any = None  # latest decoded VideoFrame
    scaled: tuple[tuple[int, int], Any] | None = None
    pcm: bytearray = field(default_factory=bytearray)
    order: int = 0


class Composer:
    """The compositor state (see the module docstring)."""

    def __init__(
        self,
        socket_path: str,
        out: str,
        width: int,
        height: int,
        fps: int,
        audio: bool,
        video: bool,
    ) -> None:
        self.out_path = out
        self.part = out + ".part"
        self.width, self.height, self.fps = width, height, fps
        self.has_audio, self.has_video = audio, video
        self.sel = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.listener.bind(socket_path)
        self.listener.listen(64)
        self.listener.setblocking(False)
        self.sel.register(self.listener, selectors.EVENT_READ, "accept")
        self.streams: dict[socket.socket, _Stream] = {}
        self._order = 0
        self.buf = bytearray(8 << 20)
        self.frames = 0
        self.skipped = 0
        self.audio_samples = 0
        self.stopping = False
        fmt = "mp4" if video else "webm"
        self.container = av.open(self.part, "w", format=fmt)
        self.vout: Any = None
        self.aout: Any = None
        if video:
            v = self.container.add_stream("libx264", rate=fps)
            v.width, v.height, v.pix_fmt = width, height, "yuv420p"
            v.codec_context.time_base = Fraction(1, fps)
            v.codec_context.options = {"preset": "ultrafast", "tune": "zerolatency"}
            self.vout = v
            size = width * height
            self.black = (bytes([16]) * size, bytes([128]) * (size // 4))
        if audio:
            if video:
                a = self.container.add_stream("aac", rate=RATE)
                self.chunk = 1024
                enc_fmt = "fltp"
            else:
                a = self.container.add_stream("libopus", rate=RATE)
                self.chunk = 960
                enc_fmt = "s16"
            a.layout = "stereo"
            self.aout = a
            self.to_encoder = av.AudioResampler(format=enc_fmt, layout="stereo", rate=RATE)

    # -- input ---------------------------------------------------------------------------

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        self._order += 1
        self.streams[conn] = _Stream(conn, order=self._order)
        self.sel.register(conn, selectors.EVENT_READ, "stream")

    def _drop(self, st: _Stream) -> None:
        self.sel.unregister(st.sock)
        st.sock.close()
        self.streams.pop(st.sock, None)

    def _read(self, st: _Stream, budget: int = 64) -> None:
        mv = memoryview(self.buf)
        for _ in range(budget):
            try:
                n = st.sock.recv_into(self.buf)
            except BlockingIOError:
                return
            except OSError:
                n = 0
            if n == 0:
                self._drop(st)
                return
            if n < HEADER.size:
                continue
            kind, flags, _pts = HEADER.unpack_from(self.buf)
            payload = bytes(mv[HEADER.size : n])
            if kind == KIND_HELLO:
                self._hello(st, payload)
            elif kind == KIND_VIDEO and st.video is not None:
                self._decode_video(st, payload, bool(flags & 1))
            elif kind == KIND_AUDIO and st.audio is not None:
                self._decode_audio(st, payload)

    def _hello(self, st: _Stream, payload: bytes) -> None:
        info = json.loads(payload)
        st.stream_id = str(info.get("stream", ""))
        codec = _DECODERS.get(str(info.get("video") or "").upper())
        if codec and self.has_video:
            st.video = av.CodecContext.create(codec, "r")
        if info.get("audio") and self.has_audio:
            st.audio = av.CodecContext.create("opus", "r")
            st.resampler = av.AudioResampler(format="s16", layout="stereo", rate=RATE)

    def _decode_video(self, st: _Stream, data: bytes, key: bool) -> None:
        try:
            frames = st.video.decode(av.Packet(data))
        except av.error.FFmpegError:
            return  # a broken frame: the next keyframe repairs the picture
        if frames:
            st.picture = frames[-1]
            st.scaled = None

    def _decode_audio(self, st: _Stream, data: bytes) -> None:
        try:
            frames = st.audio.decode(av.Packet(data))
        except av.error.FFmpegError:
            return
        for f in frames:
            for r in st.resampler.resample(f):
                st.pcm += bytes(r.planes[0])[: r.samples * 4]
        limit = int(MAX_AUDIO_BACKLOG_S * RATE) * 4
        if len(st.pcm) > limit:
            del st.pcm[: len(st.pcm) - limit // 3]

    # -- output --------------------------------------------------------------------------

    def _compose(self, index: int) -> None:
        canvas = av.VideoFrame(self.width, self.height, "yuv420p")
        canvas.planes[0].update(self.black[0])
        canvas.planes[1].update(self.black[1])
        canvas.planes[2].update(self.black[1])
        shown = sorted(
            (s for s in self.streams.values() if s.picture is not None), key=lambda s: s.order
        )
        for st, (x, y, tw, th) in zip(
            shown, best_fit(len(shown), self.width, self.height), strict=True
        ):
            pic = st.picture
            sw, sh = _fit(pic.width, pic.height, tw, th)
            if st.scaled is None or st.scaled[0] != (sw, sh):
                tile = pic.reformat(
                    width=sw, height=sh, format="yuv420p", interpolation="FAST_BILINEAR"
                )
                st.scaled = ((sw, sh), tile)
            _blit(canvas, st.scaled[1], x + ((tw - sw) // 2 & ~1), y + ((th - sh) // 2 & ~1))
        canvas.pts = index
        canvas.time_base = Fraction(1, self.fps)
        for packet in self.vout.encode(canvas):
            self.container.mux(packet)
        self.frames += 1

    def _mix(self) -> None:
        need = self.chunk * 4
        mixed: bytes | None = None
        for st in self.streams.values():
            if st.audio is None:
                continue
            take = bytes(st.pcm[:need])
            del st.pcm[:need]
            if len(take) < need:
                take += bytes(need - len(take))
            mixed = take if mixed is None else mix_s16(mixed, take)
        frame = av.AudioFrame(format="s16", layout="stereo", samples=self.chunk)
        frame.planes[0].update(mixed if mixed is not None else bytes(need))
        frame.sample_rate = RATE
        frame.pts = self.audio_samples
        frame.time_base = Fraction(1, RATE)
        self.audio_samples += self.chunk
        for f in self.to_encoder.resample(frame):
            for packet in self.aout.encode(f):
                self.container.mux(packet)

    # -- main loop -----------------------------------------------------------------------

    def run(self, control: Any) -> dict[str, Any]:
        """Serve until ``stop`` arrives on ``control`` (a readable file object)."""
        os.set_blocking(control.fileno(), False)
        self.sel.register(control, selectors.EVENT_READ, "control")
        print("READY", flush=True)
        t0 = time.monotonic()
        next_frame = 0
        while not self.stopping:
            now = time.monotonic() - t0
            due: list[float] = []
            if self.vout is not None:
                due.append(next_frame / self.fps)
            if self.aout is not None:
                due.append(self.audio_samples / RATE)
            timeout = max(0.0, min(due) - now) if due else 0.5
            for key, _ in self.sel.select(timeout):
                if key.data == "accept":
                    self._accept()
                elif key.data == "stream":
                    st = self.streams.get(key.fileobj)  # type: ignore[call-overload]
                    if st is not None:
                        self._read(st)
                else:
                    line = control.read()
                    if not line or "stop" in line:
                        self.stopping = True
            now = time.monotonic() - t0
            while self.aout is not None and self.audio_samples / RATE <= now:
                self._mix()
            if self.vout is not None and next_frame / self.fps <= now:
                latest = int(now * self.fps)
                self.skipped += latest - next_frame  # behind: hold the picture, skip ticks
                self._compose(latest)
                next_frame = latest + 1
        return self._finish(time.monotonic() - t0)

    def _finish(self, elapsed: float) -> dict[str, Any]:
        for st in list(self.streams.values()):
            self._drop(st)
        if self.vout is not None:
            for packet in self.vout.encode(None):
                self.container.mux(packet)
        if self.aout is not None:
            for packet in self.aout.encode(None):
                self.container.mux(packet)
        self.container.close()
        os.replace(self.part, self.out_path)
        return {
            "size": os.path.getsize(self.out_path),
            "duration": round(elapsed, 3),
            "frames": self.frames,
            "skipped": self.skipped,
        }


def _blit(canvas: Any, tile: Any, x: int, y: int) -> None:
    """Copy a yuv420p ``tile`` into ``canvas`` at (x, y) (both even), plane by plane."""
    w, h = tile.width, tile.height
    for p, (cx, cy, pw, ph) in enumerate(
        ((x, y, w, h), (x // 2, y // 2, w // 2, h // 2), (x // 2, y // 2, w // 2, h // 2))
    ):
        dst, src = canvas.planes[p], tile.planes[p]
        dmv, smv = memoryview(dst), memoryview(src)
        dls, sls = dst.line_size, src.line_size
        for row in range(ph):
            d = (cy + row) * dls + cx
            s = row * sls
            dmv[d : d + pw] = smv[s : s + pw]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vidhub.recording.composer")
    ap.add_argument("--socket", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--no-audio", action="store_true")
    ap.add_argument("--no-video", action="store_true")
    a = ap.parse_args(argv)
    comp = Composer(a.socket, a.out, a.width, a.height, a.fps, not a.no_audio, not a.no_video)
    result = comp.run(sys.stdin)
    try:
        print("RESULT " + json.dumps(result), flush=True)
    except BrokenPipeError:
        # The server died (its end of stdin closed, which finished the file): nobody to tell.
        sys.stdout = None
    return 0


if __name__ == "__main__":
    sys.exit(main())
