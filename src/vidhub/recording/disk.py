"""RecordingDisk: the layout of ``OPENVIDU_RECORDING_PATH`` (blocking; call from a thread).

One folder per recording, named by its id, holding the media files, the final file served
(``<name>.zip|mp4|webm``) and ``.recording.<id>``, the Recording record as JSON (OpenVidu
keeps the same hidden file; it is how recordings are found again after a restart). Every
file that matters is written under a temporary name and renamed when complete, so a crash
leaves either the old state or the new one, never a half-written file under a final name.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import zipfile
from pathlib import Path
from typing import Any

from vidhub.recording.model import Recording

__all__ = ["RecordingDisk"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_\-~.]+")


class RecordingDisk:
    """Recordings under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def check_writable(self) -> None:
        """Create the root and prove it is writable. Raises OSError with the reason."""
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / ".vidhub-write-test"
        probe.write_bytes(b"ok")
        probe.unlink()

    def folder(self, recording_id: str) -> Path:
        return self.root / recording_id

    def new_id(self, session_id: str, taken: set[str]) -> str:
        """The session id, or ``<sessionId>~N`` when that is taken (OpenVidu's rule)."""
        candidate, n = session_id, 0
        while candidate in taken or self.folder(candidate).exists():
            n += 1
            candidate = f"{session_id}~{n}"
        return candidate

    def create(self, rec: Recording) -> None:
        """Create the recording's folder and write its record. Raises OSError."""
        self.folder(rec.id).mkdir(parents=True, exist_ok=False)
        self.save(rec)

    def save(self, rec: Recording) -> None:
        """Write the record atomically (temporary file, fsync, rename). Raises OSError."""
        folder = self.folder(rec.id)
        tmp = folder / f".recording.{rec.id}.tmp"
        data = json.dumps(rec.to_record()).encode()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / f".recording.{rec.id}")

    def load_all(self) -> list[Recording]:
        """Every recording found under the root; unreadable records are skipped."""
        out: list[Recording] = []
        if not self.root.is_dir():
            return out
        for folder in sorted(self.root.iterdir()):
            meta = folder / f".recording.{folder.name}"
            if not meta.is_file():
                continue
            try:
                out.append(Recording.from_record(json.loads(meta.read_bytes())))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return out

    def delete(self, recording_id: str) -> None:
        shutil.rmtree(self.folder(recording_id), ignore_errors=True)

    def served_file(self, recording_id: str, file_name: str) -> Path | None:
        """The file to serve for ``/openvidu/recordings/<id>/<file_name>``, or None."""
        if not (_SAFE_NAME.fullmatch(recording_id) and _SAFE_NAME.fullmatch(file_name)):
            return None
        if file_name.startswith(".") or file_name.endswith(".part"):
            return None
        path = self.folder(recording_id) / file_name
        return path if path.is_file() else None

    def write_zip(self, rec: Recording, metadata: dict[str, Any]) -> int:
        """Zip the stream files and ``<name>.json``; returns the zip's size. Raises OSError."""
        folder = self.folder(rec.id)
        final = folder / rec.file_name
        part = folder / (rec.file_name + ".part")
        with zipfile.ZipFile(part, "w", compression=zipfile.ZIP_STORED) as z:
            for f in rec.files:
                src = folder / f.name
                if src.is_file():
                    z.write(src, f.name)
            z.writestr(f"{rec.name}.json", json.dumps(metadata))
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(part, final)
        return final.stat().st_size

    def file_size(self, recording_id: str, name: str) -> int:
        path = self.folder(recording_id) / name
        return path.stat().st_size if path.is_file() else 0
