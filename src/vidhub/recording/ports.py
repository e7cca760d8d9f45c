"""The recording service's ports: what it needs of the media plane and the live rooms, and
its settings. The in-process ``vidhub.sfu.router.Router`` and the media workers'
``WorkerRouter`` both satisfy :class:`RecorderRouter` (through ``MediaRouter``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from vidhub.errors import VidhubError
from vidhub.recording.model import Recording
from vidhub.sfu.recorder import RecordedStream

__all__ = [
    "ComposedFactory",
    "ComposedRecorder",
    "LiveRooms",
    "RecorderRouter",
    "RecordingFailed",
    "RecordingSettings",
    "notified_roles",
]


class RecordingFailed(VidhubError):
    """The recording could not start (500 with a text body, as CE)."""

    http_status = 500


class RecorderRouter(Protocol):
    """The part of a session's media router the recorder uses (``MediaRouter`` has it)."""

    async def start_recording(
        self,
        recorder_id: str,
        producer_id: str,
        path_stem: str,
        *,
        audio: bool = True,
        video: bool = True,
        fallback_size: tuple[int, int] = (640, 480),
    ) -> str:
        """Record a producer into ``path_stem`` + extension; returns the file path."""

    async def start_feed(
        self,
        recorder_id: str,
        producer_id: str,
        socket_path: str,
        *,
        audio: bool = True,
        video: bool = True,
    ) -> None:
        """Send a producer's frames to a COMPOSED recorder listening on ``socket_path``."""

    async def stop_recording(self, recorder_id: str) -> RecordedStream | None:
        """Finish one producer's file (or feed); None for an unknown recorder id."""


class LiveRooms(Protocol):
    """What the service needs of this node's live rooms."""

    def router_of(self, session_id: str) -> RecorderRouter | None:
        """The session's media router, or None while nobody is connected."""

    async def notify(
        self, session_id: str, roles: frozenset[str], method: str, params: dict[str, Any]
    ) -> None:
        """Send an RPC notification to the session's participants with one of ``roles``."""


def notified_roles(setting: str) -> frozenset[str]:
    """``OPENVIDU_RECORDING_NOTIFICATION`` -> the roles told about recordings."""
    return {
        "none": frozenset(),
        "moderator": frozenset({"MODERATOR"}),
        "publisher_moderator": frozenset({"PUBLISHER", "MODERATOR"}),
        "all": frozenset({"SUBSCRIBER", "PUBLISHER", "MODERATOR"}),
    }.get(setting, frozenset({"PUBLISHER", "MODERATOR"}))


@dataclass(frozen=True, slots=True)
class RecordingSettings:
    """The ``OPENVIDU_RECORDING_*`` settings the service uses."""

    path: Path
    public_access: bool = False
    autostop_timeout_s: float = 120.0
    notification: str = "publisher_moderator"


class ComposedRecorder(Protocol):
    """A running COMPOSED recording (see :mod:`vidhub.recording.composed`)."""

    #: Where streams are fed (:meth:`RecorderRouter.start_feed`).
    socket_path: str

    async def stop(self) -> tuple[int, float, str | None]:
        """Finish the file; returns (size, duration, error)."""


#: Starts the composed recorder of a recording: (recording, its folder) -> recorder.
ComposedFactory = Callable[[Recording, Path], Awaitable[ComposedRecorder]]
