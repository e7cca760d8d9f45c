"""The gateway from the domain to live participants (implemented by the signalling layer).

The SessionManager uses it to reach connected participants (signals, evictions,
force-unpublish) without knowing about WebSockets or media. Until signalling is wired in,
:class:`NoLiveParticipants` answers that nobody is connected.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["LiveGateway", "NoLiveParticipants"]


class LiveGateway(Protocol):
    """What the domain may ask of connected participants."""

    async def send_signal(
        self, session_id: str, to: list[str], sender: str | None, type_: str, data: str
    ) -> None:
        """Deliver a signal to the listed active connection ids."""

    async def evict(self, session_id: str, connection_id: str, reason: str) -> None:
        """Disconnect a participant (participantEvicted to it, participantLeft to others)."""

    async def force_unpublish(self, session_id: str, stream_id: str, reason: str) -> bool:
        """Stop a stream; returns ``False`` when no such live stream exists."""


class NoLiveParticipants:
    """A gateway for a server with no signalling: nobody is ever connected."""

    async def send_signal(
        self, session_id: str, to: list[str], sender: str | None, type_: str, data: str
    ) -> None:
        return None

    async def evict(self, session_id: str, connection_id: str, reason: str) -> None:
        return None

    async def force_unpublish(self, session_id: str, stream_id: str, reason: str) -> bool:
        return False
