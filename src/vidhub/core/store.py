"""The Store interface: where sessions and connections live.

Theory of operation: the store is the single source of truth for what REST reports and what
survives a restart. Every mutating method is atomic with respect to the others (one engine
call, one transaction) and, for a persistent engine, durable before it returns: a 200 from the
API means the change is on disk. Live media objects are *not* here; only their REST-visible
summaries (publishers, subscribers) are.

Engines (``vidhub.store``): memory, SQLite (extends memory: reads from RAM, writes through),
Redis. All pass ``tests/backends/test_store.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from vidhub.core.models import Connection, ConnectionId, Session, SessionId

__all__ = ["ActivationInfo", "Store"]


class ActivationInfo:
    """What a successful join records on the connection."""

    __slots__ = ("active_at", "client_data", "ip", "location", "node_id", "platform")

    def __init__(
        self,
        active_at: int,
        ip: str | None,
        platform: str | None,
        client_data: str | None,
        location: str = "unknown",
        node_id: str | None = None,
    ) -> None:
        self.active_at = active_at
        self.ip = ip
        self.platform = platform
        self.client_data = client_data
        self.location = location
        self.node_id = node_id

    def apply(self, conn: Connection) -> None:
        """Turn the pending ``conn`` into an active one joined now (engines call this)."""
        conn.status = "active"
        conn.active_at = self.active_at
        conn.ip = self.ip
        conn.platform = self.platform
        conn.client_data = self.client_data
        conn.location = self.location
        conn.node_id = self.node_id
        conn.publishers = []
        conn.subscribers = []


class Store(ABC):
    """Persistence of sessions and their connections.

    All methods return copies; mutating a returned object changes nothing stored.
    """

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open resources (connections, files). Called once before use."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. Safe to call twice."""

    @abstractmethod
    async def create_session(self, session: Session) -> None:
        """Store a new session.

        Raises:
            SessionExists: a session with the same id exists.
        """

    @abstractmethod
    async def get_session(self, session_id: SessionId) -> Session | None:
        """The session, or ``None``."""

    @abstractmethod
    async def list_sessions(self) -> list[Session]:
        """Every session, in creation order."""

    async def count_sessions(self) -> int:
        """How many sessions exist (engines override this with something cheaper)."""
        return len(await self.list_sessions())

    @abstractmethod
    async def delete_session(
        self, session_id: SessionId
    ) -> tuple[Session, list[Connection]] | None:
        """Remove a session and all its connections; returns what was removed, or ``None``."""

    @abstractmethod
    async def add_connection(self, conn: Connection) -> None:
        """Store a new (pending) connection.

        Raises:
            SessionNotFound: the session does not exist.
        """

    @abstractmethod
    async def get_connection(
        self, session_id: SessionId, conn_id: ConnectionId
    ) -> Connection | None:
        """The connection, or ``None``."""

    @abstractmethod
    async def list_connections(self, session_id: SessionId) -> list[Connection] | None:
        """The session's connections in creation order, or ``None`` without the session."""

    @abstractmethod
    async def update_connection(
        self, session_id: SessionId, conn_id: ConnectionId, change: Callable[[Connection], None]
    ) -> Connection | None:
        """Apply ``change`` to the stored connection atomically; returns the new value.

        Returns ``None`` (and changes nothing) when the connection does not exist.
        """

    @abstractmethod
    async def delete_connection(
        self, session_id: SessionId, conn_id: ConnectionId
    ) -> Connection | None:
        """Remove a connection; returns it, or ``None`` if there was none."""

    @abstractmethod
    async def activate(
        self, session_id: SessionId, token_id: str, info: ActivationInfo
    ) -> Connection | None:
        """Consume a token: mark its pending connection active, atomically.

        Returns the activated connection, or ``None`` when there is no pending connection with
        that token in that session (unknown, already used, or deleted). A token can be
        consumed once only, even by concurrent callers.
        """

    @abstractmethod
    async def deactivate_node(self, node_id: str | None) -> list[Connection]:
        """Remove the active connections served by ``node_id`` (after that node restarted).

        Returns the removed connections.
        """
