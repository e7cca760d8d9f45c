"""The gateway from the domain to live participants (implemented by the signalling layer).

The SessionManager uses it to reach connected participants (signals, evictions,
force-unpublish) without knowing about WebSockets or media. Until signalling is wired in,
:class:`NoLiveParticipants` answers that nobody is connected.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from vidhub.ids import ConnectionId, SessionId

__all__ = ["LiveGateway", "NoLiveParticipants"]


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


class NoLiveParticipants:
    """A gateway for a server with no signalling: nobody is ever connected."""

    async def send_signal(
        self,
        session_id: SessionId,
        to: Sequence[ConnectionId],
        sender: ConnectionId | None,
        type_: str,
        data: str,
    ) -> None:
        return None

    async def evict(self, session_id: SessionId, connection_id: ConnectionId, reason: str) -> None:
        return None

    async def force_unpublish(self, session_id: SessionId, stream_id: str, reason: str) -> bool:
        return False
