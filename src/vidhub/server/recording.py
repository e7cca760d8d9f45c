"""Mounting recordings: the service over this node's rooms, when ``OPENVIDU_RECORDING=true``.

``setup_recording(app)`` builds the :class:`~vidhub.recording.service.RecordingService`
(stored under ``RECORDINGS``; the REST handlers find it there), lets it reach the live rooms
through :class:`RoomsAccess`, and starts and stops it with the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from vidhub.recording.composed import start_composed
from vidhub.recording.service import RecorderRouter, RecordingService, RecordingSettings
from vidhub.rooms import Rooms
from vidhub.server.keys import CONFIG, MANAGER, RECORDINGS
from vidhub.server.signalling import SIGNALLING

__all__ = ["RoomsAccess", "setup_recording"]


class RoomsAccess:
    """The :class:`~vidhub.recording.service.LiveRooms` view of the signalling rooms."""

    def __init__(self, rooms: Rooms) -> None:
        self._rooms = rooms

    def router_of(self, session_id: str) -> RecorderRouter | None:
        room = self._rooms.room(session_id)
        if room is None or room.closed:
            return None
        return room.router

    async def notify(
        self, session_id: str, roles: frozenset[str], method: str, params: dict[str, Any]
    ) -> None:
        room = self._rooms.room(session_id)
        if room is None:
            return
        targets = [p for p in room.participants.values() if p.role in roles]
        await room.broadcast(method, params, targets)


def setup_recording(app: web.Application) -> None:
    """Build and run the recording service when recording is enabled (after signalling)."""
    cfg = app[CONFIG]
    if not cfg.recording:
        return
    settings = RecordingSettings(
        path=cfg.effective_recording_path,
        public_access=cfg.recording_public_access,
        autostop_timeout_s=float(cfg.recording_autostop_timeout_s),
        notification=cfg.recording_notification,
    )
    manager = app[MANAGER]
    service = RecordingService(manager, settings, composed_factory=start_composed)
    app[RECORDINGS] = service
    manager.ledger.is_recording = service.is_recording
    manager.ledger.holds_session = service.holds_session

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        if SIGNALLING in app:
            rooms = app[SIGNALLING].rooms
            service.rooms = RoomsAccess(rooms)
            rooms.recording_of = service.notified_recording
        await service.start_up()
        yield
        await service.close()

    app.cleanup_ctx.append(lifetime)
