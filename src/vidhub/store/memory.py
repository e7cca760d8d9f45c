"""In-memory store engine: dicts in insertion order; the base of the SQLite engine.

Mutations go through small ``_apply_*`` steps that subclasses extend to persist the same
change, so the write-through engines never re-implement the rules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from vidhub.core.models import Connection, ConnectionId, Session, SessionId
from vidhub.core.store import ActivationInfo, Store
from vidhub.errors import SessionExists, SessionNotFound

__all__ = ["MemoryStore"]


class MemoryStore(Store):
    """Everything in RAM; lost when the process ends."""

    def __init__(self) -> None:
        self._sessions: dict[SessionId, Session] = {}
        self._conns: dict[SessionId, dict[ConnectionId, Connection]] = {}
        #: (session, token id) -> connection id, for pending connections only.
        self._tokens: dict[tuple[SessionId, str], ConnectionId] = {}

    # -- persistence hooks (no-ops here) -------------------------------------------------
    def _persist_session(self, session: Session) -> None:
        """Called after a session is added."""

    def _persist_session_deleted(self, session_id: SessionId) -> None:
        """Called after a session and its connections are removed."""

    def _persist_connection(self, conn: Connection) -> None:
        """Called after a connection is added or changed."""

    def _persist_connection_deleted(self, session_id: SessionId, conn_id: ConnectionId) -> None:
        """Called after a connection is removed."""

    # -- loading (used by persistent subclasses at start) --------------------------------
    def _load(self, sessions: list[Session], conns: list[Connection]) -> None:
        for s in sessions:
            self._sessions[s.id] = s
            self._conns[s.id] = {}
        for c in conns:
            if c.session_id in self._conns:
                self._conns[c.session_id][c.id] = c
                if c.status == "pending":
                    self._tokens[(c.session_id, c.token_id)] = c.id

    # -- Store ---------------------------------------------------------------------------
    async def create_session(self, session: Session) -> None:
        if session.id in self._sessions:
            raise SessionExists()
        self._sessions[session.id] = copy.deepcopy(session)
        self._conns[session.id] = {}
        self._persist_session(session)

    async def get_session(self, session_id: SessionId) -> Session | None:
        s = self._sessions.get(session_id)
        return copy.deepcopy(s) if s else None

    async def list_sessions(self) -> list[Session]:
        return [copy.deepcopy(s) for s in self._sessions.values()]

    async def delete_session(
        self, session_id: SessionId
    ) -> tuple[Session, list[Connection]] | None:
        s = self._sessions.pop(session_id, None)
        if s is None:
            return None
        conns = list(self._conns.pop(session_id, {}).values())
        for c in conns:
            self._tokens.pop((session_id, c.token_id), None)
        self._persist_session_deleted(session_id)
        return s, conns

    async def add_connection(self, conn: Connection) -> None:
        bucket = self._conns.get(conn.session_id)
        if bucket is None:
            raise SessionNotFound()
        stored = copy.deepcopy(conn)
        bucket[conn.id] = stored
        if conn.status == "pending":
            self._tokens[(conn.session_id, conn.token_id)] = conn.id
        self._persist_connection(stored)

    async def get_connection(
        self, session_id: SessionId, conn_id: ConnectionId
    ) -> Connection | None:
        c = self._conns.get(session_id, {}).get(conn_id)
        return copy.deepcopy(c) if c else None

    async def list_connections(self, session_id: SessionId) -> list[Connection] | None:
        bucket = self._conns.get(session_id)
        if bucket is None:
            return None
        return [copy.deepcopy(c) for c in bucket.values()]

    async def update_connection(
        self, session_id: SessionId, conn_id: ConnectionId, change: Callable[[Connection], None]
    ) -> Connection | None:
        c = self._conns.get(session_id, {}).get(conn_id)
        if c is None:
            return None
        work = copy.deepcopy(c)
        change(work)
        # identity fields are not the caller's to change
        work.id, work.session_id, work.token_id = c.id, c.session_id, c.token_id
        self._conns[session_id][conn_id] = work
        if work.status != "pending":
            self._tokens.pop((session_id, work.token_id), None)
        self._persist_connection(work)
        return copy.deepcopy(work)

    async def delete_connection(
        self, session_id: SessionId, conn_id: ConnectionId
    ) -> Connection | None:
        c = self._conns.get(session_id, {}).pop(conn_id, None)
        if c is None:
            return None
        self._tokens.pop((session_id, c.token_id), None)
        self._persist_connection_deleted(session_id, conn_id)
        return c

    async def activate(
        self, session_id: SessionId, token_id: str, info: ActivationInfo
    ) -> Connection | None:
        conn_id = self._tokens.pop((session_id, token_id), None)
        if conn_id is None:
            return None
        c = self._conns[session_id][conn_id]
        c.status = "active"
        c.active_at = info.active_at
        c.ip = info.ip
        c.platform = info.platform
        c.client_data = info.client_data
        c.location = info.location
        c.node_id = info.node_id
        c.publishers = []
        c.subscribers = []
        self._persist_connection(c)
        return copy.deepcopy(c)

    async def deactivate_node(self, node_id: str | None) -> list[Connection]:
        gone: list[Connection] = []
        for sid, bucket in self._conns.items():
            for cid, c in list(bucket.items()):
                if c.status == "active" and c.node_id == node_id:
                    del bucket[cid]
                    self._persist_connection_deleted(sid, cid)
                    gone.append(c)
        return gone
