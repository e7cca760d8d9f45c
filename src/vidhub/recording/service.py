"""RecordingService: OpenVidu's recording rules over the session manager and the media plane.

Theory of operation (openvidu.md §1.9, §4.3, §5.1-5.2):

* ``start`` checks the session as CE does, creates the recording folder and record
  (``starting``), starts the media side, and announces ``started`` (webhook/hub event, and
  ``recordingStarted`` to the participants whose role ``OPENVIDU_RECORDING_NOTIFICATION``
  names).
* INDIVIDUAL: every published stream of a connection with ``record: true`` is recorded by its
  session's media router into ``<streamId>.webm|mp4`` (:meth:`RecorderRouter.start_recording`,
  no transcoding). Streams published later join the recording; an unpublished stream's file
  is finished at once. ``stop`` finishes the files and zips them with OpenVidu's metadata JSON.
* COMPOSED: a :class:`~vidhub.recording.composed.ComposedRecorder` child process receives
  the streams and writes one MP4 (or audio-only WebM) (see that module).
* ``stop`` announces ``stopped``, finishes the files, then ``ready`` (or ``failed``).
* ``recordingMode: ALWAYS`` starts a recording when a stream is published into a session
  that has none; when no publisher remains, an autostop countdown
  (``OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT``) starts, which a new publisher aborts; when it
  expires the recording stops (``automaticStop``) and an empty session is closed. Closing the
  session stops its recording with the session's reason.
* Durability: the record is rewritten atomically at each status change. At start-up a
  recording left ``starting``/``started``/``stopped`` by a previous run (SIGKILL, power loss)
  is finished from what reached the disk when possible, else marked ``failed``; a graceful
  shutdown stops every recording (``openviduServerStopped``) and finishes its files.
* Disk errors (full, unwritable) make the recording ``failed`` with a logged reason; they
  never escape into the caller's request or the event loop.

Event listeners never block the emitter: media work is done in tasks owned here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidhub.core.events import (
    ServerEvent,
    SessionDestroyed,
    WebrtcConnectionCreated,
    WebrtcConnectionDestroyed,
)
from vidhub.errors import (
    Conflict,
    NotAcceptable,
    NotFound,
    NotImplementedFeature,
    SessionNotFound,
    VidhubError,
)
from vidhub.ids import SessionId
from vidhub.manager import SessionManager, SessionView
from vidhub.protocol.openvidu_rest import RecordingProperties
from vidhub.recording.disk import RecordingDisk
from vidhub.recording.model import IN_PROGRESS, Recording, StreamFile, status_event
from vidhub.recording.ports import (
    ComposedFactory,
    ComposedRecorder,
    LiveRooms,
    RecorderRouter,
    RecordingFailed,
    RecordingSettings,
    notified_roles,
)
from vidhub.recording.recovery import recover, zip_metadata

__all__ = [
    "LiveRooms",
    "RecorderRouter",
    "RecordingFailed",
    "RecordingService",
    "RecordingSettings",
    "notified_roles",
]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Active:
    """A recording in progress on this node."""

    rec: Recording
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: stream id -> (the router recording it, recorder id, its file entry)
    streams: dict[str, tuple[RecorderRouter, str, StreamFile]] = field(default_factory=dict)
    composed: ComposedRecorder | None = None
    autostop: asyncio.TimerHandle | None = None


class RecordingService:
    """Recordings of this node (see the module docstring).

    Args:
        manager: the session manager (session lookups, the event bus, the clock).
        settings: the recording settings.
        rooms: the live rooms (media routers, participant notifications); set later with
            :attr:`rooms` when they are built after the service.
        composed_factory: starts COMPOSED recordings; None answers them with 501.
    """

    def __init__(
        self,
        manager: SessionManager,
        settings: RecordingSettings,
        rooms: LiveRooms | None = None,
        composed_factory: ComposedFactory | None = None,
    ) -> None:
        self.manager = manager
        self.settings = settings
        self.rooms = rooms
        self.composed_factory = composed_factory
        self.disk = RecordingDisk(settings.path)
        self._roles = notified_roles(settings.notification)
        self._recordings: dict[str, Recording] = {}
        self._active: dict[str, _Active] = {}  # by session id
        self._tasks: set[asyncio.Task[Any]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifetime ------------------------------------------------------------------------

    async def start_up(self) -> None:
        """Load the recordings on disk, finish or fail those a previous run left in
        progress, and start following the session events."""
        try:
            await asyncio.to_thread(self.disk.check_writable)
        except OSError as exc:
            log.error("recording path %s is not writable: %s", self.settings.path, exc)
        for rec in await asyncio.to_thread(self.disk.load_all):
            self._recordings[rec.id] = rec
            if rec.status in IN_PROGRESS:
                await self._recover(rec)
        self._unsubscribe = self.manager.events.subscribe(self._on_event)

    async def close(self) -> None:
        """Graceful shutdown: stop every recording (``openviduServerStopped``)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for active in list(self._active.values()):
            await self._stop(active, "openviduServerStopped")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _recover(self, rec: Recording) -> None:
        """A recording interrupted by a crash: finish it from the disk, or fail it."""
        await asyncio.to_thread(recover, self.disk, rec)
        await self._save(rec)

    # -- queries ---------------------------------------------------------------------------

    def get(self, recording_id: str) -> Recording:
        """``GET /recordings/{id}``. Raises NotFound."""
        rec = self._recordings.get(recording_id)
        if rec is None:
            raise NotFound()
        return rec

    def list(self) -> list[Recording]:
        """``GET /recordings``: every recording, oldest first."""
        return sorted(self._recordings.values(), key=lambda r: r.created_at)

    def served_file(self, recording_id: str, file_name: str) -> Path | None:
        """A file of a ``ready`` recording, for download; None otherwise."""
        rec = self._recordings.get(recording_id)
        if rec is None or rec.status != "ready":
            return None
        return self.disk.served_file(recording_id, file_name)

    def active_recording(self, session_id: str) -> Recording | None:
        """The session's recording in progress, if any."""
        active = self._active.get(session_id)
        return active.rec if active is not None else None

    def is_recording(self, session_id: str) -> bool:
        """True while the session has a recording ``starting`` or ``started``."""
        active = self._active.get(session_id)
        return active is not None and active.rec.status in ("starting", "started")

    def notified_recording(self, session_id: str, role: str) -> tuple[str, str] | None:
        """(id, name) of the session's recording when ``role`` is told about recordings
        (joinRoom's ``recordingId``/``recordingName``); None otherwise."""
        active = self._active.get(session_id)
        if active is None or active.rec.status != "started" or role not in self._roles:
            return None
        return active.rec.id, active.rec.name

    def holds_session(self, session_id: str) -> bool:
        """True when an empty session must stay for the autostop countdown."""
        return self.is_recording(session_id) and self.settings.autostop_timeout_s > 0

    # -- start -----------------------------------------------------------------------------

    def check_startable(self, view: SessionView) -> None:
        """CE's session checks before a start (the properties are checked after them).

        Raises:
            Conflict: RELAYED, or already being recorded (409).
            NotAcceptable: nobody is connected (406).
        """
        if view.session.properties.media_mode != "ROUTED" or view.session.id in self._active:
            raise Conflict()
        if not view.active:
            raise NotAcceptable()

    async def start(self, session_id: str, props: RecordingProperties) -> Recording:
        """``POST /recordings/start`` (properties already merged with the session's defaults).

        Raises:
            SessionNotFound: no such session (404).
            Conflict: the session is RELAYED or already being recorded (409).
            NotAcceptable: nobody is connected (406).
            NotImplementedFeature: COMPOSED without a composed recorder (501).
            RecordingFailed: the folder or the media could not be set up (500).
        """
        view = await self.manager.get_session(SessionId(session_id))
        self.check_startable(view)
        composed = props.output_mode != "INDIVIDUAL"
        if composed and self.composed_factory is None:
            raise NotImplementedFeature()
        rec_id = self.disk.new_id(session_id, set(self._recordings))
        rec = Recording(
            id=rec_id,
            session_id=view.session.id,
            unique_session_id=view.session.unique_id,
            created_at=self.manager.clock.now_ms(),
            properties=props,
        )
        active = _Active(rec)
        self._active[session_id] = active
        self._recordings[rec_id] = rec
        async with active.lock:
            try:
                await asyncio.to_thread(self.disk.create, rec)
            except OSError as exc:
                await self._fail_start(active, f"cannot create the recording folder: {exc}")
                raise RecordingFailed(f"Error starting recording: {exc}") from exc
            try:
                await self._start_media(active, view)
            except Exception as exc:  # the media side refused: fail, never leak a trace
                log.exception("starting the media of recording %s failed", rec_id)
                await self._fail_start(active, f"media: {exc}")
                raise RecordingFailed(f"Error starting recording: {exc}") from exc
            rec.status = "started"
            await self._save(rec)
        await self._announce(rec)
        await self._notify(session_id, "recordingStarted", {"id": rec.id, "name": rec.name})
        return rec

    async def _fail_start(self, active: _Active, why: str) -> None:
        rec = active.rec
        self._active.pop(rec.session_id, None)
        rec.status = "failed"
        rec.error = why
        rec.reason = "recordingStoppedByServer"
        log.error("recording %s failed: %s", rec.id, why)
        await self._save(rec)
        await self._announce(rec)

    async def _start_media(self, active: _Active, view: SessionView) -> None:
        rec = active.rec
        router = self.rooms.router_of(rec.session_id) if self.rooms is not None else None
        if rec.composed:
            assert self.composed_factory is not None
            active.composed = await self.composed_factory(rec, self.disk.folder(rec.id))
        for conn in view.connections:
            for pub in conn.publishers:
                await self._add_stream(active, conn.id, pub.stream_id, router, view)

    async def _add_stream(
        self,
        active: _Active,
        connection_id: str,
        stream_id: str,
        router: RecorderRouter | None,
        view: SessionView | None = None,
    ) -> None:
        """Start recording one published stream into ``active`` (caller holds the lock)."""
        rec = active.rec
        if router is None or stream_id in active.streams or rec.status not in IN_PROGRESS[:2]:
            return
        if view is None:
            try:
                view = await self.manager.get_session(rec.session_id)
            except SessionNotFound:
                return
        conn = next((c for c in view.connections if c.id == connection_id), None)
        pub = next((p for p in conn.publishers if p.stream_id == stream_id), None) if conn else None
        if conn is None or pub is None:
            return
        m = pub.media_options
        audio = rec.properties.has_audio and m.has_audio
        video = rec.properties.has_video and m.has_video
        if not (audio or video):
            return
        recorder_id = f"{rec.id}/{stream_id}"
        if active.composed is not None:
            try:
                await router.start_feed(
                    recorder_id, stream_id, active.composed.socket_path, audio=audio, video=video
                )
            except VidhubError as exc:
                log.warning("recording %s cannot compose %s: %s", rec.id, stream_id, exc)
                return
            feed = StreamFile(connection_id=connection_id, stream_id=stream_id, name="")
            active.streams[stream_id] = (router, recorder_id, feed)
            return
        if not conn.properties.record:
            return  # the connection opted out of INDIVIDUAL recording
        try:
            path = await router.start_recording(
                recorder_id,
                stream_id,
                str(self.disk.folder(rec.id) / stream_id),
                audio=audio,
                video=video,
                fallback_size=_dimensions(m.video_dimensions),
            )
        except VidhubError as exc:
            log.warning("recording %s cannot record %s: %s", rec.id, stream_id, exc)
            return
        entry = StreamFile(
            connection_id=connection_id,
            stream_id=stream_id,
            name=Path(path).name,
            client_data=conn.client_data or "",
            server_data=conn.properties.data,
            has_audio=audio,
            has_video=video,
            type_of_video=m.type_of_video if video else "",
            start_time_offset=max(0, self.manager.clock.now_ms() - rec.created_at),
        )
        active.streams[stream_id] = (router, recorder_id, entry)
        rec.files.append(entry)
        await self._save(rec)

    async def _end_stream(self, active: _Active, stream_id: str) -> None:
        """Finish one stream's file (unpublished, or the recording stopped)."""
        item = active.streams.pop(stream_id, None)
        if item is None:
            return
        router, recorder_id, entry = item
        entry.end_time_offset = max(0, self.manager.clock.now_ms() - active.rec.created_at)
        try:
            result = await router.stop_recording(recorder_id)
        except Exception as exc:  # a worker-backed router may lose its process
            log.exception("finishing %s of recording %s failed", stream_id, active.rec.id)
            entry.error = str(exc)
            return
        if result is None:
            entry.error = "the media router lost the recording"
            return
        f = result.file
        entry.size = f.size
        entry.has_audio = f.has_audio
        entry.has_video = f.has_video
        if not f.has_video:
            entry.type_of_video = ""
        if f.error is not None:
            entry.error = f.error

    # -- stop ------------------------------------------------------------------------------

    async def stop(self, recording_id: str, reason: str = "recordingStoppedByServer") -> Recording:
        """``POST /recordings/stop/{id}``: returns the finished recording.

        Raises:
            NotFound: unknown recording (404).
            NotAcceptable: still ``starting`` (406).
            Conflict: not in progress (409).
        """
        rec = self.get(recording_id)
        if rec.status == "starting":
            raise NotAcceptable()
        active = self._active.get(rec.session_id)
        if active is None or active.rec is not rec or rec.status != "started":
            raise Conflict()
        await self._stop(active, reason)
        return rec

    async def _stop(self, active: _Active, reason: str) -> None:
        rec = active.rec
        if active.autostop is not None:
            active.autostop.cancel()
            active.autostop = None
        async with active.lock:
            if rec.status != "started":
                return
            now = self.manager.clock.now_ms()
            rec.status = "stopped"
            rec.stopped_at = now
            rec.reason = reason
            rec.duration = round((now - rec.created_at) / 1000, 3)
            await self._save(rec)
            await self._announce(rec)
            await self._notify(
                rec.session_id,
                "recordingStopped",
                {"id": rec.id, "name": rec.name, "reason": reason},
            )
            if active.composed is not None:
                # the composer finishes first, while every tile is still fed: closing the
                # feeds first would end the file on frames with empty (black) tiles
                await self._finish(active)
            for stream_id in list(active.streams):
                await self._end_stream(active, stream_id)
            self._active.pop(rec.session_id, None)
            if active.composed is None:
                await self._finish(active)
            await self._save(rec)
        await self._announce(rec)

    async def _finish(self, active: _Active) -> None:
        """Turn a stopped recording into ``ready`` or ``failed``."""
        rec = active.rec
        if active.composed is not None:
            size, duration, error = await active.composed.stop()
            rec.size = size
            if duration > 0:
                rec.duration = round(duration, 3)
            if error is not None:
                rec.status, rec.error = "failed", error
            else:
                rec.status = "ready"
            if error is not None:
                log.error("recording %s failed: %s", rec.id, error)
            return
        failed = [f for f in rec.files if f.error is not None]
        if failed and not rec.properties.ignore_failed_streams:
            rec.status = "failed"
            rec.error = "; ".join(f"{f.stream_id}: {f.error}" for f in failed)
            log.error("recording %s failed: %s", rec.id, rec.error)
            return
        try:
            rec.size = await asyncio.to_thread(self.disk.write_zip, rec, zip_metadata(rec))
        except OSError as exc:
            rec.status = "failed"
            rec.error = f"cannot write the zip: {exc}"
            log.error("recording %s failed: %s", rec.id, rec.error)
            return
        rec.status = "ready"

    # -- delete ----------------------------------------------------------------------------

    async def delete(self, recording_id: str) -> None:
        """``DELETE /recordings/{id}``. Raises NotFound, or Conflict while in progress."""
        rec = self.get(recording_id)
        if rec.status in ("starting", "started"):
            raise Conflict()
        active = self._active.get(rec.session_id)
        if active is not None and active.rec is rec:
            raise Conflict()  # still being finished
        self._recordings.pop(recording_id, None)
        await asyncio.to_thread(self.disk.delete, recording_id)

    # -- following the sessions ---------------------------------------------------------------

    def _on_event(self, ev: ServerEvent) -> None:
        sid = ev.session_id
        if isinstance(ev, WebrtcConnectionCreated) and ev.connection == "OUTBOUND":
            self._spawn(self._published(sid, ev.connection_id, ev.stream_id))
        elif isinstance(ev, WebrtcConnectionDestroyed) and ev.connection == "OUTBOUND":
            self._spawn(self._unpublished(sid, ev.stream_id))
        elif isinstance(ev, SessionDestroyed):
            active = self._active.get(sid)
            if active is not None:
                self._spawn(self._stop(active, ev.reason or "sessionClosedByServer"))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording task failed", exc_info=task.exception())

    async def _published(self, session_id: str, connection_id: str, stream_id: str) -> None:
        active = self._active.get(session_id)
        if active is None:
            await self._auto_start(session_id)
            return
        if active.autostop is not None:
            active.autostop.cancel()
            active.autostop = None
        router = self.rooms.router_of(session_id) if self.rooms is not None else None
        async with active.lock:
            await self._add_stream(active, connection_id, stream_id, router)

    async def _auto_start(self, session_id: str) -> None:
        """``recordingMode: ALWAYS``: the first publisher starts the recording."""
        try:
            view = await self.manager.get_session(SessionId(session_id))
        except SessionNotFound:
            return
        p = view.session.properties
        if p.recording_mode != "ALWAYS" or p.media_mode != "ROUTED":
            return
        try:
            await self.start(session_id, p.default_recording_properties)
        except VidhubError as exc:
            log.warning("automatic recording of %s did not start: %s", session_id, exc)

    async def _unpublished(self, session_id: str, stream_id: str) -> None:
        active = self._active.get(session_id)
        if active is None:
            return
        async with active.lock:
            await self._end_stream(active, stream_id)
            await self._save(active.rec)
        try:
            view = await self.manager.get_session(SessionId(session_id))
        except SessionNotFound:
            return  # sessionDestroyed stops the recording
        if any(c.publishers for c in view.connections) or active.autostop is not None:
            return
        loop = asyncio.get_running_loop()
        active.autostop = loop.call_later(
            self.settings.autostop_timeout_s, lambda: self._spawn(self._autostop(active))
        )

    async def _autostop(self, active: _Active) -> None:
        active.autostop = None
        sid = active.rec.session_id
        await self._stop(active, "automaticStop")
        try:
            view = await self.manager.get_session(sid)
        except SessionNotFound:
            return
        if not view.active:
            await self.manager.close_session(sid, "automaticStop")

    # -- helpers ---------------------------------------------------------------------------

    async def _save(self, rec: Recording) -> None:
        try:
            await asyncio.to_thread(self.disk.save, rec)
        except OSError as exc:
            # The record lives on in memory; only a restart would lose the status.
            log.error("cannot save the record of recording %s: %s", rec.id, exc)

    async def _announce(self, rec: Recording) -> None:
        if rec.status == "starting":
            return
        await self.manager.events.emit(status_event(rec, self.manager.clock.now_ms()))

    async def _notify(self, session_id: str, method: str, params: dict[str, Any]) -> None:
        if self.rooms is None or not self._roles:
            return
        try:
            await self.rooms.notify(session_id, self._roles, method, params)
        except Exception:
            log.exception("notifying %s of %s failed", session_id, method)


def _dimensions(raw: str) -> tuple[int, int]:
    """``{"width":W,"height":H}`` as announced by the publisher, else 640x480."""
    import json

    try:
        d = json.loads(raw) if raw else {}
        w, h = int(d.get("width", 640)), int(d.get("height", 480))
    except (ValueError, TypeError, AttributeError):
        return (640, 480)
    return (w, h) if 0 < w < 8192 and 0 < h < 8192 else (640, 480)
