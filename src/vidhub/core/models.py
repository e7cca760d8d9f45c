"""Domain records: a Session owns Connections; a Connection is pending until its token is used.

These are plain mutable dataclasses owned by a :class:`vidhub.core.store.Store`; callers get
copies from the store and hand changes back through its methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vidhub.ids import ConnectionId, SessionId
from vidhub.protocol.openvidu_rest import ConnectionProperties, SessionProperties

__all__ = [
    "Connection",
    "ConnectionId",
    "ConnectionStatus",
    "MediaOptions",
    "Publisher",
    "Session",
    "SessionId",
    "Subscriber",
]

ConnectionStatus = Literal["pending", "active"]


@dataclass(slots=True)
class Session:
    """A session created over REST (or implicitly); ``created_at`` in epoch ms."""

    id: SessionId
    created_at: int
    properties: SessionProperties

    @property
    def unique_id(self) -> str:
        """``<sessionId>_<createdAt>``, used in webhooks and CDR."""
        return f"{self.id}_{self.created_at}"


@dataclass(slots=True)
class MediaOptions:
    """What a publisher announced (publishVideo params), kept for REST views and events."""

    has_audio: bool = True
    audio_active: bool = True
    has_video: bool = True
    video_active: bool = True
    type_of_video: str = "CAMERA"
    frame_rate: int | None = None
    video_dimensions: str = ""
    filter: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Publisher:
    """A stream a connection publishes."""

    stream_id: str
    created_at: int
    media_options: MediaOptions


@dataclass(slots=True)
class Subscriber:
    """A subscription of a connection to another's stream (the publisher's stream id)."""

    stream_id: str
    created_at: int


@dataclass(slots=True)
class Connection:
    """A connection (token) of a session.

    ``token`` is the full token string handed to clients (``ws://host?sessionId=..&token=tok_..``);
    ``token_id`` its unguessable ``tok_`` part, which is what joins are matched on.
    """

    id: ConnectionId
    session_id: SessionId
    token: str
    token_id: str
    created_at: int
    properties: ConnectionProperties
    status: ConnectionStatus = "pending"
    active_at: int | None = None
    location: str | None = None
    ip: str | None = None
    platform: str | None = None
    client_data: str | None = None
    #: The node serving this connection while active (multi-node deployments).
    node_id: str | None = None
    publishers: list[Publisher] = field(default_factory=list)
    subscribers: list[Subscriber] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status == "active"
