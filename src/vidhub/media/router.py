"""WorkerRouter: a session's ``MediaRouter`` whose Router lives in a media worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from vidhub.errors import NotAcceptable, VidhubError
from vidhub.media.channel import (
    MEDIA_SERVER_DISCONNECT,
    REQUEST_TIMEOUT_S,
    MediaWorkerLost,
    RouterSettings,
    WorkerProcess,
    consume,
)
from vidhub.sfu.mediafile import FileResult
from vidhub.sfu.recorder import RecordedStream
from vidhub.sfu.stats import RouterStats, router_stats_from_dict

__all__ = ["WorkerRouter"]

log = logging.getLogger(__name__)


class WorkerRouter:
    """A session's ``MediaRouter`` whose Router lives in a media worker.

    Same contract as :class:`vidhub.sfu.router.Router` (same errors, same idempotent
    closing), over the control channel. Differences: :meth:`stats` returns the snapshot the
    worker pushed last (at most about a second old; :meth:`fetch_stats` asks for a fresh one),
    and when the worker is lost the router calls ``on_closed(MEDIA_SERVER_DISCONNECT)`` once
    and refuses new legs from then on.
    """

    def __init__(
        self, worker: WorkerProcess, session_id: str, router_id: str, settings: RouterSettings
    ) -> None:
        self.on_endpoint_failed: Callable[[str], Any] | None = None
        #: Called once with a reason when the router is gone without being closed.
        self.on_closed: Callable[[str], Any] | None = None
        self.id = router_id
        self.session_id = session_id
        self._settings = settings
        self._worker = worker
        self._closed = False
        self._lost = False
        self._opened = False
        worker.routers[router_id] = self

    @property
    def worker_index(self) -> int:
        """The index of the worker that owns this router."""
        return self._worker.index

    @property
    def worker_pid(self) -> int:
        return self._worker.pid

    @property
    def closed(self) -> bool:
        return self._closed or self._lost

    async def _call(self, op: str, within: float = REQUEST_TIMEOUT_S, **args: Any) -> Any:
        if self.closed:
            raise NotAcceptable("media router is closed")
        worker = self._worker
        if not worker.ready.done():
            try:
                await asyncio.wait_for(asyncio.shield(worker.ready), within)
            except TimeoutError:
                raise VidhubError(f"media worker {worker.index} is not up yet") from None
        if not self._opened:
            # sent before any other request of this router: the channel keeps the order
            self._opened = True
            opening = worker.send("open", {"router": self.id, **self._settings.as_args()})
            opening.add_done_callback(consume)
        return await worker.call(op, {"router": self.id, **args}, within)

    async def publish(self, producer_id: str, offer_sdp: str) -> str:
        answer: str = await self._call("publish", id=producer_id, sdp=offer_sdp)
        return answer

    async def subscribe(self, consumer_id: str, producer_id: str, offer_sdp: str) -> str:
        answer: str = await self._call(
            "subscribe", id=consumer_id, producer=producer_id, sdp=offer_sdp
        )
        return answer

    async def add_ice_candidate(
        self, endpoint_id: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        if self.closed:
            return  # as the in-process router: candidates for a closed router are dropped
        await self._call(
            "add_ice_candidate",
            id=endpoint_id,
            candidate=candidate,
            sdp_mid=sdp_mid,
            sdp_mline_index=sdp_mline_index,
        )

    async def close_producer(self, producer_id: str) -> None:
        if not self.closed and self._opened:
            with contextlib.suppress(MediaWorkerLost):
                await self._call("close_producer", id=producer_id)

    async def close_consumer(self, consumer_id: str) -> None:
        if not self.closed and self._opened:
            with contextlib.suppress(MediaWorkerLost):
                await self._call("close_consumer", id=consumer_id)

    async def close(self) -> None:
        """Close the worker-side router; idempotent, and quiet when the worker is gone."""
        if self.closed:
            self._closed = True
            return
        opened = self._opened
        self._closed = True
        worker = self._worker
        try:
            if opened and not worker.lost:
                await worker.call("close_router", {"router": self.id}, REQUEST_TIMEOUT_S)
        except MediaWorkerLost:
            pass
        finally:
            worker.routers.pop(self.id, None)

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
        """``Router.start_recording`` in the worker (which writes the file itself)."""
        path: str = await self._call(
            "start_recording",
            recorder=recorder_id,
            producer=producer_id,
            path_stem=path_stem,
            audio=audio,
            video=video,
            fallback_size=list(fallback_size),
        )
        return path

    async def start_feed(
        self,
        recorder_id: str,
        producer_id: str,
        socket_path: str,
        *,
        audio: bool = True,
        video: bool = True,
    ) -> None:
        """``Router.start_feed`` in the worker (which connects to the composer itself)."""
        await self._call(
            "start_feed",
            recorder=recorder_id,
            producer=producer_id,
            socket=socket_path,
            audio=audio,
            video=video,
        )

    async def stop_recording(self, recorder_id: str) -> RecordedStream | None:
        """``Router.stop_recording`` in the worker; works after :meth:`close` too.

        Raises:
            MediaWorkerLost: the worker died: its file is unfinished.
        """
        if self._lost:
            raise MediaWorkerLost(f"media worker {self._worker.index} was lost")
        if not self._opened:
            return None
        data = await self._worker.call(
            "stop_recording", {"router": self.id, "recorder": recorder_id}, REQUEST_TIMEOUT_S
        )
        if data is None:
            return None
        return RecordedStream(**{**data, "file": FileResult(**data["file"])})

    def stats(self) -> RouterStats:
        """The counters the worker pushed last (empty before the first push)."""
        return self._worker.router_stats.get(self.id, RouterStats())

    async def fetch_stats(self) -> RouterStats:
        """The router's counters now, asked of the worker."""
        if self.closed or not self._opened:
            return RouterStats()
        data = await self._call("stats", within=10.0)
        return router_stats_from_dict(data)

    # -- from the worker -------------------------------------------------------------------

    def _endpoint_failed(self, endpoint_id: str) -> None:
        cb = self.on_endpoint_failed
        if cb is not None:
            try:
                cb(endpoint_id)
            except Exception:
                log.exception("on_endpoint_failed failed for %s", endpoint_id)

    def _worker_lost(self, shutting_down: bool) -> None:
        if self.closed:
            return
        self._lost = True
        if shutting_down:
            return
        cb = self.on_closed
        if cb is not None:
            try:
                cb(MEDIA_SERVER_DISCONNECT)
            except Exception:
                log.exception("on_closed failed for router %s", self.id)
