"""The node directory: this node's heartbeat, the live nodes, and who cleans up after the dead.

Theory of operation. Every ``interval_s`` the directory beats (:meth:`Presence.beat`: this
node's :class:`NodeInfo`, valid for ``ttl_s``) and reads every known node. A known node whose
heartbeat has expired is dead; the survivors race for the claim ``reap:<node>`` and the
winner alone calls ``on_dead(node)`` (which ends that node's sessions), then forgets the
node. With the defaults (beat every 0.5 s, TTL 3 s) a crash is noticed within about 3.5 s.

Safety, never ending the sessions of a live host:

- a node only reaps while its own beats succeed: its view of the others is current;
- after any failure to reach the shared server (a Redis restart or a cut), a node waits one
  TTL plus one beat after its first successful beat before it reaps, so every live node has
  had the time to beat again (a Redis restarted without persistence has forgotten every key);
- the dead node is read once more right before ``on_dead``: a node that came back (restart
  with the same id) is left alone. A restarted node reconciles its own leftovers itself
  (``recover_after_restart``); both paths drop connections atomically in the store, so each
  departure is reported once.

While the shared server is unreachable, :attr:`NodeDirectory.reachable` is false and the
directory logs it once (and once when it is back); ``/health`` reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from vidhub.broker.base import BrokerUnavailable
from vidhub.broker.presence import Presence
from vidhub.protocol.cluster import (
    ClusterMessageError,
    NodeInfo,
    decode_node_info,
    encode_node_info,
)

__all__ = ["NodeDirectory"]

log = logging.getLogger(__name__)

BEAT_INTERVAL_S = 0.5
NODE_TTL_S = 3.0
#: How long one survivor holds the right to clean up after a dead node.
REAP_CLAIM_S = 30.0


class NodeDirectory:
    """Heartbeats this node and watches the others.

    Args:
        presence: the shared presence engine (started by the caller).
        node_id: this node's id.
        info: what to heartbeat, asked before each beat (URL and current load).
        on_dead: called on exactly one survivor for each node that died.
        interval_s: time between beats (and checks of the others).
        ttl_s: how long a beat keeps a node alive.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        presence: Presence,
        node_id: str,
        info: Callable[[], NodeInfo],
        on_dead: Callable[[str], Awaitable[None]],
        *,
        interval_s: float = BEAT_INTERVAL_S,
        ttl_s: float = NODE_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_id = node_id
        self._presence = presence
        self._info = info
        self._on_dead = on_dead
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self._clock = clock
        self._live: dict[str, NodeInfo] = {}
        self._task: asyncio.Task[None] | None = None
        #: False while the shared server cannot be reached
        self.reachable = True
        self.unreachable_since: float | None = None
        # a node just started has not seen the others beat: no reaping for one TTL
        self._reap_after = clock() + ttl_s + interval_s
        self._checked = asyncio.Event()

    # -- lifetime ------------------------------------------------------------------------
    async def start(self) -> None:
        """Beat once (so placement can pick this node at once), then keep beating."""
        if self._task is not None:
            return
        await self.round()
        self._task = asyncio.create_task(self._run(), name="node-directory")

    async def close(self) -> None:
        """Stop beating (the heartbeat then expires: a clean stop ends sessions like a crash
        would only if the node does not come back; ``serve`` drops its own first)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- what others ask -----------------------------------------------------------------
    def live(self) -> dict[str, NodeInfo]:
        """Live nodes (this one included) as of the last round."""
        return dict(self._live)

    async def next_round(self) -> None:
        """Wait until the next round has completed (tests, and callers wanting fresh data)."""
        self._checked.clear()
        await self._checked.wait()

    # -- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)  # the heartbeat period
            try:
                await self.round()
            except Exception:
                log.exception("node directory round failed")

    async def round(self) -> None:
        """One beat, one look at the others, and the clean-up of any dead node."""
        mine = self._info()
        try:
            await self._presence.beat(self.node_id, encode_node_info(mine), self.ttl_s)
            members = await self._presence.members()
        except BrokerUnavailable:
            self._unreachable()
            self._checked.set()
            return
        self._reachable()
        live: dict[str, NodeInfo] = {self.node_id: mine}
        dead: list[str] = []
        for node, raw in members.items():
            if node == self.node_id:
                continue
            if raw is None:
                dead.append(node)
                continue
            try:
                live[node] = decode_node_info(raw)
            except ClusterMessageError as exc:
                log.warning("node %s heartbeats garbage (%s); counting it alive", node, exc)
                live[node] = NodeInfo()
        self._live = live
        if dead and self._clock() >= self._reap_after:
            for node in dead:
                await self._reap(node)
        self._checked.set()

    async def _reap(self, node: str) -> None:
        try:
            if not await self._presence.claim(f"reap:{node}", self.node_id, REAP_CLAIM_S):
                return  # another survivor does it
            if (await self._presence.members()).get(node) is not None:
                await self._presence.release(f"reap:{node}")
                return  # it came back
        except BrokerUnavailable:
            self._unreachable()
            return
        log.warning("node %s stopped heartbeating: ending its sessions (nodeCrashed)", node)
        try:
            await self._on_dead(node)
        except Exception:
            log.exception("ending the sessions of dead node %s failed; will retry", node)
            with contextlib.suppress(BrokerUnavailable):
                await self._presence.release(f"reap:{node}")
            return
        with contextlib.suppress(BrokerUnavailable):
            await self._presence.forget(node)
            await self._presence.release(f"reap:{node}")

    def _unreachable(self) -> None:
        if self.reachable:
            log.error("cannot reach Redis: cluster state, heartbeats and events are on hold")
            self.reachable = False
            self.unreachable_since = self._clock()

    def _reachable(self) -> None:
        if not self.reachable:
            log.warning("Redis is reachable again")
            self.reachable = True
            self.unreachable_since = None
            self._reap_after = self._clock() + self.ttl_s + self.interval_s
