"""The Recording record and its OpenVidu JSON forms (openvidu.md §1.9, §4.3).

A :class:`Recording` is what ``GET /openvidu/api/recordings/{id}`` shows and what is kept on
disk next to the files (``.recording.<id>``, as OpenVidu does), so it survives restarts.
Status moves ``starting`` -> ``started`` -> ``stopped`` -> ``ready``, or to ``failed`` from
any of them; ``starting`` is never announced.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from vidhub.core.events import RecordingStatusChanged
from vidhub.ids import SessionId
from vidhub.protocol.openvidu_events import RECORDING_LAYOUT, render_fields
from vidhub.protocol.openvidu_rest import RecordingProperties

__all__ = [
    "IN_PROGRESS",
    "Recording",
    "RecordingStatus",
    "StreamFile",
    "status_event",
]

RecordingStatus = Literal["starting", "started", "stopped", "ready", "failed"]

#: Statuses of a recording whose files are still being written.
IN_PROGRESS: tuple[RecordingStatus, ...] = ("starting", "started", "stopped")


@dataclass(slots=True)
class StreamFile:
    """One stream's file of an INDIVIDUAL recording (the zip's metadata entry).

    Offsets are milliseconds from the recording's ``createdAt``.
    """

    connection_id: str
    stream_id: str
    name: str  # file name inside the recording folder (and the zip)
    client_data: str = ""
    server_data: str = ""
    has_audio: bool = True
    has_video: bool = True
    type_of_video: str = "CAMERA"
    start_time_offset: int = 0
    end_time_offset: int = 0
    size: int = 0
    error: str | None = None

    def metadata_json(self) -> dict[str, Any]:
        """The entry of ``files`` in the zip's JSON (OpenVidu's order)."""
        return {
            "connectionId": self.connection_id,
            "streamId": self.stream_id,
            "size": self.size,
            "clientData": self.client_data,
            "serverData": self.server_data,
            "hasAudio": self.has_audio,
            "hasVideo": self.has_video,
            "typeOfVideo": self.type_of_video,
            "startTimeOffset": self.start_time_offset,
            "endTimeOffset": self.end_time_offset,
        }


@dataclass(slots=True)
class Recording:
    """One recording of one session; ``created_at`` and ``stopped_at`` in epoch ms."""

    id: str
    session_id: SessionId
    unique_session_id: str
    created_at: int
    properties: RecordingProperties
    status: RecordingStatus = "starting"
    size: int = 0
    duration: float = 0.0
    stopped_at: int | None = None
    reason: str | None = None
    #: Why it failed, for the log and the operator (not part of OpenVidu's JSON).
    error: str | None = None
    files: list[StreamFile] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.properties.name or self.id

    @property
    def output_mode(self) -> str:
        return self.properties.output_mode

    @property
    def composed(self) -> bool:
        return self.output_mode in ("COMPOSED", "COMPOSED_QUICK_START")

    @property
    def extension(self) -> str:
        """``zip`` for INDIVIDUAL, ``mp4`` for composed with video, ``webm`` audio-only."""
        if not self.composed:
            return "zip"
        return "mp4" if self.properties.has_video else "webm"

    @property
    def file_name(self) -> str:
        return f"{self.name}.{self.extension}"

    @property
    def url_path(self) -> str:
        """Where the file is served, relative to the public URL."""
        return f"/openvidu/recordings/{self.id}/{self.file_name}"

    def to_json(self, base_url: str) -> dict[str, Any]:
        """``Recording.toJson``: conditional keys as OpenVidu; ``url`` only when ready."""
        p = self.properties
        d: dict[str, Any] = {
            "id": self.id,
            "object": "recording",
            "name": self.name,
            "outputMode": p.output_mode,
        }
        d.update(render_fields(RECORDING_LAYOUT, self.layout().__getitem__))
        d.update(
            sessionId=self.session_id,
            createdAt=self.created_at,
            size=self.size,
            duration=self.duration,
            url=base_url + self.url_path if self.status == "ready" else None,
            hasAudio=p.has_audio,
            hasVideo=p.has_video,
            status=self.status,
        )
        return d

    def layout(self) -> dict[str, Any]:
        """The layout values as :data:`~vidhub.protocol.openvidu_events.RECORDING_LAYOUT`
        reads them: set only for a COMPOSED recording with video (``customLayout`` only for
        a CUSTOM layout that names one)."""
        p = self.properties
        composed_video = self.composed and p.has_video
        custom = composed_video and p.recording_layout == "CUSTOM" and p.custom_layout
        return {
            "composed_video": composed_video,
            "resolution": p.resolution if composed_video else None,
            "frame_rate": p.frame_rate if composed_video else None,
            "recording_layout": p.recording_layout if composed_video else None,
            "custom_layout": p.custom_layout if custom else None,
        }

    # -- persistence ---------------------------------------------------------------------

    def to_record(self) -> dict[str, Any]:
        """Everything, for the ``.recording.<id>`` file."""
        return asdict(self)

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Recording:
        """Inverse of :meth:`to_record`. Raises KeyError/TypeError on a foreign file."""
        props = RecordingProperties(**d["properties"])
        files = [StreamFile(**f) for f in d.get("files", [])]
        rest = {k: v for k, v in d.items() if k not in ("properties", "files")}
        return cls(properties=props, files=files, **rest)


def status_event(rec: Recording, now: int) -> RecordingStatusChanged:
    """The ``recordingStatusChanged`` event for ``rec``'s current status (§4.3)."""
    p = rec.properties
    stopped = rec.status in ("stopped", "ready", "failed")
    return RecordingStatusChanged(
        session_id=rec.session_id,
        unique_session_id=rec.unique_session_id,
        timestamp=now,
        start_time=rec.created_at,
        reason=rec.reason if stopped else None,
        id=rec.id,
        recording_name=rec.name,
        output_mode=p.output_mode,
        **rec.layout(),
        has_audio=p.has_audio,
        has_video=p.has_video,
        size=rec.size,
        duration=rec.duration,
        status=rec.status,
    )
