"""SQLite store engine (the default): the memory engine plus write-through to one file.

Theory of operation: all reads are served from RAM; each row's body is the very record the
memory engine holds (orjson bytes of :mod:`vidhub.store.records`), so a write encodes once.
Every mutation is written to SQLite and
committed before the method returns, so an acknowledged change survives ``kill -9``. The
database runs in WAL mode with ``synchronous=NORMAL`` by default: a commit is a single append
to the WAL, safe against process death; ``durability="full"`` adds an fsync per commit, which
also survives power loss. Writes are tiny (one row per change), so they run on the event-loop
thread rather than paying a thread hop per request.

Checkpoints (copying the WAL back into the database, with an fsync) are the one slow step, and
a busy disk can make them take seconds; so a daemon thread with its own connection runs a
``PASSIVE`` checkpoint every ``checkpoint_interval_s``, which never blocks the writer. The
loop's connection checkpoints itself only when the WAL passes 10 000 pages (sustained writes
that never leave the thread a moment to finish), and then has little left to copy. The
sqlite3 module releases the GIL while SQLite works, so the event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path

from vidhub.core.models import Connection, ConnectionId, Session, SessionId
from vidhub.errors import StoreUnavailable
from vidhub.store.memory import MemoryStore, _token_key

__all__ = ["SqliteStore"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    session_id TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (session_id, id)
);
"""
SCHEMA_VERSION = "1"


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    """True when SQLite says the file is not a database or is damaged (not a permission or
    space problem)."""
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "schema version" in text


class _Checkpointer(threading.Thread):
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval_s`` on its own connection."""

    def __init__(self, path: Path, interval_s: float) -> None:
        super().__init__(name="vidhub-sqlite-checkpoint", daemon=True)
        self._path = path
        self._interval_s = interval_s
        self._halt = threading.Event()

    def run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            while not self._halt.wait(self._interval_s):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error:
                    log.warning(
                        "WAL checkpoint of %s failed; will retry", self._path, exc_info=True
                    )
        finally:
            db.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


class SqliteStore(MemoryStore):
    """Sessions and connections in a SQLite file under the data directory."""

    def __init__(
        self, path: Path | str, durability: str = "normal", checkpoint_interval_s: float = 1.0
    ) -> None:
        super().__init__()
        self._path = Path(path)
        self._durability = "FULL" if durability == "full" else "NORMAL"
        self._checkpoint_interval_s = checkpoint_interval_s
        self._checkpointer: _Checkpointer | None = None
        self._db: sqlite3.Connection | None = None
        self._seq = 0
        self._last_write_error = -1e9

    async def start(self) -> None:
        """Open (or create) the database and load it.

        Raises:
            StoreUnavailable: the file or its directory cannot be used; the message names the
                file and what to do. Nothing is written to a file that is not a vidhub
                database.
        """
        if self._db is not None:
            return
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            if self._db is not None:
                self._db.close()
                self._db = None
            if _is_corrupt(exc):
                raise StoreUnavailable(
                    f"{self._path} is not a usable SQLite database ({exc}); move it aside or "
                    "restore it from a backup, then start again (vidhub left it untouched)"
                ) from None
            raise StoreUnavailable(
                f"cannot use the database {self._path} ({exc}); check that the file and its "
                "directory are readable and writable and that the disk is not full"
            ) from None
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create the data directory {self._path.parent} "
                f"({exc.strerror or exc}); check its permissions and free space"
            ) from None

    def _open(self) -> None:
        if str(self._path) != ":memory:":
            self._path.parent.mkdir(parents=True, exist_ok=True)
            if self._path.exists() and not self._path.is_file():
                raise sqlite3.OperationalError("not a regular file")
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db = db
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._durability}")
        # the checkpointer thread does the work; the loop checkpoints only as a safety valve,
        # when sustained writes outrun it (WAL over ~40 MB)
        db.execute("PRAGMA wal_autocheckpoint=10000")
        db.executescript(_SCHEMA)
        row = db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"unsupported vidhub schema version {row[0]}")
        sessions = [
            (SessionId(sid), bytes(b))
            for sid, b in db.execute("SELECT id, body FROM sessions ORDER BY seq")
        ]
        conns = [
            (SessionId(sid), bytes(b))
            for sid, b in db.execute("SELECT session_id, body FROM connections ORDER BY seq")
        ]
        seqs = db.execute(
            "SELECT MAX(m) FROM (SELECT MAX(seq) m FROM sessions "
            "UNION ALL SELECT MAX(seq) FROM connections)"
        ).fetchone()
        self._seq = int(seqs[0] or 0)
        self._load(sessions, conns)
        if str(self._path) != ":memory:":
            self._checkpointer = _Checkpointer(self._path, self._checkpoint_interval_s)
            self._checkpointer.start()

    async def close(self) -> None:
        if self._checkpointer is not None:
            # joining may wait for a checkpoint in progress: not on the loop's thread
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
        if self._db is not None:
            self._db.close()  # the last connection to close checkpoints the rest
            self._db = None

    def _exec(self, sql: str, args: tuple[object, ...]) -> None:
        if self._db is None:
            raise RuntimeError("SqliteStore used before start()")
        # isolation_level=None: each statement is its own committed transaction.
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from None

    def _write_failed(self, exc: sqlite3.Error) -> StoreUnavailable:
        """A write failed (full disk, read-only file, I/O error): one line naming the file,
        and 503 + Retry-After to the caller instead of a 500."""
        now = time.monotonic()
        if now - self._last_write_error >= 10.0:
            self._last_write_error = now
            log.error(
                "cannot write to the database %s (%s); free disk space or fix its permissions",
                self._path,
                exc,
            )
        return StoreUnavailable(f"the server cannot save changes right now ({exc}); retry later")

    async def create_session(self, session: Session) -> None:
        try:
            await super().create_session(session)
        except StoreUnavailable:
            # not saved: forget it in RAM too, so a restart does not disagree with the answer
            self._sessions.pop(session.id, None)
            self._conns.pop(session.id, None)
            raise

    async def add_connection(self, conn: Connection) -> None:
        try:
            await super().add_connection(conn)
        except StoreUnavailable:
            self._forget_connection(conn)
            raise

    def _forget_connection(self, conn: Connection) -> None:
        conns = self._conns.get(conn.session_id)
        if conns is not None:
            conns.pop(conn.id, None)
        self._tokens.pop(_token_key(conn.session_id, conn.token_id), None)

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _persist_session(self, session_id: SessionId, blob: bytes) -> None:
        self._exec(
            "INSERT INTO sessions (id, seq, body) VALUES (?, ?, ?)",
            (session_id, self._next(), blob),
        )

    def _persist_session_deleted(self, session_id: SessionId) -> None:
        if self._db is None:
            raise RuntimeError("SqliteStore used before start()")
        try:
            with self._db:  # one transaction for both tables
                self._db.execute("BEGIN")
                self._db.execute("DELETE FROM connections WHERE session_id = ?", (session_id,))
                self._db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))
        except sqlite3.Error as exc:
            raise self._write_failed(exc) from None

    def _persist_connection(
        self, session_id: SessionId, conn_id: ConnectionId, blob: bytes
    ) -> None:
        self._exec(
            "INSERT INTO connections (session_id, id, seq, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (session_id, id) DO UPDATE SET body = excluded.body",
            (session_id, conn_id, self._next(), blob),
        )

    def _persist_connection_deleted(self, session_id: SessionId, conn_id: ConnectionId) -> None:
        self._exec("DELETE FROM connections WHERE session_id = ? AND id = ?", (session_id, conn_id))
