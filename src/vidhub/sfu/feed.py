"""FeedWriter: sends a recorded stream's encoded frames to a COMPOSED recorder process.

The composer listens on a Unix ``SOCK_SEQPACKET`` socket; each stream recorder connects
once and sends one message per frame (whole messages: the kernel never splits them). The
socket is non-blocking and every send is attempted once: when the composer falls behind and
its socket buffer is full, the frame is dropped here (video then waits for the next
keyframe, which it asks for) and forwarding never waits for the composer.

Messages (:func:`pack_frame`): a 10-byte header ``!BBQ`` (kind 0 = hello, 1 = audio,
2 = video; flags bit 0 = keyframe; pts in the track's clock units) followed by the frame, or
for the hello, the stream id and codec names as UTF-8 JSON.
"""

from __future__ import annotations

import json
import logging
import socket
import struct

from vidhub.sfu.mediafile import FileResult

__all__ = ["HEADER", "KIND_AUDIO", "KIND_HELLO", "KIND_VIDEO", "FeedWriter", "pack_frame"]

log = logging.getLogger(__name__)

HEADER = struct.Struct("!BBQ")
KIND_HELLO, KIND_AUDIO, KIND_VIDEO = 0, 1, 2
#: Socket buffer asked for: a few hundred ms of 720p video.
SEND_BUFFER = 4 << 20


def pack_frame(kind: int, keyframe: bool, pts: int, data: bytes) -> bytes:
    return HEADER.pack(kind, 1 if keyframe else 0, max(0, pts)) + data


class FeedWriter:
    """The writer side of a :class:`~vidhub.sfu.recorder.StreamRecorder` feeding a composer.

    Args:
        socket_path: the composer's listening socket.
        stream_id: the stream's id (the composer's tile key).
        video_codec: ``VP8``/``H264`` or None; ``audio``: whether Opus audio follows.
    """

    def __init__(
        self, socket_path: str, stream_id: str, *, video_codec: str | None, audio: bool
    ) -> None:
        self.frames_sent = 0
        self.frames_dropped = 0
        #: Set when a video frame was dropped: nothing more is sent until a keyframe.
        self.wants_keyframe = False
        self._sock: socket.socket | None = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
            self._sock.connect(socket_path)
            self._sock.setblocking(False)
            hello = {"stream": stream_id, "video": video_codec, "audio": audio}
            self._sock.send(pack_frame(KIND_HELLO, False, 0, json.dumps(hello).encode()))
        except OSError as exc:
            log.warning("composer feed for %s unavailable: %s", stream_id, exc)
            self._sock.close()
            self._sock = None
        self._error: str | None = None if self._sock is not None else "composer unreachable"

    def write(
        self, kind: str, data: bytes, pts: int, keyframe: bool, size: tuple[int, int] | None = None
    ) -> None:
        """Send one frame, or drop it if the composer's buffer is full (never blocks)."""
        sock = self._sock
        if sock is None:
            return
        video = kind == "video"
        if video and self.wants_keyframe and not keyframe:
            self.frames_dropped += 1
            return
        try:
            sock.send(pack_frame(KIND_VIDEO if video else KIND_AUDIO, keyframe, pts, data))
        except BlockingIOError:
            self.frames_dropped += 1
            if video:
                self.wants_keyframe = True
            return
        except OSError as exc:  # the composer went away: stop feeding it
            self._error = f"composer connection lost: {exc}"
            sock.close()
            self._sock = None
            return
        self.frames_sent += 1
        if video and keyframe:
            self.wants_keyframe = False

    def close(self) -> FileResult:
        """Close the connection (the composer drops the stream from its layout)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return FileResult("", 0, False, False, 0, 0, self.frames_sent, 0, 0.0, self._error)
