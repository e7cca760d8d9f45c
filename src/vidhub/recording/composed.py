"""ComposedProcess: runs the COMPOSED recorder (:mod:`vidhub.recording.composer`) as a child.

The child gets its own Unix socket (in a private temporary directory: socket paths are
short), the output file and the recording's resolution, frame rate and tracks. Streams reach
it through :meth:`RecorderRouter.start_feed`; :meth:`ComposedProcess.stop` asks it to finish
and returns the file's size and duration. The child is never a participant: nothing of it
appears in REST or in events.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from vidhub.recording.model import Recording

__all__ = ["START_TIMEOUT_S", "STOP_TIMEOUT_S", "ComposedProcess", "start_composed"]

log = logging.getLogger(__name__)

#: Seconds the child may take to start listening, and to finish its file.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0


class ComposedProcess:
    """A running composer child (see the module docstring)."""

    def __init__(self, proc: asyncio.subprocess.Process, socket_dir: str, out: Path) -> None:
        self.proc = proc
        self.socket_dir = socket_dir
        self.socket_path = str(Path(socket_dir) / "feed")
        self.out = out

    async def stop(self) -> tuple[int, float, str | None]:
        """Finish the file; returns (size, duration in seconds, error or None)."""
        proc = self.proc
        try:
            if proc.stdin is not None and proc.returncode is None:
                with contextlib.suppress(ConnectionError):
                    proc.stdin.write(b"stop\n")
                    await proc.stdin.drain()
                    proc.stdin.close()
            assert proc.stdout is not None
            out, _ = await asyncio.wait_for(proc.communicate(), STOP_TIMEOUT_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return 0, 0.0, "the composed recorder did not finish in time"
        finally:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        for line in out.decode(errors="replace").splitlines():
            if line.startswith("RESULT "):
                r = json.loads(line.removeprefix("RESULT "))
                return int(r["size"]), float(r["duration"]), None
        return 0, 0.0, f"the composed recorder exited with {proc.returncode}"


async def start_composed(rec: Recording, folder: Path) -> ComposedProcess:
    """Start the composer child for ``rec`` writing ``folder/<name>.mp4|webm``.

    Raises:
        RuntimeError: the child did not start listening.
    """
    p = rec.properties
    width, height = (int(v) for v in p.resolution.split("x"))
    socket_dir = tempfile.mkdtemp(prefix="vidhub-composer-")
    out = folder / rec.file_name
    args = [
        "-m",
        "vidhub.recording.composer",
        "--socket",
        str(Path(socket_dir) / "feed"),
        "--out",
        str(out),
        "--width",
        str(width),
        "--height",
        str(height),
        "--fps",
        str(p.frame_rate),
    ]
    if not p.has_audio:
        args.append("--no-audio")
    if not p.has_video:
        args.append("--no-video")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT_S)
    except TimeoutError:
        line = b""
    if line.strip() != b"READY":
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        shutil.rmtree(socket_dir, ignore_errors=True)
        raise RuntimeError("the composed recorder did not start")
    return ComposedProcess(proc, socket_dir, out)
