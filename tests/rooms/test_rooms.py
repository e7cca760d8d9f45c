"""Rooms, the room domain, with fakes only: a memory ledger, a fake router and recording
participant sinks. No HTTP, no WebSocket, no aiortc."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.media import FakeRouter
from vidhub.clock import ManualClock
from vidhub.core.events import EventBus, ServerEvent
from vidhub.errors import TokenInvalid
from vidhub.manager import SessionLedger
from vidhub.protocol import openvidu_rpc as rpc
from vidhub.protocol.openvidu_rest import ConnectionProperties, SessionProperties
from vidhub.rooms import SOCKET_CLOSE_DELAY_S, LiveParticipant, Rooms
from vidhub.store import MemoryStore

WS = "ws://127.0.0.1:4443"


class Sink:
    """A participant's client as the room sees it: notifications and close requests."""

    def __init__(self) -> None:
        self.notes: list[tuple[str, dict[str, Any]]] = []
        self.closed_after: list[float] = []

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        self.notes.append((method, params))

    def close_later(self, delay_s: float) -> None:
        self.closed_after.append(delay_s)

    def methods(self) -> list[str]:
        return [m for m, _ in self.notes]


class World:
    """A ledger and the rooms over it, with everything they did recorded."""

    def __init__(self, clock: ManualClock) -> None:
        self.events: list[ServerEvent] = []
        bus = EventBus()
        bus.subscribe(self.events.append)
        self.ledger = SessionLedger(MemoryStore(), clock, bus)
        self.routers: list[FakeRouter] = []
        self.rooms = Rooms(self.ledger, self._router)

    def _router(self, session_id: str) -> FakeRouter:
        r = FakeRouter(session_id)
        self.routers.append(r)
        return r

    async def session(self, sid: str = "s") -> str:
        await self.ledger.create_session(SessionProperties(custom_session_id=sid))
        return sid

    async def join(
        self, sid: str, role: str = "PUBLISHER"
    ) -> tuple[LiveParticipant, Sink, rpc.JoinRoomResult]:
        conn = await self.ledger.create_connection(sid, ConnectionProperties(role=role), WS)
        sink = Sink()
        part, result = await self.rooms.join(
            sink, rpc.JoinRoomParams(token=conn.token, session=sid), "127.0.0.1"
        )
        return part, sink, result

    def names(self) -> list[str]:
        return [e.name for e in self.events]


@pytest.fixture
def world(clock: ManualClock) -> World:
    return World(clock)


async def _publish(world: World, part: LiveParticipant) -> str:
    out, announce = await world.rooms.publish(
        part, rpc.PublishVideoParams(sdp_offer="offer", has_audio=True, has_video=True)
    )
    await announce()
    stream_id = out["id"]
    assert isinstance(stream_id, str)
    return stream_id


async def test_joiners_see_each_other_and_the_ledger_records_them(world: World) -> None:
    sid = await world.session()
    a, sink_a, first = await world.join(sid)
    b, sink_b, second = await world.join(sid)
    assert first.value == () and [p.id for p in second.value] == [a.connection_id]
    assert sink_a.methods() == ["participantJoined"]
    assert sink_a.notes[0][1]["id"] == b.connection_id
    assert sink_b.notes == []
    view = await world.ledger.get_session(sid)
    assert {c.id for c in view.connections if c.active} == {a.connection_id, b.connection_id}
    assert world.names() == ["sessionCreated", "participantJoined", "participantJoined"]


async def test_a_used_token_is_refused(world: World) -> None:
    sid = await world.session()
    conn = await world.ledger.create_connection(sid, ConnectionProperties(), WS)
    params = rpc.JoinRoomParams(token=conn.token, session=sid)
    await world.rooms.join(Sink(), params, None)
    with pytest.raises(TokenInvalid):
        await world.rooms.join(Sink(), params, None)


async def test_publish_subscribe_then_the_publisher_leaves(world: World) -> None:
    sid = await world.session()
    pub, _, _ = await world.join(sid)
    sub, sink_sub, _ = await world.join(sid)
    stream_id = await _publish(world, pub)
    assert sink_sub.methods() == ["participantPublished"]
    answer = await world.rooms.subscribe(
        sub, rpc.ReceiveVideoFromParams(sender=stream_id, sdp_offer="offer")
    )
    router = world.routers[0]
    assert answer == f"answer-for-{sub.consumer_id(stream_id)}"
    assert router.consumers == {sub.consumer_id(stream_id): stream_id}

    await world.rooms.leave(pub, "disconnect")
    assert sink_sub.methods()[-1] == "participantLeft"
    assert sink_sub.notes[-1][1] == {"connectionId": pub.connection_id, "reason": "disconnect"}
    assert router.producers == set() and router.consumers == {}
    assert sub.subscriptions == {}
    # the ledger saw the leave: INBOUND and OUTBOUND media closed, then participantLeft
    assert world.names()[-3:] == [
        "webrtcConnectionDestroyed",
        "webrtcConnectionDestroyed",
        "participantLeft",
    ]


