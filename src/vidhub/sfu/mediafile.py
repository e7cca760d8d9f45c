"""MediaFileWriter: muxes already-encoded frames into one file with PyAV, off the event loop.

Theory of operation: the caller (a :class:`~vidhub.sfu.recorder.StreamRecorder`, on the
event loop) queues frames with their presentation time; one thread per file owns the PyAV
container and does every blocking call (open, mux, close). Nothing is decoded or encoded.

The container needs every stream declared before its header is written, and a video stream
needs its size, known only from the first keyframe. Frames are therefore held until the first
video keyframe arrives (or :data:`HOLD_S` of audio piles up, or the file is closed), then the
header is written and the held frames follow.

The file is written as ``<name>.part`` and renamed to its final name only after the muxer
closed cleanly, so a crash never leaves a file that looks finished. The muxer writes in
one-second clusters (WebM) or fragments (MP4) and hands each packet to the OS at once, so a
killed server leaves a ``.part`` that :mod:`vidhub.recording.salvage` can finish.

Any I/O or FFmpeg error (disk full, unwritable directory) stops the writer and is reported
in :class:`FileResult`; it never raises into the event loop.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

__all__ = ["HOLD_S", "MAX_QUEUED", "FileResult", "MediaFileWriter", "opus_head"]

log = logging.getLogger(__name__)

#: Seconds of audio held while waiting for the first video keyframe.
HOLD_S = 3.0

#: Frames queued for the writer thread at most (about 10 s of audio and video): a disk that
#: stalls longer costs frames (video resumes on a keyframe), never unbounded memory.
MAX_QUEUED = 800

#: Codec names as the muxer knows them.
_MUX_NAMES = {"VP8": "vp8", "H264": "h264", "OPUS": "opus"}


def opus_head(channels: int = 2, pre_skip: int = 312, rate: int = 48000) -> bytes:
    """The Opus ``OpusHead`` identification header (RFC 7845 §5.1), the codec's extradata."""
    return (
        b"OpusHead"
        + bytes([1, channels])
        + pre_skip.to_bytes(2, "little")
        + rate.to_bytes(4, "little")
        + b"\x00\x00\x00"
    )


@dataclass(frozen=True, slots=True)
class FileResult:
    """What one finished file holds. ``error`` is None when it was closed cleanly; a stream
    that never delivered a frame leaves no file (``size`` 0) and no error."""

    path: str
    size: int
    has_audio: bool
    has_video: bool
    width: int
    height: int
    video_frames: int
    audio_frames: int
    #: Seconds from the first to the end of the last frame written (either track).
    duration: float
    error: str | None = None


@dataclass(slots=True)
class _Item:
    kind: str  # "audio" | "video"
    data: bytes
    pts: int  # in the track's clock units
    keyframe: bool
    size: tuple[int, int] | None


_CLOSE = object()

#: Muxer options that keep a killed file readable up to its last second: WebM clusters of
#: at most one second, fragmented MP4, and each packet handed to the OS as it is muxed.
_CRASH_SAFE = {
    "webm": {"cluster_time_limit": "1000", "flush_packets": "1"},
    "mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
}


class MediaFileWriter:
    """One output file fed from the event loop; all PyAV work happens on its own thread.

    Args:
        path: the final file name (``.webm`` or ``.mp4``); ``<path>.part`` while writing.
        video_codec: ``VP8`` or ``H264``, or None for no video track.
        audio: whether there is an Opus audio track (48 kHz).
        fallback_size: video size used when no keyframe tells it (e.g. the publisher's
            announced ``videoDimensions``).
    """

    def __init__(
        self,
        path: Path,
        *,
        video_codec: str | None,
        audio: bool,
        fallback_size: tuple[int, int] = (640, 480),
    ) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self._video_codec = video_codec
        self._audio = audio
        self._fallback = fallback_size
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._result: FileResult | None = None
        self._closed = False
        #: Set when a video frame was dropped (queue full): video waits for a keyframe.
        self.wants_keyframe = False
        self.frames_dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"rec:{path.name}", daemon=True)
        self._thread.start()

    def write(
        self, kind: str, data: bytes, pts: int, keyframe: bool, size: tuple[int, int] | None = None
    ) -> None:
        """Queue one frame (never blocks). ``pts`` is in 1/90000 s (video) or 1/48000 s.

        When :data:`MAX_QUEUED` frames are already waiting (the disk stalls), the frame is
        dropped; after a dropped video frame, video resumes at the next keyframe.
        """
        if self._closed:
            return
        video = kind == "video"
        if video and self.wants_keyframe and not keyframe:
            self.frames_dropped += 1
            return
        if self._queue.qsize() >= MAX_QUEUED:
            self.frames_dropped += 1
            if video:
                self.wants_keyframe = True
            return
        if video and keyframe:
            self.wants_keyframe = False
        self._queue.put(_Item(kind, data, pts, keyframe, size))

    def close(self) -> FileResult:
        """Finish the file and wait for the thread (blocking: run it in an executor)."""
        if not self._closed:
            self._closed = True
            self._queue.put(_CLOSE)
        self._thread.join()
        assert self._result is not None
        return self._result

    # -- writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        state = _MuxState(self)
        try:
            # Fail at once on an unusable directory, not at the first frame.
            self.part.parent.mkdir(parents=True, exist_ok=True)
            while True:
                item = self._queue.get()
                if item is _CLOSE:
                    break
                state.feed(item)
            state.finish()
        except Exception as exc:  # disk full, unwritable path, FFmpeg refusing a packet
            state.fail(exc)
            while self._queue.get() is not _CLOSE:  # drain until close() is called
                pass
        self._result = state.result()


