"""StreamRecorder: records one publisher leg into a file without decoding (INDIVIDUAL mode).

Theory of operation: the recorder is one more consumer of the leg's producers. Each track gets
a :class:`TrackTap`, registered with its producer like a subscriber's consumer, so it sees the
same RTX-unwrapped packets and asks for a keyframe when it starts and after every gap it
cannot repair (the publisher leg's own NACKs repair the others). A
:class:`~vidhub.sfu.depacketize.FrameAssembler` per track reorders and cuts frames; frames go
to a :class:`~vidhub.sfu.mediafile.MediaFileWriter`, which muxes on its own thread.

Timestamps: each track's presentation time is its extended RTP timestamp, anchored once to
the wall clock (the arrival of the track's first frame, relative to the recorder's start).
RTP time keeps running through packet loss and paused tracks, so gaps stay gaps; when the
publisher restarts its stream (new SSRC, new timestamp base), the track is anchored again.
Audio and video therefore stay in sync to within their arrival jitter.

The recorder finishes by :meth:`StreamRecorder.stop` or when every tapped producer closes;
either way :meth:`StreamRecorder.stop` returns the same :class:`RecordedStream`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiortc.rtp import RtpPacket

from vidhub.sfu.depacketize import FrameAssembler, depacketizer_for, vp8_dimensions
from vidhub.sfu.feed import FeedWriter
from vidhub.sfu.mediafile import FileResult, MediaFileWriter
from vidhub.sfu.producer import Producer

__all__ = ["RecordedStream", "StreamRecorder", "TrackTap", "container_for"]

log = logging.getLogger(__name__)

_RATES = {"audio": 48000, "video": 90000}


def container_for(video_codec: str | None) -> str:
    """File extension for a stream: ``mp4`` for H.264 (as OpenVidu), else ``webm``."""
    return "mp4" if (video_codec or "").upper() == "H264" else "webm"


@dataclass(frozen=True, slots=True)
class RecordedStream:
    """The outcome of recording one stream: the file and when it started and ended
    (epoch ms)."""

    recorder_id: str
    producer_id: str
    file: FileResult
    started_at: int
    ended_at: int


class TrackTap:
    """A producer sink feeding one track of a :class:`StreamRecorder`."""

    def __init__(self, recorder: StreamRecorder, producer: Producer) -> None:
        self.leg_id = recorder.recorder_id
        self.kind = producer.kind
        self.producer = producer
        self.recorder = recorder
        dp = depacketizer_for(producer.codec.name)
        assert dp is not None  # checked by the recorder
        self.assembler = FrameAssembler(dp, video=self.kind == "video")
        self.rate = _RATES[self.kind]
        self.base: tuple[int, int] | None = None  # (rtp timestamp, pts) anchor
        self.gaps_seen = 0
        self.closed = False

    def forward(
        self, packet: RtpPacket, keyframe: bool, templates: dict[str, Any], ntp: int
    ) -> None:
        """Producer fan-out entry: one packet of this track."""
        self.recorder._on_packet(self, packet)

    def source_changed(self) -> None:
        """The publisher restarted its stream: new numbering, re-anchor the timestamps."""
        self.assembler.reset()
        self.base = None
        if self.kind == "video":
            self.producer.request_keyframe()

    def producer_closed(self) -> None:
        self.closed = True
        self.recorder._track_closed()


class StreamRecorder:
    """Records the given producers (one per kind) of one publisher leg into ``path``.

    Args:
        recorder_id: the caller's id for this recording of this stream.
        producer_id: the publisher leg recorded.
        producers: the leg's producers to record, at most one per kind.
        path: the output file (its suffix picks the container; see :func:`container_for`).
        fallback_size: video size to declare if no keyframe tells it.
        feed: instead of a file, send the frames to the COMPOSED recorder listening on this
            Unix socket (:class:`~vidhub.sfu.feed.FeedWriter`); ``path`` is then unused.
        wall_ms: the wall clock in epoch ms (injectable for tests).
    """

    def __init__(
        self,
        recorder_id: str,
        producer_id: str,
        producers: list[Producer],
        path: Path,
        *,
        fallback_size: tuple[int, int] = (640, 480),
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        feed: str | None = None,
    ) -> None:
        self.recorder_id = recorder_id
        self.producer_id = producer_id
        self.path = path
        self._wall_ms = wall_ms
        self._loop = asyncio.get_running_loop()
        usable = [p for p in producers if not p.closed and depacketizer_for(p.codec.name)]
        video = next((p for p in usable if p.kind == "video"), None)
        audio = next((p for p in usable if p.kind == "audio"), None)
        vcodec = video.codec.name.upper() if video else None
        self._writer: MediaFileWriter | FeedWriter
        if feed is not None:
            self._writer = FeedWriter(feed, producer_id, video_codec=vcodec, audio=bool(audio))
        else:
            self._writer = MediaFileWriter(
                path, video_codec=vcodec, audio=audio is not None, fallback_size=fallback_size
            )
        self._taps = [TrackTap(self, p) for p in (video, audio) if p is not None]
        self._t0 = self._loop.time()
        self.started_at = wall_ms()
        self.ended_at: int | None = None
        self._stopping: asyncio.Task[RecordedStream] | None = None
        #: Called with this recorder once every recorded producer has closed.
        self.on_ended: Callable[[StreamRecorder], None] | None = None
        for tap in self._taps:
            tap.producer.add_consumer(tap)
        if not self._taps:
            self._track_closed()

    @property
    def tracks(self) -> tuple[str, ...]:
        """The kinds being recorded."""
        return tuple(t.kind for t in self._taps)

    def _on_packet(self, tap: TrackTap, packet: RtpPacket) -> None:
        if self._stopping is not None:
            return
        now = self._loop.time()
        frames = tap.assembler.push(
            packet.sequence_number, packet.timestamp, bool(packet.marker), packet.payload, now
        )
        if tap.assembler.gaps != tap.gaps_seen:
            tap.gaps_seen = tap.assembler.gaps
            if tap.kind == "video":
                tap.producer.request_keyframe()
        for frame in frames:
            self._write(tap, frame.data, frame.timestamp, frame.keyframe, frame.arrival)

    def _write(self, tap: TrackTap, data: bytes, ts: int, key: bool, arrival: float) -> None:
        if tap.base is None:
            tap.base = (ts, round((arrival - self._t0) * tap.rate))
        pts = tap.base[1] + (ts - tap.base[0])
        size = vp8_dimensions(data) if key and tap.kind == "video" else None
        writer = self._writer
        writer.write(tap.kind, data, pts, key, size)
        if writer.wants_keyframe and tap.kind == "video":
            tap.producer.request_keyframe()  # a frame was dropped; coalesced by the producer

    def _track_closed(self) -> None:
        if all(t.closed for t in self._taps) and self._stopping is None:
            self.ended_at = self._wall_ms()
            task = self._loop.create_task(self.stop())
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[RecordedStream]) -> None:
        if self.on_ended is not None and not task.cancelled():
            try:
                self.on_ended(self)
            except Exception:
                log.exception("on_ended listener failed for %s", self.recorder_id)

    async def stop(self) -> RecordedStream:
        """Stop recording and finish the file; idempotent (later calls return the same)."""
        if self._stopping is None:
            if self.ended_at is None:
                self.ended_at = self._wall_ms()
            now = self._loop.time()
            for tap in self._taps:
                tap.producer.remove_consumer(tap)
                for frame in tap.assembler.flush(now):
                    self._write(tap, frame.data, frame.timestamp, frame.keyframe, frame.arrival)
            # A task of its own: a caller cancelled while the file closes does not lose it.
            self._stopping = self._loop.create_task(self._finish(self.ended_at))
        return await asyncio.shield(self._stopping)

    async def _finish(self, ended_at: int) -> RecordedStream:
        result = await asyncio.to_thread(self._writer.close)
        return RecordedStream(self.recorder_id, self.producer_id, result, self.started_at, ended_at)
