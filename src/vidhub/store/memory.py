"""In-memory store engine: records kept as encoded bytes in insertion-ordered dicts.

Theory of operation: every session and connection is held as its serialised record (orjson
bytes of :mod:`vidhub.store.records`), not as live objects. Reads decode a fresh object, so
callers always get copies without a ``deepcopy``; and a large store is a few flat dicts of
``bytes``, which Python's cyclic garbage collector never has to walk (a store of live
dataclasses made every full collection pause the event loop for tens of milliseconds per ten
thousand sessions).

Mutations go through small ``_persist_*`` hooks that receive the same encoded record, so the
write-through engines (SQLite) persist exactly what is held here and never re-implement the
rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from vidhub.core.models import Connection, ConnectionId, Session, SessionId
from vidhub.core.store import ActivationInfo, Store
from vidhub.errors import SessionExists, SessionNotFound
from vidhub.protocol import jsoncodec
from vidhub.store.records import (
    connection_from_dict,
    connection_to_dict,
    session_from_dict,
    session_to_dict,
)

__all__ = ["MemoryStore"]


def encode_session(s: Session) -> bytes:
    return jsoncodec.dumps_bytes(session_to_dict(s))


def decode_session(blob: bytes) -> Session:
    return session_from_dict(jsoncodec.loads(blob))


def encode_connection(c: Connection) -> bytes:
    return jsoncodec.dumps_bytes(connection_to_dict(c))


def decode_connection(blob: bytes) -> Connection:
    return connection_from_dict(jsoncodec.loads(blob))


class MemoryStore(Store):
    """Everything in RAM; lost when the process ends."""

    def __init__(self) -> None:
        self._sessions: dict[SessionId, bytes] = {}
        self._conns: dict[SessionId, dict[ConnectionId, bytes]] = {}
        #: "<session id> <token id>" -> connection id, for pending connections only.
        self._tokens: dict[str, ConnectionId] = {}

    # -- persistence hooks (no-ops here) -------------------------------------------------
    def _persist_session(self, session_id: SessionId, blob: bytes) -> None:
        """Called after a session is added."""

    def _persist_session_deleted(self, session_id: SessionId) -> None:
        """Called after a session and its connections are removed."""

    def _persist_connection(
        self, session_id: SessionId, conn_id: ConnectionId, blob: bytes
    ) -> None:
        """Called after a connection is added or changed."""

    def _persist_connection_deleted(self, session_id: SessionId, conn_id: ConnectionId) -> None:
        """Called after a connection is removed."""

    # -- loading (used by persistent subclasses at start) --------------------------------
    def _load(
        self, sessions: list[tuple[SessionId, bytes]], conns: list[tuple[SessionId, bytes]]
    ) -> None:
        for sid, blob in sessions:
            self._sessions[sid] = blob
            self._conns[sid] = {}
        for sid, blob in conns:
            bucket = self._conns.get(sid)
            if bucket is None:
                continue
            c = decode_connection(blob)
            bucket[c.id] = blob
            if c.status == "pending":
                self._tokens[_token_key(sid, c.token_id)] = c.id

    # -- Store ---------------------------------------------------------------------------
    async def create_session(self, session: Session) -> None:
        if session.id in self._sessions:
            raise SessionExists()
        blob = encode_session(session)
        self._sessions[session.id] = blob
        self._conns[session.id] = {}
        self._persist_session(session.id, blob)

    async def get_session(self, session_id: SessionId) -> Session | None:
        blob = self._sessions.get(session_id)
        return decode_session(blob) if blob is not None else None

    async def count_sessions(self) -> int:
        return len(self._sessions)

    async def list_sessions(self) -> list[Session]:
        blobs = list(self._sessions.values())  # a snapshot: writers may run while we yield
        out = []
        for i, blob in enumerate(blobs, 1):
            out.append(decode_session(blob))
            if i % 256 == 0:
                await asyncio.sleep(0)  # decoding thousands of records must not hold the loop
        return out

    async def delete_session(
        self, session_id: SessionId
    ) -> tuple[Session, list[Connection]] | None:
        blob = self._sessions.pop(session_id, None)
        if blob is None:
            return None
        conns = [decode_connection(b) for b in self._conns.pop(session_id, {}).values()]
        for c in conns:
            self._tokens.pop(_token_key(session_id, c.token_id), None)
        self._persist_session_deleted(session_id)
        return decode_session(blob), conns

    async def add_connection(self, conn: Connection) -> None:
        bucket = self._conns.get(conn.session_id)
        if bucket is None:
            raise SessionNotFound()
        blob = encode_connection(conn)
        bucket[conn.id] = blob
        if conn.status == "pending":
            self._tokens[_token_key(conn.session_id, conn.token_id)] = conn.id
        self._persist_connection(conn.session_id, conn.id, blob)

    async def get_connection(
        self, session_id: SessionId, conn_id: ConnectionId
    ) -> Connection | None:
        bucket = self._conns.get(session_id)
        blob = bucket.get(conn_id) if bucket is not None else None
        return decode_connection(blob) if blob is not None else None

    async def list_connections(self, session_id: SessionId) -> list[Connection] | None:
        bucket = self._conns.get(session_id)
        if bucket is None:
            return None
        return [decode_connection(b) for b in bucket.values()]

    def _replace(
        self, session_id: SessionId, conn_id: ConnectionId, token_id: str, c: Connection
    ) -> None:
        # identity fields are not the caller's to change
        c.id, c.session_id, c.token_id = conn_id, session_id, token_id
        blob = encode_connection(c)
        self._conns[session_id][conn_id] = blob
        if c.status != "pending":
            self._tokens.pop(_token_key(session_id, token_id), None)
        self._persist_connection(session_id, conn_id, blob)

    async def update_connection(
        self, session_id: SessionId, conn_id: ConnectionId, change: Callable[[Connection], None]
    ) -> Connection | None:
        bucket = self._conns.get(session_id)
        blob = bucket.get(conn_id) if bucket is not None else None
        if blob is None:
            return None
        work = decode_connection(blob)
        token_id = work.token_id
        change(work)
        # ``work`` is a private decode: handing it back shares nothing with the store
        self._replace(session_id, conn_id, token_id, work)
        return work

    async def delete_connection(
        self, session_id: SessionId, conn_id: ConnectionId
    ) -> Connection | None:
        bucket = self._conns.get(session_id)
        blob = bucket.pop(conn_id, None) if bucket is not None else None
        if blob is None:
            return None
        c = decode_connection(blob)
        self._tokens.pop(_token_key(session_id, c.token_id), None)
        self._persist_connection_deleted(session_id, conn_id)
        return c

    async def activate(
        self, session_id: SessionId, token_id: str, info: ActivationInfo
    ) -> Connection | None:
        conn_id = self._tokens.pop(_token_key(session_id, token_id), None)
        if conn_id is None:
            return None
        c = decode_connection(self._conns[session_id][conn_id])
        info.apply(c)
        self._replace(session_id, conn_id, c.token_id, c)
        return c

    async def deactivate_node(self, node_id: str | None) -> list[Connection]:
        gone: list[Connection] = []
        for sid, bucket in self._conns.items():
            for cid, blob in list(bucket.items()):
                c = decode_connection(blob)
                if c.status == "active" and c.node_id == node_id:
                    del bucket[cid]
                    self._persist_connection_deleted(sid, cid)
                    gone.append(c)
        return gone


def _token_key(session_id: str, token_id: str) -> str:
    # session ids never contain a space (custom ids are [a-zA-Z0-9_-]+)
    return f"{session_id} {token_id}"
