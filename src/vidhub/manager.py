"""SessionLedger and SessionManager: the one rule set for sessions, connections and tokens.

:class:`SessionLedger` holds the rules over the records (a :class:`Store`): token single-use,
joins, leaves, session close on last leave, media bookkeeping. It knows no live participant:
the room domain (:mod:`vidhub.rooms`) calls it for joins, leaves and media, so a rule lives in
exactly one place. It emits OpenVidu lifecycle events on its :class:`EventBus`; webhooks and
the event hub listen there.

:class:`SessionManager` is what REST handlers call: the ledger's operations plus the four that
must also reach connected participants (close a session, delete a connection, send a signal,
force-unpublish), through the :class:`LiveGateway` given at construction (the node's rooms,
or the cluster relay in front of them). The composition root builds the ledger, the rooms over
it, the gateway, then the manager: nothing is wired after construction.

Per-session locks serialise joins, leaves and deletes of one session; different sessions
proceed concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from vidhub import ids
from vidhub.clock import Clock
from vidhub.cluster.placement import LocalPlacement, Placement
from vidhub.core import lifecycle
from vidhub.core.events import EventBus
from vidhub.core.live import LiveGateway
from vidhub.core.models import (
    Connection,
    ConnectionId,
    MediaOptions,
    Publisher,
    Session,
    SessionId,
    Subscriber,
)
from vidhub.core.store import ActivationInfo, Store
from vidhub.errors import (
    BadRequest,
    ConnectionNotFound,
    NotAcceptable,
    Overloaded,
    SessionNotFound,
    TokenInvalid,
    TooManyRequests,
)
from vidhub.protocol.openvidu_rest import (
    ConnectionProperties,
    IceServer,
    SessionProperties,
    SignalRequest,
)

__all__ = ["SessionLedger", "SessionManager", "SessionView"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SessionView:
    """A session with its connections, as REST shows it."""

    session: Session
    connections: list[Connection]
    #: A recording of the session is in progress (REST's ``recording``).
    recording: bool = False

    @property
    def active(self) -> bool:
        return any(c.active for c in self.connections)


class SessionLedger:
    """Sessions, connections and tokens over a :class:`Store`."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        events: EventBus | None = None,
        *,
        ice_servers: tuple[IceServer, ...] = (),
        node_id: str | None = None,
        token_ttl_s: int = 0,
        max_sessions: int = 0,
        max_connections_per_session: int = 0,
    ) -> None:
        self.store = store
        self.clock = clock
        self.events = events or EventBus()
        self.node_id = node_id
        self._ice_servers = ice_servers
        #: Seconds a pending token stays usable; 0 means until its session ends (as OpenVidu).
        self.token_ttl_s = token_ttl_s
        self._locks: dict[SessionId, _SessionLock] = {}
        #: Whether a session is being recorded (set by the recording service when enabled).
        self.is_recording: Callable[[SessionId], bool] = _never
        #: Whether an empty session must stay open (a recording's autostop countdown).
        self.holds_session: Callable[[SessionId], bool] = _never
        #: Caps (0: none): sessions in all, connections in one session; beyond: 429.
        self.max_sessions = max_sessions
        self.max_connections_per_session = max_connections_per_session

    @contextlib.asynccontextmanager
    async def locked(self, session_id: SessionId) -> AsyncIterator[None]:
        """Hold the session's lock: joins, leaves and deletes of one session run one at a time."""
        entry = self._locks.get(session_id)
        if entry is None:
            entry = self._locks[session_id] = _SessionLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            # the last user (holder or waiter) drops the lock, so idle sessions cost nothing
            entry.users -= 1
            if entry.users == 0:
                self._locks.pop(session_id, None)

    # -- sessions ------------------------------------------------------------------------
    async def create_session(self, props: SessionProperties) -> Session:
        """``POST /openvidu/api/sessions``.

        Raises:
            SessionExists: the ``customSessionId`` is taken.
        """
        if self.max_sessions and await self.store.count_sessions() >= self.max_sessions:
            raise TooManyRequests(
                f"session limit reached ({self.max_sessions}, VIDHUB_MAX_SESSIONS)"
            )
        sid = SessionId(props.custom_session_id) if props.custom_session_id else ids.session_id()
        session = Session(id=sid, created_at=self.clock.now_ms(), properties=props)
        await self.store.create_session(session)
        await self.events.emit(lifecycle.session_created(session))
        return session

    async def get_session(self, session_id: SessionId) -> SessionView:
        """``GET /sessions/{id}``. Raises SessionNotFound."""
        s = await self.store.get_session(session_id)
        conns = await self.store.list_connections(session_id)
        if s is None or conns is None:
            raise SessionNotFound()
        return SessionView(s, conns, self.is_recording(s.id))

    async def list_sessions(self) -> list[SessionView]:
        """``GET /sessions``: every session, active or not."""
        out = []
        for i, s in enumerate(await self.store.list_sessions(), 1):
            conns = await self.store.list_connections(s.id)
            if conns is not None:
                out.append(SessionView(s, conns, self.is_recording(s.id)))
            if i % 256 == 0:
                await asyncio.sleep(0)  # a long listing lets other requests in between
        return out

    async def destroy(self, view: SessionView, reason: str) -> None:
        """Remove a session and its connections; emits participantLeft for each active one,
        then sessionDestroyed. A session already gone is a no-op. Call under :meth:`locked`."""
        removed = await self.store.delete_session(view.session.id)
        if removed is None:
            return
        now = self.clock.now_ms()
        for c in removed[1]:
            if c.active:
                await self._emit_left(view.session, c, now, reason)
        await self.events.emit(lifecycle.session_destroyed(view.session, now, reason))

    async def _emit_left(self, session: Session, conn: Connection, now: int, reason: str) -> None:
        for sub in conn.subscribers:
            pub, owner = await self._publisher(session.id, sub.stream_id)
            await self.events.emit(
                lifecycle.webrtc_connection_destroyed(
                    session, conn, pub, sub.created_at, now, reason, receiving_from=owner
                )
            )
        for pub in conn.publishers:
            await self.events.emit(
                lifecycle.webrtc_connection_destroyed(
                    session, conn, pub, pub.created_at, now, reason
                )
            )
        await self.events.emit(lifecycle.participant_left(session, conn, now, reason))

    def _expired(self, conn: Connection, now: int) -> bool:
        return (
            self.token_ttl_s > 0
            and not conn.active
            and now - conn.created_at > self.token_ttl_s * 1000
        )

    async def collect_garbage(self, threshold_s: int) -> list[str]:
        """Remove never-joined sessions older than ``threshold_s`` (no sessionDestroyed, as CE),
        and pending connections whose token has expired. Returns the removed session ids."""
        now = self.clock.now_ms()
        removed: list[str] = []
        for view in await self.list_sessions():
            for c in view.connections:
                if self._expired(c, now):
                    await self.store.delete_connection(c.session_id, c.id)
            if view.active or now - view.session.created_at < threshold_s * 1000:
                continue
            async with self.locked(view.session.id):
                current = await self.store.list_connections(view.session.id)
                if current is not None and not any(c.active for c in current):
                    await self.store.delete_session(view.session.id)
                    removed.append(view.session.id)
        return removed

    # -- connections ---------------------------------------------------------------------
    async def create_connection(
        self, session_id: SessionId, props: ConnectionProperties, ws_base: str
    ) -> Connection:
        """``POST /sessions/{id}/connection``: a pending connection with a fresh token.

        Args:
            ws_base: ``ws[s]://host[:port]`` that clients use to reach this server.

        Raises:
            SessionNotFound: no such session.
            BadRequest: IPCAM connections need the media module.
        """
        if props.type == "IPCAM":
            raise BadRequest("IPCAM connections are not supported by this server")
        if self.max_connections_per_session:
            conns = await self.store.list_connections(SessionId(session_id))
            if conns is not None and len(conns) >= self.max_connections_per_session:
                raise TooManyRequests(
                    f"connection limit of this session reached ({self.max_connections_per_session}"
                    ", VIDHUB_MAX_CONNECTIONS_PER_SESSION)"
                )
        if not props.custom_ice_servers and self._ice_servers:
            props = _with_ice(props, self._ice_servers)
        tok = ids.token_id()
        conn = Connection(
            id=ids.connection_id(),
            session_id=session_id,
            token=f"{ws_base}?sessionId={session_id}&token={tok}",
            token_id=tok,
            created_at=self.clock.now_ms(),
            properties=props,
        )
        await self.store.add_connection(conn)
        return conn

    async def get_connection(self, session_id: SessionId, conn_id: ConnectionId) -> Connection:
        """Raises SessionNotFound (400 at the REST edge) or ConnectionNotFound."""
        if await self.store.get_session(session_id) is None:
            raise SessionNotFound()
        c = await self.store.get_connection(session_id, conn_id)
        if c is None:
            raise ConnectionNotFound()
        return c

    async def update_connection(
        self, session_id: SessionId, conn_id: ConnectionId, role: str | None, record: bool | None
    ) -> Connection:
        """``PATCH /sessions/{id}/connection/{cid}``: change role and/or record."""
        await self.get_connection(session_id, conn_id)

        def change(c: Connection) -> None:
            p = c.properties
            c.properties = replace(
                p,
                record=p.record if record is None else record,
                role=p.role if role is None else role,
            )

        updated = await self.store.update_connection(session_id, conn_id, change)
        if updated is None:
            raise ConnectionNotFound()
        return updated

    async def delete_pending(self, session_id: SessionId, conn_id: ConnectionId) -> None:
        """Revoke a connection that has not joined (its token becomes invalid)."""
        await self.store.delete_connection(session_id, conn_id)

    # -- participants --------------------------------------------------------------------
    async def join(
        self,
        session_id: SessionId,
        token_id: str,
        *,
        ip: str | None,
        platform: str | None,
        client_data: str | None,
    ) -> Connection:
        """Consume a token and make its connection active (joinRoom).

        Raises:
            TokenInvalid: unknown, used or revoked token, or no such session.
        """
        async with self.locked(session_id):
            session = await self.store.get_session(session_id)
            if session is None:
                raise TokenInvalid(f"Token {token_id} is not valid")
            info = ActivationInfo(
                self.clock.now_ms(), ip, platform, client_data, "unknown", self.node_id
            )
            conn = await self.store.activate(session_id, token_id, info)
            if conn is None:
                raise TokenInvalid(f"Token {token_id} is not valid")
            if self.token_ttl_s > 0 and info.active_at - conn.created_at > self.token_ttl_s * 1000:
                # consumed by the attempt (single use) and expired: it is gone either way
                await self.store.delete_connection(conn.session_id, conn.id)
                raise TokenInvalid(f"Token {token_id} has expired")
            # under the lock, as participantLeft: a join and a leave of one session are
            # announced in the order they happened
            await self.events.emit(lifecycle.participant_joined(session, conn))
        return conn

    async def leave(self, session_id: SessionId, conn_id: ConnectionId, reason: str) -> None:
        """A participant leaves; the session closes when it was the last one."""
        async with self.locked(session_id):
            session = await self.store.get_session(session_id)
            if session is None:
                return
            conn = await self.store.delete_connection(session_id, conn_id)
            if conn is None:
                return
            now = self.clock.now_ms()
            await self._emit_left(session, conn, now, reason)
            rest = await self.store.list_connections(session_id) or []
            if not any(c.active for c in rest) and not self.holds_session(session_id):
                await self.destroy(SessionView(session, rest), "lastParticipantLeft")

    async def signal_sent(
        self,
        session: Session,
        sender: ConnectionId | None,
        to: Sequence[ConnectionId],
        type_: str,
        data: str,
    ) -> None:
        """Emit signalSent for a delivered signal (the webhook leaves out a client's
        ``signal:`` prefix)."""
        if sender is not None:
            type_ = type_.removeprefix("signal:")
        await self.events.emit(
            lifecycle.signal_sent(session, self.clock.now_ms(), sender, to, type_, data)
        )

    # -- media bookkeeping (called by signalling) -----------------------------------------
    async def add_publisher(
        self, session_id: SessionId, conn_id: ConnectionId, pub: Publisher
    ) -> None:
        """Record a published stream (publishVideo); emits webrtcConnectionCreated OUTBOUND."""
        conn = await self.store.update_connection(
            session_id, conn_id, lambda c: c.publishers.append(pub)
        )
        session = await self.store.get_session(session_id)
        if conn is not None and session is not None:
            await self.events.emit(
                lifecycle.webrtc_connection_created(session, conn, pub, pub.created_at)
            )

    async def remove_publisher(
        self, session_id: SessionId, conn_id: ConnectionId, stream_id: str, reason: str
    ) -> None:
        """Forget a stream (unpublish); emits webrtcConnectionDestroyed OUTBOUND."""
        gone: list[Publisher] = []

        def drop(c: Connection) -> None:
            gone[:] = (p for p in c.publishers if p.stream_id == stream_id)
            c.publishers = [p for p in c.publishers if p.stream_id != stream_id]

        conn = await self.store.update_connection(session_id, conn_id, drop)
        session = await self.store.get_session(session_id)
        if conn is not None and session is not None:
            now = self.clock.now_ms()
            for pub in gone:
                await self.events.emit(
                    lifecycle.webrtc_connection_destroyed(
                        session, conn, pub, pub.created_at, now, reason
                    )
                )

    async def update_media_options(
        self, session_id: SessionId, conn_id: ConnectionId, stream_id: str, **changes: Any
    ) -> None:
        """Change announced media options (streamPropertyChanged), e.g. ``video_active``."""

        def change(c: Connection) -> None:
            for p in c.publishers:
                if p.stream_id == stream_id:
                    p.media_options = replace(p.media_options, **changes)

        await self.store.update_connection(session_id, conn_id, change)

    async def add_subscriber(
        self, session_id: SessionId, conn_id: ConnectionId, stream_id: str
    ) -> None:
        """Record a subscription (receiveVideoFrom); emits webrtcConnectionCreated INBOUND."""
        sub = Subscriber(stream_id=stream_id, created_at=self.clock.now_ms())
        conn = await self.store.update_connection(
            session_id, conn_id, lambda c: c.subscribers.append(sub)
        )
        session = await self.store.get_session(session_id)
        if conn is not None and session is not None:
            pub, owner = await self._publisher(session_id, stream_id)
            await self.events.emit(
                lifecycle.webrtc_connection_created(
                    session, conn, pub, sub.created_at, receiving_from=owner
                )
            )

    async def remove_subscriber(
        self, session_id: SessionId, conn_id: ConnectionId, stream_id: str, reason: str
    ) -> None:
        """Forget a subscription; emits webrtcConnectionDestroyed INBOUND."""
        gone: list[Subscriber] = []

        def drop(c: Connection) -> None:
            gone[:] = (s for s in c.subscribers if s.stream_id == stream_id)
            c.subscribers = [s for s in c.subscribers if s.stream_id != stream_id]

        conn = await self.store.update_connection(session_id, conn_id, drop)
        session = await self.store.get_session(session_id)
        if conn is not None and session is not None and gone:
            pub, owner = await self._publisher(session_id, stream_id)
            now = self.clock.now_ms()
            for sub in gone:
                await self.events.emit(
                    lifecycle.webrtc_connection_destroyed(
                        session, conn, pub, sub.created_at, now, reason, receiving_from=owner
                    )
                )

    async def _publisher(
        self, session_id: SessionId, stream_id: str
    ) -> tuple[Publisher, ConnectionId]:
        owner = ids.connection_of_stream(stream_id) or ConnectionId(stream_id)
        conn = await self.store.get_connection(session_id, owner)
        for p in conn.publishers if conn else []:
            if p.stream_id == stream_id:
                return p, owner
        return _placeholder_publisher(stream_id), owner

    async def recover_after_restart(self) -> list[Connection]:
        """Drop connections that were active on this node before it restarted."""
        return await self.drop_node(self.node_id, "openviduServerStopped")

    async def drop_node(self, node_id: str | None, reason: str) -> list[Connection]:
        """Drop every connection active on ``node_id`` (a restart, or a crash noticed by
        another node), emitting their departures with ``reason``. Returns them.

        The store removes them atomically, so two nodes doing this at once (a restarted node
        and the survivor that noticed it die) report each departure once.
        """
        gone = await self.store.deactivate_node(node_id)
        now = self.clock.now_ms()
        for c in gone:
            session = await self.store.get_session(c.session_id)
            if session is not None:
                await self._emit_left(session, c, now, reason)
        return gone


