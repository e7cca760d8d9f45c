"""SessionManager and SessionLedger rules, independent of HTTP: tokens, joins, leaves,
lifecycle events."""

from __future__ import annotations

import pytest

from vidhub.clock import ManualClock
from vidhub.core.events import EventBus, ServerEvent
from vidhub.core.live import LiveGateway
from vidhub.errors import (
    ConnectionNotFound,
    NotAcceptable,
    SessionExists,
    SessionNotFound,
    TokenInvalid,
)
from vidhub.manager import SessionLedger, SessionManager
from vidhub.protocol.openvidu_rest import (
    ConnectionProperties,
    SessionProperties,
    SignalRequest,
)
from vidhub.store import MemoryStore

WS = "ws://127.0.0.1:4443"


@pytest.fixture
def events() -> list[ServerEvent]:
    return []


@pytest.fixture
def manager(clock: ManualClock, events: list[ServerEvent]) -> SessionManager:
    bus = EventBus()
    bus.subscribe(events.append)
    return SessionManager(SessionLedger(MemoryStore(), clock, bus), NoLiveParticipants())


class NoLiveParticipants:
    """A gateway for a manager without signalling: nobody is ever connected."""

    async def send_signal(self, *args: object) -> None:
        return None

    async def evict(self, *args: object) -> None:
        return None

    async def force_unpublish(self, *args: object) -> bool:
        return False


def _manager(
    clock: ManualClock, *, token_ttl_s: int = 0, live: LiveGateway | None = None
) -> SessionManager:
    ledger = SessionLedger(MemoryStore(), clock, token_ttl_s=token_ttl_s)
    return SessionManager(ledger, live or NoLiveParticipants())


async def _join(m: SessionManager, sid: str, token_id: str) -> str:
    conn = await m.ledger.join(sid, token_id, ip="127.0.0.1", platform="test", client_data="x")
    return conn.id


async def test_create_session_emits_session_created(
    manager: SessionManager, events: list[ServerEvent]
) -> None:
    s = await manager.create_session(SessionProperties(custom_session_id="room"))
    assert s.id == "room"
    assert [e.name for e in events] == ["sessionCreated"]
    assert events[0].fields == {
        "sessionId": "room",
        "uniqueSessionId": s.unique_id,
        "timestamp": s.created_at,
    }
    with pytest.raises(SessionExists):
        await manager.create_session(SessionProperties(custom_session_id="room"))


async def test_generated_ids_have_openvidu_format(manager: SessionManager) -> None:
    s = await manager.create_session(SessionProperties())
    c = await manager.create_connection(s.id, ConnectionProperties(), WS)
    assert s.id.startswith("ses_") and len(s.id) == 14
    assert c.id.startswith("con_") and len(c.id) == 14
    assert c.token == f"{WS}?sessionId={s.id}&token={c.token_id}"
    assert c.token_id.startswith("tok_") and len(c.token_id) == 20


async def test_token_is_single_use(manager: SessionManager) -> None:
    s = await manager.create_session(SessionProperties())
    c = await manager.create_connection(s.id, ConnectionProperties(), WS)
    assert await _join(manager, s.id, c.token_id) == c.id
    with pytest.raises(TokenInvalid):
        await _join(manager, s.id, c.token_id)
    with pytest.raises(TokenInvalid):
        await _join(manager, s.id, "tok_unknown")


async def test_revoked_token_cannot_join(manager: SessionManager) -> None:
    s = await manager.create_session(SessionProperties())
    c = await manager.create_connection(s.id, ConnectionProperties(), WS)
    await manager.delete_connection(s.id, c.id)
    with pytest.raises(TokenInvalid):
        await _join(manager, s.id, c.token_id)
    with pytest.raises(ConnectionNotFound):
        await manager.get_connection(s.id, c.id)


async def test_last_leave_closes_session_and_kills_pending_tokens(
    manager: SessionManager, events: list[ServerEvent], clock: ManualClock
) -> None:
    s = await manager.create_session(SessionProperties())
    a = await manager.create_connection(s.id, ConnectionProperties(), WS)
    spare = await manager.create_connection(s.id, ConnectionProperties(), WS)
    await _join(manager, s.id, a.token_id)
    clock.advance(5)
    await manager.ledger.leave(s.id, a.id, "disconnect")
    names = [e.name for e in events]
    assert names == ["sessionCreated", "participantJoined", "participantLeft", "sessionDestroyed"]
    left, destroyed = events[2].fields, events[3].fields
    assert left["reason"] == "disconnect" and left["duration"] == 5
    assert destroyed["reason"] == "lastParticipantLeft"
    with pytest.raises(SessionNotFound):
        await manager.get_session(s.id)
    with pytest.raises(TokenInvalid):
        await _join(manager, s.id, spare.token_id)


