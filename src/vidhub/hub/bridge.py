"""The hub across nodes: one :class:`HubBridge` per node joins its :class:`Hub` to the broker.

Theory of operation.

- **Out.** Every event the local hub routes (clients' publishes, replies, lifecycle events) is
  handed to :meth:`HubBridge.forward`, which encodes it once and queues it. A single sender
  task drains the queue into batches (:mod:`vidhub.protocol.hub_batch`) and publishes them in
  one pipeline: for each run of consecutive events with the same topic, one batch on that
  topic's channel ``<prefix>hub:t:<topic>``; and one batch of all of them on the wildcard
  channel ``<prefix>hub:*``. One publisher connection delivers its messages to each subscriber
  connection in order, so each publisher's order is kept on every node.
- **In (per-topic interest).** A node subscribes only to what its local subscribers can want
  (:meth:`Registry.interest`): the channel of each exact topic they pin, or, when some
  subscription does not pin its topic (wildcards, ``not``), the wildcard channel alone. So a
  node whose clients want only ``vidhub.session.*``-free exact topics never receives, let alone
  decodes, the others. A batch from this node itself is skipped before decoding. Received
  events go to :meth:`Hub.route` (local delivery only), so every connection still receives an
  event at most once, on any node. While the interest moves between the two forms, both
  kinds of channel are accepted, and the ids received then (and for a few seconds after)
  drop the duplicates; the old form is left only once a marker published on it came back.
- **Subscribe barrier.** A subscribe is acked only once the channels it needs are subscribed
  on the bus (:attr:`Hub.interest_synced`): when a client sees its ack, events published
  anywhere afterwards reach it.
- **Resumption elsewhere.** A client that resumes (``vidhub-resume``) on a node that does not
  hold its parked session asks the others on ``<prefix>hub:take``; the holder hands its
  subscribers and replay log over (:meth:`Hub.hand_over`, answered on
  ``<prefix>hub:node:<id>``) and drops it; the new node adopts it and replays what the client
  missed. Events routed during the handover itself (a round trip) may be missed.
- **Faults.** When the bus is unreachable the sender keeps the batch and retries (backoff up to
  2 s); events published meanwhile queue behind it (bounded: beyond ``max_queue`` the oldest
  are dropped with a warning), so nothing published while this node could reach Redis, or
  queued while it could not, is lost on the way out. Resubscription after a reconnect is the
  broker's (it resubscribes every channel with handlers).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable

from vidhub.broker.base import Broker, BrokerUnavailable, Unsubscribe
from vidhub.hub.hub import Hub
from vidhub.hub.session import ParkedState
from vidhub.protocol.ftrack_event import Event
from vidhub.protocol.hub_batch import (
    HubBatchError,
    TakeReply,
    TakeRequest,
    decode_batch,
    decode_take,
    encode_batch,
    encode_one,
    encode_take,
    origin_of,
)

__all__ = ["HubBridge"]

log = logging.getLogger(__name__)

#: Events per published batch.
MAX_BATCH = 512
#: Events waiting for the bus before the oldest are dropped.
MAX_QUEUE = 100_000
_MAX_BACKOFF_S = 2.0
#: How long a resumption waits for the other nodes to say whether they hold the session.
TAKE_TIMEOUT_S = 5.0
#: How long a change of interest form waits for the old channel to drain.
_FLUSH_TIMEOUT_S = 5.0


class HubBridge:
    """Forwards a hub's events to other nodes and delivers theirs, by topic interest.

    Args:
        hub: this node's hub (the bridge installs its hooks on it).
        broker: the shared bus (started by the caller before :meth:`start`).
        node_id: this node's id (batches it published are skipped on receipt).
        prefix: channel prefix, as for the cluster relay.
    """

    def __init__(
        self,
        hub: Hub,
        broker: Broker,
        node_id: str,
        *,
        prefix: str = "vidhub:",
        max_batch: int = MAX_BATCH,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self.hub = hub
        self.node_id = node_id
        self._broker = broker
        self._prefix = prefix
        self._origin = node_id.encode()
        self._max_batch = max_batch
        self._max_queue = max_queue
        self._wild_channel = f"{prefix}hub:*"
        self._queue: deque[tuple[str, bytes]] = deque()
        self._take_channel = f"{prefix}hub:take"
        self._own_channel = f"{prefix}hub:node:{node_id}"
        self._fixed: list[Unsubscribe] = []
        #: handovers asked for: request id -> the answer, replies expected, "not here" replies
        self._takes: dict[str, asyncio.Future[TakeReply | None]] = {}
        self._expected: dict[str, int] = {}
        self._declined: dict[str, int] = {}
        self._wake = asyncio.Event()
        #: set while nothing waits to be sent
        self._idle = asyncio.Event()
        self._idle.set()
        self._sender: asyncio.Task[None] | None = None
        self._syncer: asyncio.Task[None] | None = None
        self._dirty = asyncio.Event()
        #: interest generation wanted / in effect, and who waits for which
        self._wanted = 0
        self._synced = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._subs: dict[str, Unsubscribe] = {}
        self._accept_topics = True
        self._accept_wild = False
        self._markers: dict[str, asyncio.Future[None]] = {}
        #: ids received while the interest changes form (and shortly after): duplicates
        self._seen: set[str] = set()
        self._dedupe_until = 0.0
        self._moving = False
        self._closed = False
        #: counters for monitoring, tests and benchmarks
        self.sent_events = 0
        self.received_events = 0
        self.dropped_events = 0
        # events routed before start() (a restarted node reconciling) queue and go out then
        hub.forward = self.forward

    # -- lifetime ------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to what local subscribers want and start sending (what was forwarded
        since construction goes out first)."""
        if self._sender is not None or self._closed:
            return
        self.hub.interest_synced = self._interest_synced
        self.hub.registry.on_interest_change = self._interest_changed
        self._fixed.append(await self._broker.subscribe(self._take_channel, self._on_take))
        self._fixed.append(await self._broker.subscribe(self._own_channel, self._on_handover))
        self.hub.take_over = self.take_over
        self._sender = asyncio.create_task(self._send_loop(), name="hub-bridge-send")
        self._syncer = asyncio.create_task(self._sync_loop(), name="hub-bridge-interest")
        self._interest_changed()
        await self._wait_synced(self._wanted)

    async def close(self) -> None:
        """Unhook, flush what is queued if the bus allows (briefly), unsubscribe. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.hub.forward == self.forward:
            self.hub.forward = None
            self.hub.interest_synced = None
            self.hub.take_over = None
            self.hub.registry.on_interest_change = None
        for unsubscribe in self._fixed:
            with contextlib.suppress(BrokerUnavailable):
                await unsubscribe()
        self._fixed.clear()
        for take in self._takes.values():
            if not take.done():
                take.cancel()
        if self._queue and self._sender is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), 2.0)
        for task in (self._sender, self._syncer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._sender = self._syncer = None
        for unsubscribe in self._subs.values():
            with contextlib.suppress(BrokerUnavailable):
                await unsubscribe()
        self._subs.clear()
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_result(None)
        self._waiters.clear()

    # -- out -----------------------------------------------------------------------------
    def forward(self, event: Event) -> None:
        """Queue an event routed on this node for the others (``Hub.forward``)."""
        if self._closed or not isinstance(event.topic, str):
            return
        if len(self._queue) >= self._max_queue:
            self._queue.popleft()
            self.dropped_events += 1
            if self.dropped_events == 1 or self.dropped_events % 1000 == 0:
                log.warning(
                    "hub bridge queue full (%d): dropped the oldest event (%d dropped)",
                    self._max_queue,
                    self.dropped_events,
                )
        self._queue.append((event.topic, encode_one(event)))
        self._idle.clear()
        self._wake.set()

    def _batch_messages(self, batch: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
        messages: list[tuple[str, bytes]] = []
        run: list[bytes] = []
        run_topic: str | None = None
        for topic, encoded in batch:
            if topic != run_topic and run:
                messages.append((self._topic_channel(run_topic), encode_batch(self.node_id, run)))
                run = []
            run_topic = topic
            run.append(encoded)
        if run:
            messages.append((self._topic_channel(run_topic), encode_batch(self.node_id, run)))
        messages.append((self._wild_channel, encode_batch(self.node_id, [e for _, e in batch])))
        return messages

    def _topic_channel(self, topic: str | None) -> str:
        return f"{self._prefix}hub:t:{topic}"

    async def _send_loop(self) -> None:
        backoff = 0.05
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            n = min(len(self._queue), self._max_batch)
            batch = [self._queue[i] for i in range(n)]
            try:
                await self._broker.publish_many(self._batch_messages(batch))
            except BrokerUnavailable:
                log.warning("hub bridge: bus unreachable, %d events waiting", len(self._queue))
                # a reconnection pause, not test synchronisation
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            except Exception:
                log.exception("hub bridge: publishing %d events failed; dropped", n)
            backoff = 0.05
            for _ in range(n):
                if self._queue:
                    self._queue.popleft()
            self.sent_events += n

    # -- in ------------------------------------------------------------------------------
    async def _on_topic(self, payload: bytes) -> None:
        if self._accept_topics:
            self._receive(payload)

    async def _on_wild(self, payload: bytes) -> None:
        if self._accept_wild:
            self._receive(payload)

    def _receive(self, payload: bytes) -> None:
        if payload.startswith(self._origin):
            rest = payload[len(self._origin) : len(self._origin) + 1]
            if rest == b"\n":
                return  # ours: routed locally when it was published
            if rest == b"#":
                fut = self._markers.get(origin_of(payload)[len(self._origin) + 1 :].decode())
                if fut is not None and not fut.done():
                    fut.set_result(None)
                return
        try:
            _, events = decode_batch(payload)
        except HubBatchError as exc:
            log.warning("ignoring a hub batch: %s", exc.message)
            return
        seen = self._seen
        recording = self._dedupe_until > 0.0
        if recording and not self._moving and time.monotonic() > self._dedupe_until:
            seen.clear()  # the interest change is long done: its duplicates have passed
            self._dedupe_until = 0.0
            recording = False
        for event in events:
            eid = event.id
            if recording:
                if eid in seen:
                    continue
                seen.add(eid)
            self.received_events += 1
            try:
                self.hub.route(event)
            except Exception:
                log.exception("routing remote event %s failed", eid)

    # -- resumption on another node ---------------------------------------------------------
    async def take_over(self, sid: str, user: str) -> ParkedState | None:
        """Ask the other nodes for the resumable session ``sid`` of ``user`` (``Hub.take_over``).

        Every node answers (found or not), so an unknown sid costs one round trip; a node
        that does not answer within ``TAKE_TIMEOUT_S`` counts as not having it.
        """
        rid = uuid.uuid4().hex
        fut: asyncio.Future[TakeReply | None] = asyncio.get_running_loop().create_future()
        self._takes[rid] = fut
        try:
            request = encode_take(TakeRequest(rid, sid, user, self.node_id))
            self._declined[rid] = 0
            try:
                listeners = await self._broker.publish(self._take_channel, request)
            except BrokerUnavailable:
                return None
            # answers may already have come in while the publish was confirmed
            self._expected[rid] = listeners - 1  # this node hears its own request
            if self._declined[rid] >= listeners - 1 and not fut.done():
                fut.set_result(None)
            try:
                reply = await asyncio.wait_for(fut, TAKE_TIMEOUT_S)
            except TimeoutError:
                return None
        finally:
            self._takes.pop(rid, None)
            self._expected.pop(rid, None)
            self._declined.pop(rid, None)
        if reply is None:
            return None
        return ParkedState(reply.subscribers, reply.log)

    async def _on_take(self, payload: bytes) -> None:
        try:
            msg = decode_take(payload)
        except HubBatchError as exc:
            log.warning("ignoring a hub handover request: %s", exc.message)
            return
        if not isinstance(msg, TakeRequest) or msg.reply_to == self.node_id:
            return
        state = self.hub.hand_over(msg.sid, msg.user)
        reply = (
            TakeReply(msg.id, False)
            if state is None
            else TakeReply(msg.id, True, state.subscribers, state.log)
        )
        if state is not None:
            log.info("hub session of %s handed over to node %s", msg.user, msg.reply_to)
        try:
            await self._broker.publish(f"{self._prefix}hub:node:{msg.reply_to}", encode_take(reply))
        except BrokerUnavailable:
            log.warning("could not answer a hub handover request from %s", msg.reply_to)

    async def _on_handover(self, payload: bytes) -> None:
        try:
            msg = decode_take(payload)
        except HubBatchError as exc:
            log.warning("ignoring a hub handover reply: %s", exc.message)
            return
        if not isinstance(msg, TakeReply):
            return
        fut = self._takes.get(msg.id)
        if fut is None or fut.done():
            return
        if msg.found:
            fut.set_result(msg)
            return
        declined = self._declined.get(msg.id, 0) + 1
        self._declined[msg.id] = declined
        expected = self._expected.get(msg.id)
        if expected is not None and declined >= expected:
            fut.set_result(None)

    # -- interest ------------------------------------------------------------------------
    def _interest_changed(self) -> None:
        self._wanted += 1
        self._dirty.set()

    def _interest_synced(self) -> Awaitable[None] | None:
        if self._synced >= self._wanted or self._closed:
            return None
        return self._wait_synced(self._wanted)

    def _wait_synced(self, generation: int) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._synced >= generation or self._closed:
            fut.set_result(None)
        else:
            self._waiters.append((generation, fut))
        return fut

    async def _sync_loop(self) -> None:
        backoff = 0.05
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            generation = self._wanted
            try:
                await self._apply_interest()
            except BrokerUnavailable:
                log.warning("hub bridge: cannot update subscriptions, bus unreachable; retrying")
                self._dirty.set()
                # a reconnection pause, not test synchronisation
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            except Exception:
                log.exception("hub bridge: updating subscriptions failed")
            backoff = 0.05
            self._synced = max(self._synced, generation)
            still: list[tuple[int, asyncio.Future[None]]] = []
            for gen, fut in self._waiters:
                if gen <= self._synced:
                    if not fut.done():
                        fut.set_result(None)
                else:
                    still.append((gen, fut))
            self._waiters = still

    async def _apply_interest(self) -> None:
        topics, wild = self.hub.registry.interest()
        wanted = {self._wild_channel} if wild else {self._topic_channel(t) for t in topics}
        added = wanted - self._subs.keys()
        gone = self._subs.keys() - wanted
        moving = bool(added and gone) and (
            self._wild_channel in added or self._wild_channel in gone
        )
        if moving:
            self._moving = True
            self._dedupe_until = time.monotonic() + _FLUSH_TIMEOUT_S
        for channel in added:
            handler = self._on_wild if channel == self._wild_channel else self._on_topic
            self._subs[channel] = await self._broker.subscribe(channel, handler)
        # while both forms are subscribed, both are accepted (duplicates dropped by id)
        self._accept_from_subscriptions()
        if moving:
            # events published before the new form took effect still travel on the old one:
            # let them all arrive before leaving it
            await self._flush_through(next(iter(gone)))
        for channel in gone:
            await self._subs.pop(channel)()
        self._accept_from_subscriptions()
        if moving:
            # copies on the new form of events already handled may still follow the marker
            self._moving = False
            self._dedupe_until = time.monotonic() + _FLUSH_TIMEOUT_S

    async def _flush_through(self, channel: str) -> None:
        """Wait until a marker this node publishes on ``channel`` comes back.

        One subscriber connection receives messages in order, so once the marker is back,
        every message published before it on any subscribed channel has been handled.
        """
        token = uuid.uuid4().hex
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._markers[token] = fut
        try:
            # an empty batch: other nodes decode it to nothing
            await self._broker.publish(channel, encode_batch(f"{self.node_id}#{token}", []))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, _FLUSH_TIMEOUT_S)
        finally:
            self._markers.pop(token, None)

    def _accept_from_subscriptions(self) -> None:
        self._accept_wild = self._wild_channel in self._subs
        self._accept_topics = any(c != self._wild_channel for c in self._subs)
