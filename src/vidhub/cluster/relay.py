"""The cluster relay: a LiveGateway that reaches participants on every node.

Theory of operation (LiveKit's routing, over a Centrifuge-style broker): a participant's
signalling socket and media live on the node its WebSocket reached, and the store records
that node on its connection (``Connection.node_id``). :class:`ClusterGateway` wraps the
node's own gateway (the signalling rooms). For each action it looks the target up in the
store: connections served here (or by no recorded node) go to the local gateway; the others
become a :mod:`vidhub.protocol.cluster` command published on the serving node's channel,
``<prefix>node:<node id>``. Every node subscribes to its own channel and runs the commands it
receives on its local gateway, one at a time in arrival order (so signals keep their order).

Signals are fire-and-forget: recipients are grouped by node, one message per node. Evictions
and force-unpublish are requests: the caller waits for the serving node's reply (matched by
a correlation id) for at most ``reply_timeout_s``; no reply in time, or no node listening on
the channel (a node that is down), counts as "not found" and is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence

from vidhub.broker.base import Broker, Unsubscribe
from vidhub.core.live import LiveGateway
from vidhub.core.models import ConnectionId, SessionId
from vidhub.core.store import Store
from vidhub.protocol import cluster as wire

__all__ = ["ClusterGateway", "node_channel"]

log = logging.getLogger(__name__)

#: How long an eviction or force-unpublish waits for the serving node's answer.
REPLY_TIMEOUT_S = 5.0

Command = wire.SignalCommand | wire.EvictCommand | wire.UnpublishCommand


def node_channel(prefix: str, node_id: str) -> str:
    """The broker channel a node listens on for commands and replies."""
    return f"{prefix}node:{node_id}"


class ClusterGateway:
    """A :class:`LiveGateway` that routes each action to the node serving its target.

    Args:
        local: this node's own gateway (the signalling rooms).
        broker: the bus shared by every node (started by the caller, before :meth:`start`).
        store: the shared store, read to find which node serves a connection or stream.
        node_id: this node's id, as recorded on the connections it serves.
        prefix: channel prefix (deployments sharing one Redis use different ones).
        reply_timeout_s: how long a request waits for the serving node's reply.
    """

    def __init__(
        self,
        local: LiveGateway,
        broker: Broker,
        store: Store,
        node_id: str,
        *,
        prefix: str = "vidhub:",
        reply_timeout_s: float = REPLY_TIMEOUT_S,
    ) -> None:
        self.local = local
        self.node_id = node_id
        self._broker = broker
        self._store = store
        self._prefix = prefix
        self._reply_timeout_s = reply_timeout_s
        self._pending: dict[str, asyncio.Future[bool]] = {}
        self._inbox: asyncio.Queue[Command] = asyncio.Queue()
        self._unsubscribe: Unsubscribe | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    # -- lifetime ------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on this node's channel and start executing the commands it receives."""
        if self._unsubscribe is not None or self._closed:
            return
        self._worker = asyncio.create_task(self._work(), name="cluster-relay")
        self._unsubscribe = await self._broker.subscribe(
            node_channel(self._prefix, self.node_id), self._on_message
        )

    async def close(self) -> None:
        """Stop listening; requests still waiting answer "not found". Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            await self._unsubscribe()
            self._unsubscribe = None
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(False)
        self._pending.clear()

    # -- LiveGateway ---------------------------------------------------------------------
    async def send_signal(
        self,
        session_id: SessionId,
        to: Sequence[ConnectionId],
        sender: ConnectionId | None,
        type_: str,
        data: str,
    ) -> None:
        """Deliver a signal: locally to this node's recipients, one command per other node."""
        by_node: dict[str | None, list[ConnectionId]] = {}
        served = await self._serving_nodes(session_id)
        for cid in to:
            by_node.setdefault(self._route(served.get(cid)), []).append(cid)
        for node, ids in by_node.items():
            if node is None:
                await self.local.send_signal(session_id, ids, sender, type_, data)
                continue
            msg = wire.SignalCommand(session_id, tuple(ids), sender, type_, data)
            if await self._broker.publish(self._channel(node), wire.encode(msg)) == 0:
                log.warning("signal for %d connection(s): node %s is not listening", len(ids), node)

    async def evict(self, session_id: SessionId, connection_id: ConnectionId, reason: str) -> None:
        """Evict a participant on whichever node serves it (waits for that node's reply)."""
        conn = await self._store.get_connection(session_id, connection_id)
        node = self._route(conn.node_id if conn is not None else None)
        if node is None:
            await self.local.evict(session_id, connection_id, reason)
            return
        request_id = uuid.uuid4().hex
        msg = wire.EvictCommand(request_id, self.node_id, session_id, connection_id, reason)
        if not await self._request(node, request_id, msg):
            log.warning("evicting %s: node %s did not confirm", connection_id, node)

    async def force_unpublish(self, session_id: SessionId, stream_id: str, reason: str) -> bool:
        """Stop a stream on the node of the connection publishing it; ``False`` if not found."""
        conns = await self._store.list_connections(session_id) or []
        owner = next(
            (c for c in conns if any(p.stream_id == stream_id for p in c.publishers)), None
        )
        node = self._route(owner.node_id if owner is not None else None)
        if node is None:
            return await self.local.force_unpublish(session_id, stream_id, reason)
        request_id = uuid.uuid4().hex
        msg = wire.UnpublishCommand(request_id, self.node_id, session_id, stream_id, reason)
        return await self._request(node, request_id, msg)

    # -- routing -------------------------------------------------------------------------
    def _route(self, node: str | None) -> str | None:
        """The remote node to send to, or ``None`` for this node (or no node recorded)."""
        return None if node is None or node == self.node_id else node

    def _channel(self, node: str) -> str:
        return node_channel(self._prefix, node)

    async def _serving_nodes(self, session_id: SessionId) -> dict[str, str | None]:
        conns = await self._store.list_connections(session_id) or []
        return {c.id: c.node_id for c in conns}

    async def _request(self, node: str, request_id: str, msg: Command) -> bool:
        """Publish a request to ``node`` and wait for its reply; ``False`` on silence."""
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        try:
            if await self._broker.publish(self._channel(node), wire.encode(msg)) == 0:
                log.warning("node %s is not listening (down?); treating as not found", node)
                return False
            try:
                return await asyncio.wait_for(fut, self._reply_timeout_s)
            except TimeoutError:
                log.warning(
                    "node %s did not answer within %.1fs; treating as not found",
                    node,
                    self._reply_timeout_s,
                )
                return False
        finally:
            self._pending.pop(request_id, None)

    # -- receiving -----------------------------------------------------------------------
    async def _on_message(self, payload: bytes) -> None:
        """Broker handler: replies resolve at once; commands queue for the worker."""
        try:
            msg = wire.decode(payload)
        except wire.ClusterMessageError as exc:
            log.warning("ignoring a cluster message: %s", exc.message)
            return
        if isinstance(msg, wire.Reply):
            fut = self._pending.get(msg.id)
            if fut is not None and not fut.done():
                fut.set_result(msg.ok)
            return
        self._inbox.put_nowait(msg)

    async def _work(self) -> None:
        while True:
            cmd = await self._inbox.get()
            try:
                await self._execute(cmd)
            except Exception:
                log.exception(
                    "cluster command %s for session %s failed", type(cmd).__name__, cmd.session
                )

    async def _execute(self, cmd: Command) -> None:
        # the wire carries plain strings: they become ids here, once
        session = SessionId(cmd.session)
        if isinstance(cmd, wire.SignalCommand):
            to = [ConnectionId(c) for c in cmd.to]
            sender = ConnectionId(cmd.sender) if cmd.sender is not None else None
            await self.local.send_signal(session, to, sender, cmd.type, cmd.data)
            return
        ok = False
        try:
            if isinstance(cmd, wire.EvictCommand):
                await self.local.evict(session, ConnectionId(cmd.connection), cmd.reason)
                ok = True
            else:
                ok = await self.local.force_unpublish(session, cmd.stream, cmd.reason)
        finally:
            reply = wire.encode(wire.Reply(cmd.id, ok))
            await self._broker.publish(self._channel(cmd.reply_to), reply)
