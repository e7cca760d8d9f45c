"""The real, unmodified ``ftrack_api.event.hub.EventHub`` and vidhub's own
``vidhub.client.EventHub`` against a running ``vidhub serve``.

These are the conformance tests of the event hub (eventhub.md §0): what the ftrack client
relies on is what vidhub must do, and every scenario also runs on our client, which proves it
a drop-in replacement. Waiting is on conditions, by pumping ``hub.wait`` in short slices until
the condition holds or a deadline passes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import websocket

ftrack_hub = pytest.importorskip("ftrack_api.event.hub")
ftrack_base = pytest.importorskip("ftrack_api.event.base")
ftrack_exc = pytest.importorskip("ftrack_api.exception")

import vidhub.client  # noqa: E402
from tests.support.hubs import acked, pump  # noqa: E402
from tests.support.proc import MS, ServerProcess  # noqa: E402
from vidhub.client.eventhub_types import EventHubConnectionError  # noqa: E402

pytestmark = pytest.mark.peers


@dataclass(frozen=True)
class Flavour:
    """An event hub client library: its hub and event classes and its connection error."""

    name: str
    hub_class: Any
    event: Any
    connection_error: type[Exception]

    def make_hub(self, server: ServerProcess, user: str = "alice") -> Any:
        hub = self.hub_class(server.url, user, server.secret)
        # retry every 0.2 s (the default 10 s would only slow the restart test) for up to a
        # minute: a restart on a loaded machine can outlast the default 30 tries
        hub._auto_reconnect_delay = 0.2
        hub._auto_reconnect_attempts = 300
        return hub

    def connected_hub(self, server: ServerProcess, made: list[Any], user: str = "alice") -> Any:
        hub = self.make_hub(server, user)
        hub.connect()
        made.append(hub)
        return hub


FLAVOURS = [
    Flavour(
        "ftrack_api", ftrack_hub.EventHub, ftrack_base.Event, ftrack_exc.EventHubConnectionError
    ),
    Flavour("vidhub", vidhub.client.EventHub, vidhub.client.Event, EventHubConnectionError),
]


@pytest.fixture(params=FLAVOURS, ids=lambda f: f.name)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    f: Flavour = request.param
    return f


def test_subscribe_publish_self_delivery(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    hub = flavour.connected_hub(shared_server, hubs)
    got: list[Any] = []
    hub.subscribe("topic=test.self and data.name=hot*", got.append)
    hub.publish(flavour.event(topic="test.self", data={"name": "shot010", "é": "vé"}))
    hub.publish(flavour.event(topic="test.self", data={"name": "cold"}))
    hub.publish(flavour.event(topic="test.other", data={"name": "hot"}))
    assert pump([hub], lambda: len(got) >= 1 and not hub._packet_callbacks)
    assert pump([hub], lambda: False, 200 * MS) is False  # nothing more arrives
    assert [e["data"] for e in got] == [{"name": "shot010", "é": "vé"}]


def test_each_connection_receives_once_and_priorities_are_local(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    a = flavour.connected_hub(shared_server, hubs)
    b = flavour.connected_hub(shared_server, hubs, "bob")
    order: list[str] = []
    a.subscribe("topic=test.prio", lambda e: order.append("a70"), priority=70)
    a.subscribe("topic=test.*", lambda e: order.append("a50"), priority=50)
    a.subscribe("topic=test.prio", lambda e: order.append("a60"), priority=60)
    seen_b: list[Any] = []
    b.subscribe("topic=test.prio", seen_b.append)
    b.subscribe("data.x=1", seen_b.append)
    assert pump([a, b], lambda: not a._packet_callbacks and not b._packet_callbacks)
    b.publish(flavour.event(topic="test.prio", data={"x": "1"}))
    assert pump([a, b], lambda: len(order) == 3 and len(seen_b) == 2)
    # one delivery per connection: a's three callbacks once each, in priority order
    assert order == ["a50", "a60", "a70"]
    # b has two matching subscribers: the hub fans the single delivery out locally
    assert seen_b[0]["id"] == seen_b[1]["id"]


def test_stop_ends_local_dispatch(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    hub = flavour.connected_hub(shared_server, hubs)
    calls: list[str] = []

    def first(event: Any) -> None:
        calls.append("first")
        event.stop()

    hub.subscribe("topic=test.stop", first, priority=10)
    hub.subscribe("topic=test.stop", lambda e: calls.append("second"), priority=20)
    hub.publish(flavour.event(topic="test.stop"))
    assert pump([hub], lambda: calls == ["first"] and not hub._packet_callbacks)


def test_synchronous_publish_never_reaches_the_server(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    a = flavour.connected_hub(shared_server, hubs)
    b = flavour.connected_hub(shared_server, hubs, "bob")
    remote: list[Any] = []
    b.subscribe("topic=test.sync", remote.append)
    for letter, prio in (("C", 70), ("A", 50), ("B", 60)):
        a.subscribe("topic=test.sync", lambda e, v=letter: v, priority=prio)
    assert pump([a, b], lambda: not a._packet_callbacks and not b._packet_callbacks)
    assert a.publish(flavour.event(topic="test.sync"), synchronous=True) == ["A", "B", "C"]
    assert pump([a, b], lambda: bool(remote), 300 * MS) is False


def test_replies_route_only_to_the_publisher(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    asker = flavour.connected_hub(shared_server, hubs)
    answerer = flavour.connected_hub(shared_server, hubs, "bob")
    bystander = flavour.connected_hub(shared_server, hubs, "carol")
    answerer.subscribe("topic=test.question", lambda e: {"answer": 42})
    overheard: list[Any] = []
    bystander.subscribe("topic=ftrack.meta.reply", overheard.append)
    all_hubs = [asker, answerer, bystander]
    assert pump(all_hubs, lambda: all(not h._packet_callbacks for h in all_hubs))
    replies: list[Any] = []
    question = flavour.event(topic="test.question")
    asker.publish(question, on_reply=replies.append)
    assert pump(all_hubs, lambda: bool(replies))
    assert replies[0]["data"] == {"answer": 42}
    assert replies[0]["in_reply_to_event"] == question["id"]
    assert pump(all_hubs, lambda: bool(overheard), 300 * MS) is False


def test_targets_match_subscriber_metadata(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    a = flavour.connected_hub(shared_server, hubs)
    b = flavour.connected_hub(shared_server, hubs, "bob")
    got_a: list[Any] = []
    got_b: list[Any] = []
    a.subscribe("topic=test.target", got_a.append, subscriber={"applicationId": "app.a"})
    b.subscribe("topic=test.target", got_b.append, subscriber={"applicationId": "app.b"})
    assert pump([a, b], lambda: not a._packet_callbacks and not b._packet_callbacks)
    a.publish(flavour.event(topic="test.target", target="applicationId=app.b", data={"n": "1"}))
    assert pump([a, b], lambda: bool(got_b))
    assert pump([a, b], lambda: bool(got_a), 300 * MS) is False


def test_unsubscribe_stops_delivery(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    a = flavour.connected_hub(shared_server, hubs)
    b = flavour.connected_hub(shared_server, hubs, "bob")
    got: list[Any] = []
    sid = b.subscribe("topic=test.unsub", got.append)
    assert pump([b], acked(b))
    a.publish(flavour.event(topic="test.unsub", data={"n": "1"}))
    assert pump([a, b], lambda: len(got) == 1)
    b.unsubscribe(sid)
    assert pump([b], acked(b))
    a.publish(flavour.event(topic="test.unsub", data={"n": "2"}))
    assert pump([a], acked(a))
    assert pump([b], lambda: len(got) > 1, 300 * MS) is False


def test_subscriptions_made_before_connect_are_sent_once_connected(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    """The Session pattern: init_connection, subscribe, publish, then connect (§3.2)."""
    hub = flavour.make_hub(shared_server)
    hub.init_connection()
    got: list[Any] = []
    hub.subscribe("topic=test.early", got.append)  # queued AND re-sent on connect: a duplicate
    assert hub.publish(flavour.event(topic="test.early")) is True  # queued
    hub.connect()
    hubs.append(hub)
    assert pump([hub], lambda: len(got) == 1 and not hub._packet_callbacks)
    assert pump([hub], lambda: len(got) > 1, 300 * MS) is False


def test_a_misbehaving_peer_leaves_ftrack_clients_unaffected(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    a = flavour.connected_hub(shared_server, hubs)
    b = flavour.connected_hub(shared_server, hubs, "bob")
    got: list[Any] = []
    b.subscribe("topic=test.robust", got.append)
    assert pump([b], acked(b))
    body = requests.get(
        shared_server.url + "/socket.io/1/",
        headers={"ftrack-user": "mallory", "ftrack-api-key": shared_server.secret},
        timeout=5,
    ).text
    rogue = websocket.create_connection(
        f"ws://127.0.0.1:{shared_server.port}/socket.io/1/websocket/{body.split(':')[0]}",
        timeout=5,
    )
    try:
        assert rogue.recv() == "1::"
        for frame in ["", "8::", "9::", "5:::{broken", "5:1+::[]", "6:::x", "2:"]:
            rogue.send(frame)
        sub = {"subscriber": {"id": "r"}, "subscription": "topic=(("}
        rogue.send(
            '5:2+::{"name":"ftrack.event","args":[{"topic":"ftrack.meta.subscribe","data":'
            + json.dumps(sub)
            + "}]}"
        )
        nacks = [rogue.recv(), rogue.recv()]
        assert all('"success":false' in n for n in nacks)
        rogue.send_binary(b"\xff\x00")
        a.publish(flavour.event(topic="test.robust", data={"n": "1"}))
        assert pump([a, b], lambda: len(got) == 1)
    finally:
        rogue.close()


def test_connect_packet_arrives_exactly_once(
    flavour: Flavour, shared_server: ServerProcess, hubs: list[Any]
) -> None:
    hub = flavour.make_hub(shared_server)
    seen: list[Any] = []
    hub.subscribe("topic=ftrack.meta.connected", seen.append)  # local: made from the 1:: packet
    hub.connect()
    hubs.append(hub)
    assert pump([hub], lambda: len(seen) == 1 and not hub._packet_callbacks)
    assert pump([hub], lambda: len(seen) > 1, 300 * MS) is False


def test_bad_credentials_fail_to_connect(flavour: Flavour, shared_server: ServerProcess) -> None:
    hub = flavour.hub_class(shared_server.url, "mallory", "wrong")
    with pytest.raises(flavour.connection_error):
        hub.connect()


def test_disconnect_then_publish_raises(flavour: Flavour, shared_server: ServerProcess) -> None:
    hub = flavour.make_hub(shared_server)
    hub.connect()
    hub.disconnect()
    assert not hub.connected
    with pytest.raises(flavour.connection_error):
        hub.publish(flavour.event(topic="test.after"))


def test_automatic_reconnect_after_server_restart(flavour: Flavour, tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        listener = flavour.make_hub(server)
        listener.connect()
        publisher = flavour.make_hub(server, "bob")
        publisher.connect()
        got: list[Any] = []
        listener.subscribe("topic=test.restart", got.append)
        assert pump([listener], acked(listener))
        server.restart()  # same port; the server sends 0:: on its way down
        deadline = time.monotonic() + 60  # met as soon as both are back
        while time.monotonic() < deadline and not (listener.connected and publisher.connected):
            listener.wait(0.05)
        assert listener.connected and publisher.connected
        # the listener resubscribed with the same subscriber id on its new connection
        assert pump([listener], acked(listener))

        def delivered() -> bool:
            if not got:
                publisher.publish(flavour.event(topic="test.restart"))
            return bool(got)

        assert pump([listener, publisher], delivered)
        listener.disconnect()
        publisher.disconnect()
    finally:
        server.stop()
