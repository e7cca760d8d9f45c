"""MediaFileWriter: a stalled disk costs frames, never unbounded memory."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from vidhub.sfu import mediafile
from vidhub.sfu.mediafile import MediaFileWriter

# A VP8 keyframe header (the muxer does not decode; it only needs the key flag and size).
KEY = b"\x10\x02\x00\x9d\x01\x2a\x80\x02\xe0\x01" + bytes(32)


def test_a_stalled_writer_drops_frames_and_then_waits_for_a_keyframe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = threading.Event()
    run = MediaFileWriter._run

    def stalled(self: MediaFileWriter) -> None:
        gate.wait(10)  # the injected fault: a disk that does not take writes
        run(self)

    monkeypatch.setattr(MediaFileWriter, "_run", stalled)
    monkeypatch.setattr(mediafile, "MAX_QUEUED", 10)
    w = MediaFileWriter(tmp_path / "x.webm", video_codec="VP8", audio=False)
    w.write("video", KEY, 0, True, (640, 480))
    for i in range(1, 20):
        w.write("video", b"\x01delta", i * 3000, False)
    assert w.frames_dropped == 10 and w.wants_keyframe
    gate.set()
    result = w.close()
    assert result.error is None and result.video_frames == 10
    assert (tmp_path / "x.webm").is_file()
