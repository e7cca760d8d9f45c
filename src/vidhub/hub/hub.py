"""The event hub: subscriptions in, events routed out (eventhub.md §5).

Theory of operation. The edge opens a :class:`~vidhub.hub.session.HubSession` per socket and
hands every decoded ``ftrack.event`` argument to :meth:`Hub.handle`, in arrival order. The
hub answers with an :class:`AckResult` that the edge turns into ``6:::<n>+[...]``.

- ``ftrack.meta.subscribe`` / ``unsubscribe`` update the session's registrations (keyed by
  subscriber id *within the session*; a duplicate replaces) and are never routed.
- Any other event, replies included, is routed by the §5.5 rule: each session receives it
  **at most once**, the publisher included, when one of its subscribers passes the event's
  target (matched on the subscriber metadata) and its subscription (matched on the client
  view of the event). Matching errors count as no match.
- Routing is synchronous: the frame is encoded once and pushed into each recipient's outbox
  before :meth:`Hub.handle` returns, so each publisher's events reach every recipient in
  publish order, and a subscribe takes effect before the next packet of the same socket.
- Priorities and ``stop()`` are client-side; the hub never sees them.
- Events are routed unchanged: ``id``, ``source`` (including ``source.user``, which is trusted
  as sent) and ``sent`` are the publisher's.

Across nodes (see :mod:`vidhub.hub.bridge`): every event routed by :meth:`Hub.publish` is also
handed to :attr:`Hub.forward`, when set, for the other nodes; events coming from other nodes
enter through :meth:`Hub.route`, which delivers locally only. :meth:`Registry.interest` says
which topics local subscribers can want, so a node receives only those.

Beyond ftrack: sessions opened with ``resumable=True`` park instead of dying when their socket
goes (see :mod:`vidhub.hub.session`); :meth:`Hub.resume` rebinds one to a new socket and
replays what it missed, in order, after the last event id the client saw.
"""

from __future__ import annotations

import itertools
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vidhub.clock import Clock, SystemClock
from vidhub.hub.registry import Registration, Registry
from vidhub.hub.session import HubSession, Outbox, ParkedState, ReplayEntry
from vidhub.protocol.expression import Expression, ExpressionError, compile_expression
from vidhub.protocol.ftrack_event import (
    EVENT_NAME,
    Event,
    EventError,
    client_view,
    event_from_wire,
    event_to_wire,
)
from vidhub.protocol.socketio09 import encode_event

__all__ = ["RESERVED_TOPICS", "AckResult", "Hub", "HubLimits"]

log = logging.getLogger(__name__)

SUBSCRIBE = "ftrack.meta.subscribe"
UNSUBSCRIBE = "ftrack.meta.unsubscribe"
#: Topics a client may not publish for routing (§5.4, §8.18).
RESERVED_TOPICS = frozenset(
    {SUBSCRIBE, UNSUBSCRIBE, "ftrack.meta.connected", "ftrack.meta.disconnected"}
)
_TARGET_CACHE = 4096


@dataclass(frozen=True, slots=True)
class HubLimits:
    """Bounds that keep one client from hurting the others.

    Attributes:
        max_frame_bytes: largest text frame accepted (longer ones are refused with an ack).
        max_subscriptions: subscribers per session.
        max_outbox_frames: frames queued for one socket before it is dropped as slow.
        max_outbox_chars: characters queued for one socket before it is dropped as slow.
        replay_window_s: how long a resumable session stays parked.
        replay_max_events: events kept per resumable session.
        replay_max_chars: characters of frames kept per resumable session.
    """

    max_frame_bytes: int = 1 << 20
    max_subscriptions: int = 1000
    max_outbox_frames: int = 10_000
    max_outbox_chars: int = 8 << 20
    replay_window_s: float = 120.0
    replay_max_events: int = 1000
    replay_max_chars: int = 4 << 20