async def test_close_session_evicts_everyone(
    manager: SessionManager, events: list[ServerEvent]
) -> None:
    evicted: list[tuple[str, str, str]] = []

    class Gateway:
        async def send_signal(self, *a: object) -> None: ...

        async def evict(self, session_id: str, connection_id: str, reason: str) -> None:
            evicted.append((session_id, connection_id, reason))

        async def force_unpublish(self, *a: object) -> bool:
            return False

    manager = SessionManager(manager.ledger, Gateway())
    s = await manager.create_session(SessionProperties())
    c = await manager.create_connection(s.id, ConnectionProperties(), WS)
    await _join(manager, s.id, c.token_id)
    await manager.close_session(s.id)
    assert evicted == [(s.id, c.id, "sessionClosedByServer")]
    assert events[-1].name == "sessionDestroyed"
    assert events[-1].fields["reason"] == "sessionClosedByServer"
    assert events[-2].name == "participantLeft"


async def test_signal_needs_active_participants(
    manager: SessionManager, events: list[ServerEvent]
) -> None:
    s = await manager.create_session(SessionProperties())
    with pytest.raises(NotAcceptable):
        await manager.signal(SignalRequest(s.id, None, "signal:chat", "hi"))
    c = await manager.create_connection(s.id, ConnectionProperties(), WS)
    await _join(manager, s.id, c.token_id)
    with pytest.raises(NotAcceptable):
        await manager.signal(SignalRequest(s.id, ("con_nobody",), "signal:chat", "hi"))
    assert await manager.signal(SignalRequest(s.id, None, "signal:chat", "hi")) == [c.id]
    sent = events[-1]
    assert sent.name == "signalSent"
    assert sent.fields["to"] == [c.id] and sent.fields["from"] is None
    with pytest.raises(SessionNotFound):
        await manager.signal(SignalRequest("nope", None, "", ""))


async def test_garbage_collector_removes_only_old_never_joined(
    manager: SessionManager, clock: ManualClock
) -> None:
    old = await manager.create_session(SessionProperties(custom_session_id="old"))
    used = await manager.create_session(SessionProperties(custom_session_id="used"))
    c = await manager.create_connection(used.id, ConnectionProperties(), WS)
    await _join(manager, used.id, c.token_id)
    clock.advance(3601)
    await manager.create_session(SessionProperties(custom_session_id="young"))
    assert await manager.collect_garbage(3600) == [old.id]
    ids = sorted(v.session.id for v in await manager.list_sessions())
    assert ids == ["used", "young"]


async def test_tokens_expire(clock: ManualClock, events: list[ServerEvent]) -> None:
    manager = _manager(clock, token_ttl_s=60)
    s = await manager.create_session(SessionProperties())
    old = await manager.create_connection(s.id, ConnectionProperties(), WS)
    clock.advance(30)
    fresh = await manager.create_connection(s.id, ConnectionProperties(), WS)
    clock.advance(31)
    with pytest.raises(TokenInvalid, match="expired"):
        await _join(manager, s.id, old.token_id)
    with pytest.raises(ConnectionNotFound):
        await manager.get_connection(s.id, old.id)  # an expired token is gone for good
    assert await _join(manager, s.id, fresh.token_id) == fresh.id


async def test_garbage_collector_removes_expired_pending_connections(clock: ManualClock) -> None:
    manager = _manager(clock, token_ttl_s=60)
    s = await manager.create_session(SessionProperties())
    joined = await manager.create_connection(s.id, ConnectionProperties(), WS)
    await _join(manager, s.id, joined.token_id)
    stale = await manager.create_connection(s.id, ConnectionProperties(), WS)
    clock.advance(61)
    fresh = await manager.create_connection(s.id, ConnectionProperties(), WS)
    assert await manager.collect_garbage(3600) == []
    left = {c.id for c in (await manager.get_session(s.id)).connections}
    assert left == {joined.id, fresh.id} and stale.id not in left
