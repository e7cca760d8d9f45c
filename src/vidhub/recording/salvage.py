"""Finishing a stream file that a crash left half-written (blocking; call from a thread).

The muxer writes ``<file>.part`` and renames it when it closed cleanly. After a SIGKILL the
``.part`` holds every cluster written so far but no index; :func:`salvage_stream_file`
copies its readable packets into a properly closed file under the final name (no
decoding), or reports why it could not.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["salvage_stream_file"]

log = logging.getLogger(__name__)


def salvage_stream_file(path: Path) -> tuple[int, float, str | None]:
    """Make ``path`` a finished file from ``path.part`` if needed.

    Returns:
        (size, duration in seconds, None) when the final file exists or was rebuilt;
        (0, 0.0, reason) otherwise.
    """
    if path.is_file():
        return path.stat().st_size, _duration(path), None
    part = path.with_name(path.name + ".part")
    if not part.is_file():
        return 0, 0.0, "the stream file is missing"
    import av

    tmp = path.with_name(path.name + ".salvage")
    packets = 0
    try:
        with av.open(str(part)) as src:
            fmt = "mp4" if path.suffix == ".mp4" else "webm"
            with av.open(str(tmp), "w", format=fmt) as dst:
                streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
                for pkt in src.demux():
                    if pkt.dts is None or pkt.size == 0:
                        continue
                    pkt.stream = streams[pkt.stream.index]
                    dst.mux(pkt)
                    packets += 1
    except Exception as exc:  # FFmpeg's errors for truncated input, or I/O errors
        if packets == 0:
            tmp.unlink(missing_ok=True)
            return 0, 0.0, f"the interrupted file is unreadable: {exc}"
        log.info("salvaged %d packets of %s before: %s", packets, part, exc)
    if packets == 0:
        tmp.unlink(missing_ok=True)
        return 0, 0.0, "the interrupted file holds no media"
    os.replace(tmp, path)
    part.unlink(missing_ok=True)
    return path.stat().st_size, _duration(path), None


def _duration(path: Path) -> float:
    import av

    try:
        with av.open(str(path)) as c:
            return (c.duration or 0) / 1e6
    except Exception:  # unreadable: the size still tells the operator something
        return 0.0