@dataclass(frozen=True, slots=True)
class AckResult:
    """What to ack: ``{"success": true}`` or ``{"success": false, "message": ...}``."""

    success: bool
    message: str = ""
    #: When set, the edge sends the ack only once this completes (a subscription that must
    #: first take effect on the other nodes); the next packets are handled meanwhile.
    pending: Awaitable[None] | None = field(default=None, compare=False)

    def payload(self) -> dict[str, Any]:
        if self.success:
            return {"success": True}
        return {"success": False, "message": self.message}


_OK = AckResult(True)


class Hub:
    """Subscription registry and router; implements ``ServerEventPublisher``.

    Args:
        clock: time source for the replay window.
        limits: see :class:`HubLimits`.
        server_source: the ``source`` of events the server itself publishes.
    """

    def __init__(
        self,
        clock: Clock | None = None,
        limits: HubLimits | None = None,
        server_source: dict[str, Any] | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.limits = limits or HubLimits()
        self.server_source = server_source or {
            "id": "vidhub-server",
            "applicationId": "vidhub.server",
        }
        self._registry = Registry()
        self._sessions: dict[str, HubSession] = {}
        self._serials = itertools.count(1)
        self._targets: OrderedDict[str, Expression] = OrderedDict()
        #: counters for monitoring and benchmarks
        self.published = 0
        self.delivered = 0
        #: Set by a bridge: gets every event published on this node, after local routing.
        self.forward: Callable[[Event], None] | None = None
        #: Set by a bridge: an awaitable that completes once the current interest (topics
        #: of local subscribers) is in effect on the bus.
        self.interest_synced: Callable[[], Awaitable[None] | None] | None = None
        #: Set by a bridge: asks the other nodes to :meth:`hand_over` a resumable session
        #: (``sid``, ``user``) that is not here.
        self.take_over: Callable[[str, str], Awaitable[ParkedState | None]] | None = None

    @property
    def registry(self) -> Registry:
        """The subscription registry (its :meth:`Registry.interest` drives a bridge)."""
        return self._registry

    # ------------------------------------------------------------------ sessions

    @property
    def sessions(self) -> dict[str, HubSession]:
        """Open and parked sessions by current sid (read-only view for the edge and tests)."""
        return self._sessions

    @property
    def subscription_count(self) -> int:
        return len(self._registry)

    def open(self, sid: str, user: str, outbox: Outbox, *, resumable: bool = False) -> HubSession:
        """Start a session for a newly opened socket."""
        self.expire_parked()
        session = HubSession(
            serial=next(self._serials),
            sid=sid,
            user=user,
            outbox=outbox,
            resumable=resumable,
            log=deque(maxlen=self.limits.replay_max_events if resumable else 0),
            log_max_chars=self.limits.replay_max_chars,
        )
        self._sessions[sid] = session
        return session

    def resume(
        self, prev_sid: str, sid: str, user: str, outbox: Outbox, last_event_id: str | None
    ) -> tuple[HubSession, list[str]] | None:
        """Rebind the resumable session ``prev_sid`` of ``user`` to a new socket.

        A session whose old socket is still bound (the server has not noticed it died) is
        taken over: the old socket is closed. Returns the session and the frames it missed
        after ``last_event_id`` (all logged ones if that id is unknown), to be sent before
        anything else; None when there is nothing to resume (expired, unknown, other user).
        """
        self.expire_parked()
        session = self._sessions.get(prev_sid)
        if session is None or not session.resumable or session.user != user or session.closed:
            return None
        old = session.outbox
        del self._sessions[prev_sid]
        session.sid = sid
        session.outbox = outbox
        session.parked_until = None
        self._sessions[sid] = session
        if old is not None:
            old.close("session resumed elsewhere")
        frames = [entry.frame for entry in session.replay_after(last_event_id)]
        return session, frames

    def hand_over(self, sid: str, user: str) -> ParkedState | None:
        """Give the resumable session ``sid`` of ``user`` to another node: its subscribers
        and replay log, then drop it here (closing a socket still bound to it).

        Returns None when there is nothing to hand over (unknown, closed, not resumable,
        another user).
        """
        self.expire_parked()
        session = self._sessions.get(sid)
        if session is None or not session.resumable or session.user != user or session.closed:
            return None
        state = ParkedState(
            subscribers=[
                (reg.subscriber_id, reg.metadata, reg.expression.text)
                for reg in session.registrations.values()
            ],
            log=[(entry.event_id, entry.frame) for entry in session.log],
        )
        old = session.outbox
        session.outbox = None
        self._drop(session)
        if old is not None:
            old.close("session resumed on another node")
        return state

    def adopt(
        self, state: ParkedState, sid: str, user: str, outbox: Outbox, last_event_id: str | None
    ) -> tuple[HubSession, list[str]]:
        """Open a resumable session from another node's :meth:`hand_over` and return it with
        the frames it missed after ``last_event_id`` (as :meth:`resume` does)."""
        session = self.open(sid, user, outbox, resumable=True)
        for sub_id, metadata, text in state.subscribers[: self.limits.max_subscriptions]:
            try:
                expression = compile_expression(text)
            except ExpressionError:
                continue  # compiled on the other node: only a version skew gets here
            reg = Registration(session, sub_id, metadata, expression)
            session.registrations[sub_id] = reg
            self._registry.add(reg)
        for event_id, frame in state.log:
            session.log.append(ReplayEntry(event_id, frame))
            session.log_chars += len(frame)
        frames = [entry.frame for entry in session.replay_after(last_event_id)]
        return session, frames

    def detach(self, session: HubSession, outbox: Outbox | None = None) -> None:
        """The socket of ``session`` is gone: park a resumable session, else drop it.

        ``outbox`` guards against a late detach from a socket that was already replaced.
        """
        if session.closed or (outbox is not None and session.outbox is not outbox):
            return
        if session.resumable:
            session.outbox = None
            session.parked_until = self.clock.monotonic() + self.limits.replay_window_s
            return
        self._drop(session)

    def _drop(self, session: HubSession) -> None:
        if session.closed:
            return
        session.closed = True
        for reg in session.registrations.values():
            self._registry.remove(reg)
        session.registrations.clear()
        session.log.clear()
        session.log_chars = 0
        if self._sessions.get(session.sid) is session:
            del self._sessions[session.sid]

    def expire_parked(self) -> int:
        """Drop parked sessions whose replay window has passed; returns how many."""
        now = self.clock.monotonic()
        gone = [
            s
            for s in self._sessions.values()
            if s.parked_until is not None and s.parked_until <= now
        ]
        for session in gone:
            self._drop(session)
        return len(gone)

    def close_all(self) -> None:
        """Drop every session, parked ones included (shutdown)."""
        for session in list(self._sessions.values()):
            self._drop(session)

    # ------------------------------------------------------------------ packets

    def handle(self, session: HubSession, args: list[Any]) -> AckResult:
        """Handle the ``args`` of one ``ftrack.event`` packet from ``session``.

        Never raises for bad input: the result says what to ack.
        """
        if session.closed:  # frames still in flight from a socket the hub already dropped
            return AckResult(False, "session closed")
        if len(args) != 1:
            return AckResult(False, "an ftrack.event packet carries exactly one event")
        try:
            event = event_from_wire(args[0])
        except EventError as exc:
            return AckResult(False, exc.message)
        topic = event.topic
        if topic == SUBSCRIBE:
            return self._subscribe(session, event)
        if topic == UNSUBSCRIBE:
            return self._unsubscribe(session, event)
        if topic in RESERVED_TOPICS or not isinstance(topic, str):
            return AckResult(False, f"topic {topic!r} cannot be published")
        return self.publish(event)

    def _subscribe(self, session: HubSession, event: Event) -> AckResult:
        data = event.data
        subscriber = data.get("subscriber") if isinstance(data, dict) else None
        text = data.get("subscription") if isinstance(data, dict) else None
        if not isinstance(subscriber, dict) or not isinstance(subscriber.get("id"), str):
            return AckResult(False, "data.subscriber must be an object with a string id")
        if not isinstance(text, str):
            return AckResult(False, "data.subscription must be a string")
        try:
            expression = compile_expression(text)
        except ExpressionError as exc:
            return AckResult(False, exc.message)
        sub_id: str = subscriber["id"]
        old = session.registrations.get(sub_id)
        if old is None and len(session.registrations) >= self.limits.max_subscriptions:
            return AckResult(False, f"at most {self.limits.max_subscriptions} subscribers")
        if old is not None:  # same id on the same socket: idempotent replace (§3.2)
            self._registry.remove(old)
        reg = Registration(session, sub_id, subscriber, expression)
        session.registrations[sub_id] = reg
        self._registry.add(reg)
        if self.interest_synced is not None:
            pending = self.interest_synced()
            if pending is not None:
                return AckResult(True, pending=pending)
        return _OK

    def _unsubscribe(self, session: HubSession, event: Event) -> AckResult:
        data = event.data
        subscriber = data.get("subscriber") if isinstance(data, dict) else None
        sub_id = subscriber.get("id") if isinstance(subscriber, dict) else None
        if isinstance(sub_id, str):
            reg = session.registrations.pop(sub_id, None)
            if reg is not None:
                self._registry.remove(reg)
        return _OK  # unknown ids ack true (§5.2)

    def _target(self, text: str) -> Expression:
        expr = self._targets.get(text)
        if expr is None:
            expr = compile_expression(text)
            self._targets[text] = expr
            if len(self._targets) > _TARGET_CACHE:
                self._targets.popitem(last=False)
        return expr

    # ------------------------------------------------------------------ routing

    def publish(self, event: Event) -> AckResult:
        """Route ``event`` to every session with a matching subscriber (§5.5), here and,
        through :attr:`forward`, on the other nodes."""
        target: Expression | None = None
        if event.target:
            try:
                target = self._target(event.target)
            except ExpressionError as exc:
                return AckResult(False, f"bad target: {exc.message}")
        self._route(event, target)
        if self.forward is not None:
            try:
                self.forward(event)
            except Exception:  # the bridge must never cost a local publish its ack
                log.exception("forwarding event %s to other nodes failed", event.id)
        return _OK

    def route(self, event: Event) -> None:
        """Deliver an event published on another node to the local sessions only."""
        target: Expression | None = None
        if event.target:
            try:
                target = self._target(event.target)
            except ExpressionError:
                return  # the origin node refused it already; nothing here can match
        self._route(event, target)

    def _route(self, event: Event, target: Expression | None) -> None:
        view = client_view(event)
        recipients: dict[int, HubSession] = {}
        target_ids = target.ids if target is not None else None
        for reg in self._registry.candidates(event.topic, target_ids):
            session = reg.session
            if session.serial in recipients:
                continue
            if target is not None and not target.matches(reg.metadata):
                continue
            if reg.expression.matches(view):
                recipients[session.serial] = session
        self.published += 1
        if recipients:
            frame = encode_event(EVENT_NAME, [event_to_wire(event)])
            for session in recipients.values():
                self._deliver(session, event.id, frame)

    def _deliver(self, session: HubSession, event_id: str, frame: str) -> None:
        try:
            ok = session.deliver(event_id, frame)
        except Exception:  # one broken socket must not stop the fan-out
            log.exception("delivery to session %s failed", session.serial)
            return
        self.delivered += 1
        if not ok:
            log.warning("dropping slow consumer %s (%s)", session.serial, session.user)
            outbox = session.outbox
            self.detach(session)
            if outbox is not None:
                outbox.close("slow consumer")

    async def publish_server_event(self, topic: str, data: dict[str, Any]) -> None:
        """Publish a server-originated event (``ServerEventPublisher``)."""
        self.publish(Event(topic=topic, data=data, source=dict(self.server_source)))