async def test_leaving_twice_is_a_no_op_and_the_last_leave_closes_room_and_session(
    world: World,
) -> None:
    sid = await world.session()
    a, _, _ = await world.join(sid)
    await world.rooms.leave(a, "disconnect")
    await world.rooms.leave(a, "networkDisconnect")
    assert world.rooms.room(sid) is None and world.routers[0].closed
    assert world.names()[-2:] == ["participantLeft", "sessionDestroyed"]
    assert world.events[-1].fields["reason"] == "lastParticipantLeft"
    assert world.names().count("participantLeft") == 1


async def test_eviction_tells_everyone_closes_the_sink_and_leaves_the_record_to_the_caller(
    world: World,
) -> None:
    sid = await world.session()
    a, sink_a, _ = await world.join(sid)
    b, sink_b, _ = await world.join(sid)
    await world.rooms.evict(sid, b.connection_id, "forceDisconnectByServer")
    assert sink_a.methods()[-2:] == ["participantLeft", "participantEvicted"]
    assert sink_b.methods() == ["participantEvicted"]
    assert sink_b.closed_after == [SOCKET_CLOSE_DELAY_S] and sink_a.closed_after == []
    assert b.gone and not a.gone
    # the REST caller (SessionManager) records the leave; the room did not
    view = await world.ledger.get_session(sid)
    assert b.connection_id in {c.id for c in view.connections if c.active}
    # evicting again, or someone unknown, does nothing
    await world.rooms.evict(sid, b.connection_id, "forceDisconnectByServer")
    await world.rooms.evict(sid, "con_nobody", "forceDisconnectByServer")
    assert sink_b.methods() == ["participantEvicted"]


async def test_force_disconnect_needs_a_moderator_and_evicts_after_the_reply(world: World) -> None:
    sid = await world.session()
    mod, sink_mod, _ = await world.join(sid, "MODERATOR")
    pub, sink_pub, _ = await world.join(sid)
    with pytest.raises(rpc.RpcError) as err:
        await world.rooms.force_disconnect(pub, mod.connection_id)
    assert err.value.rpc_code == rpc.Code.USER_UNAUTHORIZED
    after = await world.rooms.force_disconnect(mod, pub.connection_id)
    # before the reply: only participantLeft, and the record is untouched
    assert sink_mod.methods()[-1] == "participantLeft"
    assert sink_pub.closed_after == []
    await after()
    assert sink_mod.methods()[-1] == "participantEvicted"
    assert sink_pub.methods()[-1] == "participantEvicted"
    assert sink_pub.closed_after == [SOCKET_CLOSE_DELAY_S]
    left = world.events[-1]
    assert left.name == "participantLeft" and left.fields["reason"] == "forceDisconnectByUser"


async def test_signals_reach_only_the_listed_participants(world: World) -> None:
    sid = await world.session()
    a, sink_a, _ = await world.join(sid)
    b, sink_b, _ = await world.join(sid)
    await world.rooms.send_signal(sid, [b.connection_id], a.connection_id, "signal:x", "hi")
    assert sink_b.notes[-1] == (
        "sendMessage",
        {"data": "hi", "type": "signal:x", "from": a.connection_id},
    )
    assert "sendMessage" not in sink_a.methods()


async def test_a_client_signal_to_someone_not_in_the_room_is_refused(world: World) -> None:
    sid = await world.session()
    a, _, _ = await world.join(sid)
    msg = rpc.SendMessageParams.build(["con_nobody"], "hi", "chat")
    with pytest.raises(rpc.RpcError) as err:
        world.rooms.client_signal(a, msg)
    assert err.value.rpc_code == rpc.Code.SIGNAL_TO_INVALID
    req = world.rooms.client_signal(a, rpc.SendMessageParams.build([], "hi", "chat"))
    assert req.session == sid and req.to is None and req.data == "hi"


async def test_force_unpublish_stops_the_stream_for_everyone(world: World) -> None:
    sid = await world.session()
    pub, sink_pub, _ = await world.join(sid)
    _, sink_other, _ = await world.join(sid)
    stream_id = await _publish(world, pub)
    assert await world.rooms.force_unpublish(sid, "str_nope", "forceUnpublishByServer") is False
    assert await world.rooms.force_unpublish(sid, stream_id, "forceUnpublishByServer") is True
    assert sink_pub.methods()[-1] == "participantUnpublished"
    assert sink_other.methods()[-1] == "participantUnpublished"
    assert pub.stream is None and world.routers[0].producers == set()