class _MuxState:
    """The writer thread's container state (only ever touched by that thread)."""

    def __init__(self, writer: MediaFileWriter) -> None:
        self.w = writer
        self.container: Any = None
        self.vstream: Any = None
        self.astream: Any = None
        self.held: list[_Item] = []
        self.size = writer._fallback
        self.video_frames = 0
        self.audio_frames = 0
        self.first: float | None = None
        self.last = 0.0
        self.last_pts: dict[str, int] = {}
        self.error: str | None = None
        self.final_size = 0

    def feed(self, item: _Item) -> None:
        if self.container is not None:
            self._mux(item)
            return
        if item.kind == "video":
            if not item.keyframe:
                return  # cannot start on a delta frame
            if item.size is not None:
                self.size = item.size
            self.held.append(item)
            self._open()
            return
        self.held.append(item)
        audio = [h for h in self.held if h.kind == "audio"]
        if self.w._video_codec is None or (
            len(audio) > 1 and (audio[-1].pts - audio[0].pts) / 48000 >= HOLD_S
        ):
            self._open()

    def _open(self) -> None:
        import av  # heavy import, only where files are written

        self.w.part.parent.mkdir(parents=True, exist_ok=True)
        fmt = "mp4" if self.w.path.suffix == ".mp4" else "webm"
        self.container = av.open(
            str(self.w.part), "w", format=fmt, container_options=_CRASH_SAFE[fmt]
        )
        if self.w._video_codec is not None:
            vs = self.container.add_stream(_MUX_NAMES[self.w._video_codec], rate=30)
            vs.width, vs.height = self.size
            vs.time_base = Fraction(1, 90000)
            self.vstream = vs
        if self.w._audio:
            a = self.container.add_stream("opus", rate=48000)
            a.time_base = Fraction(1, 48000)
            a.codec_context.extradata = opus_head()
            self.astream = a
        held, self.held = self.held, []
        for item in held:
            self._mux(item)

    def _mux(self, item: _Item) -> None:
        import av

        stream = self.vstream if item.kind == "video" else self.astream
        if stream is None:
            return
        rate = 90000 if item.kind == "video" else 48000
        pts = item.pts
        last = self.last_pts.get(item.kind)
        if last is not None and pts <= last:
            pts = last + 1  # the muxer needs strictly increasing timestamps per track
        self.last_pts[item.kind] = pts
        packet = av.Packet(item.data)
        packet.stream = stream
        packet.time_base = Fraction(1, rate)
        packet.pts = packet.dts = pts
        if item.keyframe:
            packet.is_keyframe = True
        self.container.mux(packet)
        t = pts / rate
        self.first = t if self.first is None else min(self.first, t)
        frame_len = 0.02 if item.kind == "audio" else 0.0
        self.last = max(self.last, t + frame_len)
        if item.kind == "video":
            self.video_frames += 1
        else:
            self.audio_frames += 1

    def finish(self) -> None:
        if self.container is None and self.held:
            self._open()
        if self.container is None:
            return  # no media arrived: no file (size 0), which is not an error
        self.container.close()
        self.container = None
        os.replace(self.w.part, self.w.path)
        self.final_size = self.w.path.stat().st_size

    def fail(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"
        log.error("recording %s failed: %s", self.w.path, self.error)
        if self.container is not None:
            try:
                self.container.close()
            except Exception as close_exc:  # the file is lost either way; keep the first error
                log.debug("closing %s after failure: %s", self.w.part, close_exc)
            self.container = None

    def result(self) -> FileResult:
        return FileResult(
            path=str(self.w.path),
            size=self.final_size,
            has_audio=self.audio_frames > 0,
            has_video=self.video_frames > 0,
            width=self.size[0] if self.video_frames else 0,
            height=self.size[1] if self.video_frames else 0,
            video_frames=self.video_frames,
            audio_frames=self.audio_frames,
            duration=max(0.0, self.last - self.first) if self.first is not None else 0.0,
            error=self.error,
        )
