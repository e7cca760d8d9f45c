"""The EventHub clients' shared core, driven with no socket: each operation's effects, in order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vidhub.client import eventhub_effects as fx
from vidhub.client.eventhub_core import HubCore
from vidhub.client.eventhub_types import (
    Event,
    EventHubConnectionError,
    EventHubPacketError,
    decode_wire_event,
    encode_wire_event,
)
from vidhub.protocol.socketio09 import SocketIoProtocol


class Hub(HubCore):
    """A core whose effects are performed by a script: every effect is recorded."""

    def __init__(self, **kw: Any) -> None:
        super().__init__("http://127.0.0.1:9", "alice", "key", **kw)
        self.is_open = False
        self.effects: list[fx.Effect] = []
        self.queue: list[Event] = []
        self.fail_sends = False

    @property
    def connected(self) -> bool:
        return self.is_open

    def run(self, op: fx.Op[Any]) -> Any:
        try:
            effect = next(op)
            while True:
                self.effects.append(effect)
                try:
                    result = self.perform(effect)
                except Exception as exc:
                    effect = op.throw(exc)
                else:
                    effect = op.send(result)
        except StopIteration as done:
            return done.value

    def perform(self, effect: fx.Effect) -> Any:
        if isinstance(effect, fx.Handshake):
            return 200, "sid1:60:60:websocket,xhr-polling"
        if isinstance(effect, fx.Open):
            self.is_open = True
        elif isinstance(effect, fx.Close):
            self.is_open = False
        elif isinstance(effect, fx.Send) and self.fail_sends:
            raise EventHubConnectionError("send failed")
        elif isinstance(effect, fx.Call):
            return effect.callback(effect.event)
        elif isinstance(effect, fx.Deliver):
            self.queue.append(effect.event)
        elif isinstance(effect, fx.Next):
            return self.queue.pop(0) if self.queue else None
        return None

    def sent(self) -> list[str]:
        return [e.text for e in self.effects if isinstance(e, fx.Send)]


def topics(frames: list[str]) -> list[str]:
    return [json.loads(f.split(":", 3)[3])["args"][0]["topic"] for f in frames]


def test_publishes_queue_until_connect_then_subscriptions_and_queue_flush() -> None:
    hub = Hub()
    with pytest.raises(EventHubConnectionError):  # neither connected nor initialised
        hub.run(hub._publish(Event(topic="t"), False, None, "raise"))
    assert hub.run(hub._publish(Event(topic="t"), False, None, "ignore")) is None
    hub.init_connection()
    hub.run(hub._subscribe("topic=a", lambda e: None, None, 100))
    assert hub.run(hub._publish(Event(topic="queued"), False, None, "raise")) is True
    assert hub.sent() == []

    hub.run(hub._connect())
    assert isinstance(hub.effects[0], fx.Handshake) and hub.effects[0].url.endswith("/socket.io/1/")
    assert hub.effects[1] == fx.Open("ws://127.0.0.1:9/socket.io/1/websocket/sid1")
    # every subscriber is announced (the reply subscriber first), then the queue goes out in
    # order, with the subscribe queued while offline (as ftrack_api does)
    assert topics(hub.sent()) == [
        "ftrack.meta.subscribe",
        "ftrack.meta.subscribe",
        "ftrack.meta.subscribe",
        "queued",
    ]
    assert [f.split(":")[1] for f in hub.sent()] == ["1+", "2+", "3+", "4+"]
    assert hub.session is not None and hub.session.id == "sid1"


def test_a_failed_send_forgets_its_ack_callback() -> None:
    hub = Hub()
    hub.run(hub._connect())
    hub.fail_sends = True
    before = dict(hub._packet_callbacks)
    with pytest.raises(EventHubConnectionError):
        hub.run(hub._publish(Event(topic="t"), False, None, "raise"))
    assert hub._packet_callbacks == before


def test_frames_answer_heartbeats_run_acks_and_deliver_events() -> None:
    hub = Hub()
    hub.run(hub._connect())
    proto = SocketIoProtocol(client=True)
    hub.effects.clear()
    acked: list[dict[str, Any]] = []
    hub._packet_callbacks[7] = acked.append
    assert hub.run(hub._frame_op(proto, "2::")) is True
    assert hub.sent() == ["2:::"]
    assert hub.run(hub._frame_op(proto, '6:::7+[{"success":true}]')) is True
    assert acked == [{"success": True}]
    event = {"topic": "x", "id": "e1", "data": {"inReplyToEvent": "r"}, "inReplyToEvent": None}
    frame = "5:::" + json.dumps({"name": "ftrack.event", "args": [event]})
    assert hub.run(hub._frame_op(proto, frame)) is True
    assert hub.queue[-1]["data"] == {"in_reply_to_event": "r"}  # the client's view (§4.3)
    assert hub.run(hub._frame_op(proto, "not a packet")) is True  # skipped
    assert hub.run(hub._frame_op(proto, "0::")) is False


def test_dispatch_order_stop_failures_and_replies() -> None:
    hub = Hub()
    hub.run(hub._connect())
    order: list[str] = []

    def failing(event: Event) -> None:
        order.append("failing")
        raise RuntimeError("boom")

    def answering(event: Event) -> str:
        order.append("answering")
        event.stop()
        return "42"

    hub.run(hub._subscribe("topic=q", failing, None, 10))
    hub.run(hub._subscribe("topic=q", answering, None, 20))
    hub.run(hub._subscribe("topic=q", lambda e: order.append("never"), None, 30))
    hub.effects.clear()
    question = Event(topic="q", source={"id": "asker"})
    hub.queue.append(question)
    hub.run(hub._wait(None))  # handles the one queued event, then finds none
    assert order == ["failing", "answering"]
    [reply] = [json.loads(f.split(":", 3)[3])["args"][0] for f in hub.sent()]
    assert reply["topic"] == "ftrack.meta.reply" and reply["data"] == "42"
    assert reply["target"] == "id=asker" and reply["inReplyToEvent"] == question["id"]


def test_reply_callbacks_run_and_are_not_answered() -> None:
    hub = Hub()
    hub.run(hub._connect())
    got: list[Event] = []
    question = Event(topic="q")
    hub.run(hub._publish(question, False, lambda e: got.append(e) or "ignored", "raise"))
    hub.effects.clear()
    reply = Event(
        topic="ftrack.meta.reply", target=f"id={hub.id}", in_reply_to_event=question["id"]
    )
    hub.queue.append(reply)
    hub.run(hub._wait(None))
    assert got == [reply] and hub.sent() == []


def test_reconnect_gives_up_with_disconnected_event() -> None:
    hub = Hub()
    hub._auto_reconnect_attempts = 2
    hub._auto_reconnect_delay = 0

    def refuse(effect: fx.Effect) -> Any:
        if isinstance(effect, fx.Handshake):
            raise EventHubConnectionError("refused")
        return Hub.perform(hub, effect)

    hub.perform = refuse  # type: ignore[method-assign]
    hub.run(hub._auto_reconnect_op())
    assert [e.seconds for e in hub.effects if hasattr(e, "seconds")] == [0]  # one sleep
    assert hub.queue[-1]["topic"] == "ftrack.meta.disconnected"


def test_wire_events_use_the_protocol_codec() -> None:
    with pytest.raises(EventHubPacketError):
        decode_wire_event({"topic": "t", "extra": 1})
    with pytest.raises(EventHubPacketError):
        decode_wire_event([1])
    event = decode_wire_event({"topic": "t", "inReplyToEvent": "x", "target": None})
    assert event["in_reply_to_event"] == "x" and event["target"] == ""
    wire = encode_wire_event(Event(topic="t", id="i", in_reply_to_event="x"))
    assert list(wire) == ["id", "data", "topic", "sent", "source", "target", "inReplyToEvent"]
    assert wire["inReplyToEvent"] == "x"
