"""Finishing, at start-up, the recordings a previous run left in progress (blocking; run it
in a thread).

A recording found ``starting``, ``started`` or ``stopped`` was interrupted (SIGKILL, power
loss). INDIVIDUAL: every stream file is finished from its ``.part`` by
:func:`~vidhub.recording.salvage.salvage_stream_file` (no decoding) and the zip is written,
making the recording ``ready``; COMPOSED: its child finishes the file when its parent dies,
and the recording is ``ready`` if that file is complete. Anything else is ``failed``.
"""

from __future__ import annotations

import logging
from typing import Any

from vidhub.recording.disk import RecordingDisk
from vidhub.recording.model import Recording
from vidhub.recording.salvage import salvage_stream_file

__all__ = ["recover", "zip_metadata"]

log = logging.getLogger(__name__)


def recover(disk: RecordingDisk, rec: Recording) -> None:
    """Finish ``rec`` from what reached the disk (status ``ready``) or mark it ``failed``;
    the caller saves the record."""
    folder = disk.folder(rec.id)
    rec.reason = rec.reason or "openviduServerStopped"
    if rec.composed:
        size, duration, err = salvage_stream_file(folder / rec.file_name)
        ok, rec.size = err is None, size
        if rec.status != "stopped":
            rec.duration = round(duration, 3)
    else:
        ok = bool(rec.files)
        longest = 0.0
        for f in rec.files:
            size, duration, err = salvage_stream_file(folder / f.name)
            f.size = size
            if err is not None:
                f.error = err
                ok = ok and rec.properties.ignore_failed_streams
            if f.end_time_offset <= f.start_time_offset:
                f.end_time_offset = f.start_time_offset + round(duration * 1000)
            longest = max(longest, f.end_time_offset / 1000)
        if rec.status != "stopped":
            rec.duration = round(longest, 3)
        if ok:
            try:
                rec.size = disk.write_zip(rec, zip_metadata(rec))
            except OSError as exc:
                ok = False
                rec.error = f"could not zip after a restart: {exc}"
    rec.stopped_at = rec.stopped_at or rec.created_at + round(rec.duration * 1000)
    if ok:
        rec.status = "ready"
        log.warning("recording %s was interrupted; finished from the disk", rec.id)
    else:
        rec.status = "failed"
        rec.error = rec.error or "the server stopped while recording"
        log.warning("recording %s was interrupted and is marked failed", rec.id)


def zip_metadata(rec: Recording) -> dict[str, Any]:
    """The INDIVIDUAL zip's metadata file (OpenVidu's per-stream sync info)."""
    return {
        "createdAt": rec.created_at,
        "id": rec.id,
        "name": rec.name,
        "sessionId": rec.session_id,
        "files": [f.metadata_json() for f in rec.files if f.error is None and f.size > 0],
    }
