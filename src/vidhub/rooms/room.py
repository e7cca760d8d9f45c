"""A live session ("room"): its media router and its connected participants.

A :class:`Room` owns one :class:`MediaRouter` and the :class:`LiveParticipant` objects of
the participants connected to this node. A participant reaches its client only through a
:class:`ParticipantSink` (notify, close): the signalling layer's RPC session implements it,
a test a list. The room only keeps live state; what REST shows goes through the
:class:`~vidhub.manager.SessionLedger` (see :mod:`vidhub.rooms.rooms`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from vidhub.ids import ConnectionId, SessionId
from vidhub.protocol.openvidu_rpc import IceCandidateParams, RemoteParticipant, StreamInfo
from vidhub.rooms.media import MediaRouter

__all__ = ["LiveParticipant", "ParticipantSink", "Room"]

log = logging.getLogger(__name__)


class ParticipantSink(Protocol):
    """How a room reaches one participant's client, whatever carries it."""

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send an OpenVidu notification (``participantJoined``, ...); never raises for a
        client that is gone (the transport keeps or drops it)."""

    def close_later(self, delay_s: float) -> None:
        """The participant left or was evicted: close its transport after ``delay_s``."""


@dataclass(eq=False)
class LiveParticipant:
    """A connected participant.

    ``subscriptions`` maps a publisher's connection id to the stream id subscribed to;
    ``pending_ice`` buffers trickled candidates per ``endpointName`` until the endpoint
    exists (the browser trickles before publishVideo/receiveVideoFrom are answered).
    """

    connection_id: ConnectionId
    session_id: SessionId
    role: str
    metadata: str
    created_at: int
    sink: ParticipantSink
    stream: StreamInfo | None = None
    subscriptions: dict[str, str] = field(default_factory=dict)
    pending_ice: dict[str, list[IceCandidateParams]] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    gone: bool = False

    def remote(self) -> RemoteParticipant:
        """How the others see this participant (no role)."""
        streams = (self.stream,) if self.stream is not None else ()
        return RemoteParticipant(self.connection_id, self.created_at, self.metadata, streams)

    def consumer_id(self, stream_id: str) -> str:
        """The router endpoint id of this participant's subscription to ``stream_id``."""
        return f"{self.connection_id}_{stream_id}"

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self.sink.notify(method, params)


class Room:
    """One session's live participants and media router."""

    def __init__(self, session_id: SessionId, router: MediaRouter) -> None:
        self.session_id = session_id
        self.router = router
        self.participants: dict[str, LiveParticipant] = {}
        self.closed = False

    def others(self, connection_id: ConnectionId) -> list[LiveParticipant]:
        return [p for cid, p in self.participants.items() if cid != connection_id]

    def find_stream(self, stream_id: str) -> LiveParticipant | None:
        """The participant publishing ``stream_id``."""
        for p in self.participants.values():
            if p.stream is not None and p.stream.id == stream_id:
                return p
        return None

    def owner_of(self, endpoint_id: str) -> LiveParticipant | None:
        """The participant whose producer or consumer has router id ``endpoint_id``."""
        for p in self.participants.values():
            if p.stream is not None and p.stream.id == endpoint_id:
                return p
            if endpoint_id.startswith(p.connection_id + "_"):
                return p
        return None

    def endpoint_of(self, part: LiveParticipant, endpoint_name: str) -> str | None:
        """Router endpoint id for a candidate's ``endpointName``, or ``None`` (not yet)."""
        if endpoint_name == part.connection_id:
            return part.stream.id if part.stream is not None else None
        stream_id = part.subscriptions.get(endpoint_name)
        return part.consumer_id(stream_id) if stream_id is not None else None

    async def broadcast(
        self, method: str, params: dict[str, Any], targets: list[LiveParticipant]
    ) -> None:
        """Notify each target; one failing socket does not stop the others."""
        for p in targets:
            try:
                await p.notify(method, params)
            except Exception:
                log.exception("notifying %s of %s failed", p.connection_id, method)

    async def close(self) -> None:
        """Close the router; idempotent."""
        if self.closed:
            return
        self.closed = True
        try:
            await self.router.close()
        except Exception:
            log.exception("closing the router of %s failed", self.session_id)