class SessionManager:
    """The REST-facing rule set: the ledger's records plus the live gateway.

    Args:
        ledger: the records and their rules.
        live: how to reach connected participants (rooms, or the cluster relay).
    """

    def __init__(
        self, ledger: SessionLedger, live: LiveGateway, placement: Placement | None = None
    ) -> None:
        self.ledger = ledger
        self.live = live
        #: which node hosts each session (one node: this one)
        self.placement: Placement = placement or LocalPlacement()

    @property
    def store(self) -> Store:
        return self.ledger.store

    @property
    def clock(self) -> Clock:
        return self.ledger.clock

    @property
    def events(self) -> EventBus:
        return self.ledger.events

    # -- records only ----------------------------------------------------------------------
    async def create_session(self, props: SessionProperties) -> Session:
        """``POST /openvidu/api/sessions`` (see :meth:`SessionLedger.create_session`); in a
        cluster, the session is placed on the lightest live node."""
        session = await self.ledger.create_session(props)
        try:
            await self.placement.place(session.id)
        except Overloaded:
            log.warning("session %s created unplaced (cluster bus unreachable)", session.id)
        return session

    async def get_session(self, session_id: SessionId) -> SessionView:
        """``GET /sessions/{id}``. Raises SessionNotFound."""
        return await self.ledger.get_session(session_id)

    async def list_sessions(self) -> list[SessionView]:
        """``GET /sessions``: every session, active or not."""
        return await self.ledger.list_sessions()

    async def create_connection(
        self, session_id: SessionId, props: ConnectionProperties, ws_base: str
    ) -> Connection:
        """``POST /sessions/{id}/connection`` (see :meth:`SessionLedger.create_connection`).

        In a cluster the token carries the URL of the node hosting the session, whichever
        node was asked; ``ws_base`` (this node as the caller reached it) otherwise.
        """
        base = await self.placement.ws_base(session_id, ws_base)
        try:
            return await self.ledger.create_connection(session_id, props, base)
        except SessionNotFound:
            await self.placement.forget(session_id)  # placed by the lookup above: undo
            raise

    async def get_connection(self, session_id: SessionId, conn_id: ConnectionId) -> Connection:
        """Raises SessionNotFound (400 at the REST edge) or ConnectionNotFound."""
        return await self.ledger.get_connection(session_id, conn_id)

    async def update_connection(
        self, session_id: SessionId, conn_id: ConnectionId, role: str | None, record: bool | None
    ) -> Connection:
        """``PATCH /sessions/{id}/connection/{cid}``: change role and/or record."""
        return await self.ledger.update_connection(session_id, conn_id, role, record)

    async def collect_garbage(self, threshold_s: int) -> list[str]:
        """See :meth:`SessionLedger.collect_garbage` (the removed sessions' placements go)."""
        removed = await self.ledger.collect_garbage(threshold_s)
        for session_id in removed:
            await self.placement.forget(session_id)
        return removed

    async def recover_after_restart(self) -> list[Connection]:
        """See :meth:`SessionLedger.recover_after_restart`."""
        return await self.ledger.recover_after_restart()

    # -- records and live participants -------------------------------------------------------
    async def close_session(
        self, session_id: SessionId, reason: str = "sessionClosedByServer"
    ) -> None:
        """``DELETE /sessions/{id}``: evict everyone, then destroy. Raises SessionNotFound."""
        async with self.ledger.locked(session_id):
            view = await self.ledger.get_session(session_id)
            for c in view.connections:
                if c.active:
                    await self._evict(session_id, c.id, reason)
            await self.ledger.destroy(view, reason)

    async def end_node(self, node_id: str, reason: str = "nodeCrashed") -> list[str]:
        """A node died: end the sessions it hosted and drop the connections it served.

        Sessions hosted by ``node_id`` (placed there, or unplaced with all their active
        connections there) are closed with ``reason``: participants on other nodes are
        evicted, every active one gets participantLeft, then sessionDestroyed. Connections
        the dead node served in sessions hosted elsewhere leave with ``reason``; such a
        session left with nobody closes as after a last leave. Returns the ended sessions.
        """
        views = await self.ledger.list_sessions()
        hosts = await self.placement.hosts([v.session.id for v in views])
        ended: list[str] = []
        for view, host in zip(views, hosts, strict=True):
            if host is None:
                nodes = {c.node_id for c in view.connections if c.active}
                host = nodes.pop() if len(nodes) == 1 else None
            if host != node_id:
                continue
            try:
                await self.close_session(view.session.id, reason)
            except SessionNotFound:
                continue
            ended.append(view.session.id)
        touched = {c.session_id for c in await self.ledger.drop_node(node_id, reason)}
        for session_id in touched:
            async with self.ledger.locked(session_id):
                try:
                    view = await self.ledger.get_session(session_id)
                except SessionNotFound:
                    continue
                if not view.active and not self.ledger.holds_session(session_id):
                    await self.ledger.destroy(view, "lastParticipantLeft")
        return ended

    async def delete_connection(self, session_id: SessionId, conn_id: ConnectionId) -> None:
        """``DELETE /sessions/{id}/connection/{cid}``: revoke a token or evict a participant."""
        conn = await self.ledger.get_connection(session_id, conn_id)
        if conn.active:
            await self._evict(session_id, conn_id, "forceDisconnectByServer")
            await self.ledger.leave(session_id, conn_id, "forceDisconnectByServer")
        else:
            await self.ledger.delete_pending(session_id, conn_id)

    async def _evict(self, session_id: SessionId, conn_id: ConnectionId, reason: str) -> None:
        try:
            await self.live.evict(session_id, conn_id, reason)
        except Exception:
            log.exception("evicting %s from %s failed", conn_id, session_id)

    async def signal(
        self, req: SignalRequest, sender: ConnectionId | None = None
    ) -> list[ConnectionId]:
        """``POST /openvidu/api/signal`` or a client's sendMessage; returns the recipients.

        Raises:
            SessionNotFound: no session (404).
            NotAcceptable: no participant connected (406, empty body), or a ``to`` id that is
                not an active connection (406 with a message).
        """
        view = await self.ledger.get_session(req.session)
        active = [c.id for c in view.connections if c.active]
        if not active:
            raise NotAcceptable()
        if req.to:
            bad = [t for t in req.to if t not in active]
            if bad:
                raise NotAcceptable(
                    f"The array of connectionIds is not valid. Connections {bad} are not active",
                    empty_body=False,
                )
        to = list(req.to or active)
        await self.live.send_signal(req.session, to, sender, req.type, req.data)
        await self.ledger.signal_sent(view.session, sender, to, req.type, req.data)
        return to

    async def force_unpublish(self, session_id: SessionId, stream_id: str) -> None:
        """``DELETE /sessions/{id}/stream/{streamId}``.

        Raises:
            SessionNotFound: no such session (400 at the edge).
            NotFound-family: the session is not active or the stream does not exist (404).
        """
        view = await self.ledger.get_session(session_id)
        owner = next(
            (c for c in view.connections if any(p.stream_id == stream_id for p in c.publishers)),
            None,
        )
        if owner is None or not await self.live.force_unpublish(
            session_id, stream_id, "forceUnpublishByServer"
        ):
            raise ConnectionNotFound()


@dataclass(slots=True, eq=False)
class _SessionLock:
    """A session's lock and how many callers hold or await it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _never(session_id: SessionId) -> bool:
    return False


def _placeholder_publisher(stream_id: str) -> Publisher:
    return Publisher(stream_id=stream_id, created_at=0, media_options=MediaOptions())


def _with_ice(props: ConnectionProperties, servers: tuple[IceServer, ...]) -> ConnectionProperties:
    return replace(props, custom_ice_servers=servers)
