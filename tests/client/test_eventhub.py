"""``vidhub.client.EventHub`` against a running ``vidhub serve``: what goes beyond the ftrack
scenarios (which run on this client too, in tests/integration/test_ftrack_peer.py), plus
vidhub's opt-in replay of events missed while reconnecting."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.hubs import acked, pump
from tests.support.proc import MS, ServerProcess
from vidhub.client import Event, EventHub
from vidhub.client.eventhub_types import (
    EventHubConnectionError,
    NotFoundError,
    NotUniqueError,
    ParseError,
    ServerDetails,
)


def connected(
    server: ServerProcess, made: list[EventHub], user: str = "alice", **kw: Any
) -> EventHub:
    hub = EventHub(server.url, user, server.secret, **kw)
    hub._auto_reconnect_delay = 0.2
    hub.connect()
    made.append(hub)
    return hub


def test_constructor_and_url_helpers() -> None:
    hub = EventHub("https://example.invalid:8443/some/path", "u", "k")
    assert hub.server == ServerDetails("https", "example.invalid", 8443)
    assert hub.secure
    assert hub.get_server_url() == "https://example.invalid:8443"
    assert hub.get_network_location() == "example.invalid:8443"
    assert not hub.connected
    with pytest.raises(ValueError):
        EventHub("no-scheme", "u", "k")


def test_local_subscriber_rules() -> None:
    hub = EventHub("http://127.0.0.1:9", "u", "k")
    meta: dict[str, Any] = {}
    ident = hub.subscribe("topic=a", None, subscriber=meta)
    assert meta["id"] == ident  # the caller's dict is filled in, like ftrack_api
    assert hub.get_subscriber_by_identifier(ident) is not None
    with pytest.raises(NotUniqueError):
        hub.subscribe("topic=b", None, subscriber={"id": ident})
    with pytest.raises(ParseError):
        hub.subscribe("topic=", None)
    hub.unsubscribe(ident)
    with pytest.raises(NotFoundError):
        hub.unsubscribe(ident)
    with pytest.raises(EventHubConnectionError):
        hub.publish(Event(topic="x"))
    assert hub.publish(Event(topic="x"), on_error="ignore") is None


def test_synchronous_publish_orders_by_priority() -> None:
    hub = EventHub("http://127.0.0.1:9", "u", "k")
    for letter, prio in (("C", 70), ("A", 50), ("B", 60)):
        hub.subscribe("topic=sync", lambda e, v=letter: v, priority=prio)
    event = Event(topic="sync")
    assert hub.publish(event, synchronous=True) == ["A", "B", "C"]
    assert event["source"]["id"] == hub.id  # publish fills the source in


def test_publish_subscribe_reply_target(shared_server: ServerProcess, hubs: list[EventHub]) -> None:
    a = connected(shared_server, hubs)
    b = connected(shared_server, hubs, "bob")
    got_a: list[Event] = []
    got_b: list[Event] = []
    a.subscribe("topic=cli.q", got_a.append, subscriber={"applicationId": "app.a"})
    b.subscribe("topic=cli.q", lambda e: got_b.append(e) or {"answer": "42"}, priority=5)
    b.subscribe("topic=cli.*", lambda e: "second")  # same connection: still one delivery
    assert pump([a, b], acked(a, b))
    replies: list[Event] = []
    question = Event(topic="cli.q", data={"q": "vé"})
    a.publish(question, on_reply=replies.append)
    assert pump([a, b], lambda: bool(replies) and len(got_a) == 1 and len(got_b) == 1)
    # b's two callbacks each auto-reply; both replies reach only the asker
    assert pump([a, b], lambda: len(replies) == 2)
    datas = [r["data"] for r in replies]
    assert {"answer": "42"} in datas and "second" in datas
    assert all(r["in_reply_to_event"] == question["id"] for r in replies)
    # a targeted event reaches only the matching subscriber metadata
    b.publish(Event(topic="cli.q", target="applicationId=app.a"))
    assert pump([a, b], lambda: len(got_a) == 2)
    assert pump([a, b], lambda: len(got_b) > 1, 300 * MS) is False


def test_subscription_context_manager(shared_server: ServerProcess, hubs: list[EventHub]) -> None:
    a = connected(shared_server, hubs)
    got: list[Event] = []
    with a.subscription("topic=cli.ctx", got.append):
        assert pump([a], acked(a))
        a.publish(Event(topic="cli.ctx"))
        assert pump([a], lambda: len(got) == 1)
    assert pump([a], acked(a))
    a.publish(Event(topic="cli.ctx"))
    assert pump([a], acked(a))
    assert pump([a], lambda: len(got) > 1, 300 * MS) is False


def test_resume_replays_missed_events_in_order(
    shared_server: ServerProcess, hubs: list[EventHub]
) -> None:
    listener = connected(shared_server, hubs, resume=True)
    publisher = connected(shared_server, hubs, "bob")
    got: list[Event] = []
    listener.subscribe("topic=cli.resume", got.append)
    assert pump([listener], acked(listener))
    publisher.publish(Event(topic="cli.resume", data={"n": "0"}))
    assert pump([listener, publisher], lambda: len(got) == 1)
    listener.disconnect(unsubscribe=False, reconnect=True)  # the socket goes, the hub stays
    for n in range(1, 4):
        publisher.publish(Event(topic="cli.resume", data={"n": str(n)}))
    assert pump([publisher], acked(publisher))
    listener.connect()
    assert pump([listener, publisher], lambda: len(got) >= 4)
    assert pump([listener], lambda: len(got) > 4, 300 * MS) is False
    assert [e["data"]["n"] for e in got] == ["0", "1", "2", "3"]


def test_without_resume_missed_events_are_gone(
    shared_server: ServerProcess, hubs: list[EventHub]
) -> None:
    listener = connected(shared_server, hubs)
    publisher = connected(shared_server, hubs, "bob")
    got: list[Event] = []
    listener.subscribe("topic=cli.noresume", got.append)
    assert pump([listener], acked(listener))
    listener.disconnect(unsubscribe=False, reconnect=True)
    publisher.publish(Event(topic="cli.noresume"))
    assert pump([publisher], acked(publisher))
    listener.connect()
    assert pump([listener], acked(listener))
    assert pump([listener], lambda: bool(got), 300 * MS) is False
