"""The media plane as the rooms see it: one router per session.

Rooms code against the :class:`MediaRouter` protocol, the facade of
``vidhub.sfu.router.Router``. The composition root (``server/app.py``) chooses the
:data:`RouterFactory` once and passes it to :class:`~vidhub.rooms.Rooms`; tests pass a fake
one the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from vidhub.protocol.openvidu_rest import IceServer
from vidhub.sfu.recorder import RecordedStream
from vidhub.sfu.stats import RouterStats

__all__ = ["MediaRouter", "RouterFactory", "sfu_router_factory"]


class MediaRouter(Protocol):
    """What a room asks of its media router (producer/consumer ids are ours to choose)."""

    on_endpoint_failed: Callable[[str], Any] | None
    #: Called once with OpenVidu's EndReason (``mediaServerDisconnect``) when the router is
    #: gone without being closed: its media worker crashed or hung. The rooms then end every
    #: stream of the session and build a new router.
    on_closed: Callable[[str], Any] | None

    async def publish(self, producer_id: str, offer_sdp: str) -> str:
        """Accept a publisher's offer; returns the answer SDP."""

    async def subscribe(self, consumer_id: str, producer_id: str, offer_sdp: str) -> str:
        """Accept a subscriber's recvonly offer for a producer; returns the answer SDP."""

    async def add_ice_candidate(
        self, endpoint_id: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        """Apply a trickled remote candidate to a producer or consumer endpoint."""

    async def close_producer(self, producer_id: str) -> None:
        """Stop a producer and its consumers; safe on unknown ids."""

    async def close_consumer(self, consumer_id: str) -> None:
        """Stop a consumer; safe on unknown ids."""

    async def close(self) -> None:
        """Close everything; safe to call twice."""

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
        """Record a producer's tracks, as received, into a file; returns its path
        (INDIVIDUAL recording, ``vidhub.sfu.recorder``)."""

    async def start_feed(
        self,
        recorder_id: str,
        producer_id: str,
        socket_path: str,
        *,
        audio: bool = True,
        video: bool = True,
    ) -> None:
        """Send a producer's frames to a COMPOSED recorder's socket (``vidhub.sfu.feed``)."""

    async def stop_recording(self, recorder_id: str) -> RecordedStream | None:
        """Finish a recording or feed; None for an unknown id."""

    def stats(self) -> RouterStats:
        """Counters of every leg, read-only (a worker's router: its last report, <= ~1 s old)."""


#: Builds the router of one session, given its session id.
RouterFactory = Callable[[str], MediaRouter]


def sfu_router_factory(
    *,
    ice_servers: Sequence[IceServer],
    host_addresses: Sequence[str] | None,
    announced_address: str | None,
    forced_video_codec: str,
) -> RouterFactory:
    """A factory of real SFU routers configured once from the server's settings.

    Args:
        ice_servers: the servers the operator configured (default none: no public STUN is
            ever contacted).
        host_addresses: the only addresses media sockets bind to (``None``: the SFU's default).
        announced_address: an address to put in candidates instead (NAT), or ``None``.
        forced_video_codec: ``OPENVIDU_STREAMS_FORCED_VIDEO_CODEC``.
    """

    # imported here: a server with a fake or remote media plane never loads aiortc
    from aiortc import RTCIceServer

    rtc_servers = [
        RTCIceServer(urls=s.url, username=s.username, credential=s.credential) for s in ice_servers
    ]

    def make(session_id: str) -> MediaRouter:
        from vidhub.sfu.router import Router

        router: MediaRouter = Router(
            ice_servers=rtc_servers,
            host_addresses=host_addresses,
            announced_address=announced_address,
            forced_video_codec=forced_video_codec,
        )
        return router

    return make
