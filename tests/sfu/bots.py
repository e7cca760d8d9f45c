"""aiortc peers that publish to and subscribe from a Router in-process, on loopback.

A :class:`PublisherBot` sends aiortc's synthetic video (VP8, 640x480) and audio; a
:class:`SubscriberBot` offers recvonly and decodes what arrives, recording the first video
frame with a real width. Both follow the OpenVidu flow: the browser side always offers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiortc import (
    AudioStreamTrack,
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError

from vidhub.media.router import WorkerRouter
from vidhub.sfu.router import Router

#: Either engine: the in-process Router or a media worker's.
AnyRouter = Router | WorkerRouter

__all__ = ["FrameSink", "PublisherBot", "SubscriberBot", "wait_for"]


def _pc() -> RTCPeerConnection:
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def wait_for(event: asyncio.Event, within: float) -> None:
    """Wait for ``event`` or fail with a clear assertion after ``within`` seconds."""
    try:
        await asyncio.wait_for(event.wait(), within)
    except TimeoutError:
        raise AssertionError(f"event not set within {within:.1f} s") from None


class PublisherBot:
    """Publishes synthetic video (and audio) to ``router`` as ``producer_id``."""

    def __init__(
        self, router: AnyRouter, producer_id: str, *, audio: bool = True, video: bool = True
    ) -> None:
        self.router = router
        self.id = producer_id
        self.pc = _pc()
        self.video: MediaStreamTrack | None = None
        if video:
            self.video = VideoStreamTrack()
            self.pc.addTransceiver(self.video, direction="sendonly")
        self.audio: MediaStreamTrack | None = None
        if audio:
            self.audio = AudioStreamTrack()
            self.pc.addTransceiver(self.audio, direction="sendonly")
        self.connected = asyncio.Event()
        self.pc.on("connectionstatechange", self._state)

    async def _state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def start(self) -> str:
        """Offer, publish, apply the answer; returns the answer SDP."""
        answer = await self.router.publish(self.id, await self.offer())
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        return answer

    async def close(self) -> None:
        await self.pc.close()


class FrameSink:
    """Decodes every track a PeerConnection receives; records the first real video frame."""

    def __init__(self, pc: RTCPeerConnection) -> None:
        self.first_video = asyncio.Event()
        self.first_audio = asyncio.Event()
        self.enough_video = asyncio.Event()
        self.video_frames = 0
        self.audio_frames = 0
        self.width = 0
        self.height = 0
        self.t_first_video = 0.0
        self.target_frames = 10
        self._tasks: list[asyncio.Task[None]] = []
        pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.ensure_future(self._drain(track)))

    async def _drain(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame: Any = await track.recv()
                if track.kind == "video":
                    if frame.width > 0:
                        self.video_frames += 1
                        if not self.first_video.is_set():
                            self.width, self.height = frame.width, frame.height
                            self.t_first_video = time.monotonic()
                            self.first_video.set()
                        if self.video_frames >= self.target_frames:
                            self.enough_video.set()
                else:
                    self.audio_frames += 1
                    self.first_audio.set()
        except (MediaStreamError, asyncio.CancelledError):
            pass

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class SubscriberBot(FrameSink):
    """Subscribes ``consumer_id`` to ``producer_id`` and decodes what it receives."""

    def __init__(
        self, router: AnyRouter, consumer_id: str, producer_id: str, *, audio: bool = True
    ) -> None:
        self.router = router
        self.id = consumer_id
        self.producer_id = producer_id
        self.pc = _pc()
        self.pc.addTransceiver("video", direction="recvonly")
        if audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.t_subscribe = 0.0
        super().__init__(self.pc)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        sdp: str = self.pc.localDescription.sdp
        return sdp

    async def start(self) -> str:
        """Offer, subscribe, apply the answer; returns the answer SDP."""
        self.t_subscribe = time.monotonic()
        answer = await self.router.subscribe(self.id, self.producer_id, await self.offer())
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        return answer

    @property
    def join_latency(self) -> float:
        """Seconds from subscribe to the first decoded video frame."""
        return self.t_first_video - self.t_subscribe

    async def close(self) -> None:
        await self.pc.close()
        await super().close()
