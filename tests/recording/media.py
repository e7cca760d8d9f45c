"""Helpers for recording tests: wait for a publisher's media, inspect files with PyAV."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
from aiortc import AudioStreamTrack, VideoStreamTrack
from av import AudioFrame, VideoFrame

from vidhub.client import Participant

__all__ = [
    "FileInfo",
    "WallClockAudio",
    "WallClockVideo",
    "probe",
    "read_zip",
    "wait_media_flowing",
]


async def wait_media_flowing(bot: Participant, within: float) -> None:
    """Wait until the bot's publisher PeerConnection is connected (media flows)."""
    pc: Any = bot._publisher_pc
    assert pc is not None, "the bot does not publish"
    connected = asyncio.Event()

    def check() -> None:
        if pc.connectionState == "connected":
            connected.set()

    pc.on("connectionstatechange", check)
    check()
    await asyncio.wait_for(connected.wait(), within)


@dataclass(frozen=True)
class FileInfo:
    """What PyAV sees in a media file."""

    video_codec: str | None
    audio_codec: str | None
    width: int
    height: int
    duration: float
    video_packets: int
    audio_packets: int
    decoded_frames: int


def probe(data: bytes) -> FileInfo:
    """Open ``data`` with PyAV: codecs, size, duration, packets, and decode every frame."""
    with av.open(io.BytesIO(data)) as c:
        v = next((s for s in c.streams if s.type == "video"), None)
        a = next((s for s in c.streams if s.type == "audio"), None)
        counts = {"video": 0, "audio": 0}
        for pkt in c.demux():
            if pkt.size:
                counts[pkt.stream.type] += 1
        duration = (c.duration or 0) / 1e6
    decoded = 0
    if v is not None:
        with av.open(io.BytesIO(data)) as c:
            for _ in c.decode(video=0):
                decoded += 1
    return FileInfo(
        video_codec=v.codec_context.name if v is not None else None,
        audio_codec=a.codec_context.name if a is not None else None,
        width=v.codec_context.width if v is not None else 0,
        height=v.codec_context.height if v is not None else 0,
        duration=duration,
        video_packets=counts["video"],
        audio_packets=counts["audio"],
        decoded_frames=decoded,
    )


def read_zip(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    """(the metadata JSON, every other member) of an INDIVIDUAL recording's zip."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta_name = next(n for n in members if n.endswith(".json"))
    meta = json.loads(members.pop(meta_name))
    return meta, members


class WallClockVideo(VideoStreamTrack):
    """aiortc's synthetic camera, but stamped with the wall clock.

    aiortc's own tracks count frames (1/30 s each) and catch up in bursts when the process
    is starved, so their timestamps drift from real time on a busy machine; a browser
    stamps capture time. Frames here carry the time they are made, so a recording's
    duration can be checked against real time whatever the load.
    """

    def __init__(self, width: int = 640, height: int = 480) -> None:
        super().__init__()
        self.size = (width, height)
        self._t0: float | None = None
        self._n = 0

    async def recv(self) -> VideoFrame:
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time()
        self._n += 1
        due = self._t0 + self._n / 30
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)  # pacing the synthetic camera, not synchronising
        else:
            self._n = int((now - self._t0) * 30)  # starved: skip frames, never burst
        frame = VideoFrame(*self.size, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = round((loop.time() - self._t0) * 90000)
        frame.time_base = Fraction(1, 90000)
        return frame


class WallClockAudio(AudioStreamTrack):
    """aiortc's silent microphone stamped with the wall clock (see :class:`WallClockVideo`):
    when starved it leaves a gap instead of bursting."""

    def __init__(self) -> None:
        super().__init__()
        self._t0: float | None = None
        self._samples = 0

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time()
        self._samples += 960
        due = self._t0 + self._samples / 48000
        now = loop.time()
        if due > now:
            await asyncio.sleep(due - now)  # pacing the synthetic microphone
        else:
            self._samples = int((now - self._t0) * 48000) // 960 * 960
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.pts = self._samples
        frame.sample_rate = 48000
        frame.time_base = Fraction(1, 48000)
        return frame
