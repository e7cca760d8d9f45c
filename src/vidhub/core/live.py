"""The gateway from the domain to live participants.

The SessionManager uses it to reach connected participants (signals, evictions,
force-unpublish) without knowing about WebSockets or media. It is implemented by the room
domain (:class:`vidhub.rooms.Rooms`) and, in front of it on a shared Redis, by the cluster
relay (:class:`vidhub.cluster.ClusterGateway`); the composition root passes the finished one
to the SessionManager's constructor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from vidhub.ids import ConnectionId, SessionId

__all__ = ["LiveGateway"]


class LiveGateway(Protocol):
    """What the domain may ask of connected participants."""

    async def send_signal(
        self,
        session_id: SessionId,
        to: Sequence[ConnectionId],
        sender: ConnectionId | None,
        type_: str,
        data: str,
    ) -> None:
        """Deliver a signal to the listed active connection ids."""

    async def evict(self, session_id: SessionId, connection_id: ConnectionId, reason: str) -> None:
        """Disconnect a participant (participantEvicted to it, participantLeft to others)."""

    async def force_unpublish(self, session_id: SessionId, stream_id: str, reason: str) -> bool:
        """Stop a stream; returns ``False`` when no such live stream exists."""
