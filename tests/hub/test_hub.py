"""The hub's routing contract (eventhub.md §5), on in-memory outboxes: no sockets."""

from __future__ import annotations

from typing import Any

import pytest

from vidhub.clock import ManualClock
from vidhub.hub import Hub, HubLimits, HubSession
from vidhub.protocol import jsoncodec
from vidhub.protocol.expression import Expression


class FakeOutbox:
    def __init__(self, capacity: int = 1000) -> None:
        self.frames: list[str] = []
        self.capacity = capacity
        self.closed: str | None = None

    def send(self, frame: str) -> bool:
        if len(self.frames) >= self.capacity:
            return False
        self.frames.append(frame)
        return True

    def close(self, reason: str) -> None:
        self.closed = reason

    def events(self) -> list[dict[str, Any]]:
        out = []
        for frame in self.frames:
            assert frame.startswith("5:::")
            body = jsoncodec.loads(frame[4:])
            assert body["name"] == "ftrack.event" and len(body["args"]) == 1
            out.append(body["args"][0])
        return out


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


DEEP = _deep(100)


def ev(topic: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": kw.pop("id", f"id-{topic}"),
        "data": {},
        "topic": topic,
        "sent": None,
        "source": {"id": "src"},
        "target": "",
        "inReplyToEvent": None,
    }
    base.update(kw)
    return base


def sub(sid: str, expr: str, **meta: Any) -> dict[str, Any]:
    return ev(
        "ftrack.meta.subscribe",
        data={"subscriber": {"id": sid, **meta}, "subscription": expr},
    )


@pytest.fixture
def hub(clock: ManualClock) -> Hub:
    return Hub(clock=clock, limits=HubLimits(max_subscriptions=3, replay_max_events=3))


def open_(hub: Hub, name: str, **kw: Any) -> tuple[HubSession, FakeOutbox]:
    box = FakeOutbox()
    return hub.open(name, "alice", box, **kw), box


def test_subscribe_and_route_at_most_once_including_publisher(hub: Hub) -> None:
    a, box_a = open_(hub, "a")
    b, box_b = open_(hub, "b")
    assert hub.handle(a, [sub("s1", "topic=t")]).success
    assert hub.handle(a, [sub("s2", "topic=t*")]).success
    assert hub.handle(b, [sub("s3", "data.k=v")]).success
    assert hub.handle(a, [ev("t", data={"k": "v"})]).success
    assert len(box_a.events()) == 1  # two matching subscribers, one delivery
    assert len(box_b.events()) == 1
    # subscribe/unsubscribe are never routed
    assert all(e["topic"] == "t" for e in box_a.events() + box_b.events())


def test_event_goes_out_with_exactly_the_seven_keys(hub: Hub) -> None:
    a, box = open_(hub, "a")
    hub.handle(a, [sub("s", "topic=t")])
    hub.handle(a, [ev("t", data={"inReplyToEvent": "x", "é": "ü"})])
    (out,) = box.events()
    assert list(out) == ["id", "data", "topic", "sent", "source", "target", "inReplyToEvent"]
    assert out["data"] == {"inReplyToEvent": "x", "é": "ü"}  # routed unchanged


def test_subscriptions_match_the_client_view(hub: Hub) -> None:
    a, box = open_(hub, "a")
    hub.handle(a, [sub("snake", "in_reply_to_event=E1")])
    hub.handle(a, [sub("camel", "inReplyToEvent=E2")])
    hub.handle(a, [ev("x", id="1", inReplyToEvent="E1")])
    hub.handle(a, [ev("x", id="2", inReplyToEvent="E2")])
    assert [e["id"] for e in box.events()] == ["1"]


def test_targets_filter_subscribers_by_metadata(hub: Hub) -> None:
    a, box_a = open_(hub, "a")
    b, box_b = open_(hub, "b")
    hub.handle(a, [sub("hub-a", "topic=ftrack.meta.reply")])
    hub.handle(b, [sub("hub-b", "topic=ftrack.meta.reply")])
    hub.handle(b, [sub("other", "topic=ftrack.meta.reply", applicationId="x")])
    reply = ev("ftrack.meta.reply", target="id=hub-a", inReplyToEvent="q")
    assert hub.handle(b, [reply]).success
    assert len(box_a.events()) == 1 and box_b.events() == []
    hub.handle(a, [ev("ftrack.meta.reply", id="r2", target="applicationId=x")])
    assert len(box_b.events()) == 1


def test_matching_errors_mean_no_match(hub: Hub) -> None:
    a, box = open_(hub, "a")
    hub.handle(a, [sub("cmp", "data.n>4 or topic=t")])  # int vs str raises: no match at all
    hub.handle(a, [ev("t", data={"n": 5})])
    assert box.events() == []
    hub.handle(a, [ev("t", id="2", data={"n": "5"})])
    assert len(box.events()) == 1


def test_per_publisher_order_is_kept(hub: Hub) -> None:
    a, box_a = open_(hub, "a")
    b, _ = open_(hub, "b")
    hub.handle(a, [sub("s", "topic=seq")])
    for n in range(50):
        hub.handle(b, [ev("seq", id=str(n))])
    assert [e["id"] for e in box_a.events()] == [str(n) for n in range(50)]


def test_duplicate_subscriber_id_replaces_on_same_connection_only(hub: Hub) -> None:
    a, box_a = open_(hub, "a")
    b, box_b = open_(hub, "b")
    assert hub.handle(a, [sub("same", "topic=one")]).success
    assert hub.handle(a, [sub("same", "topic=two")]).success  # replace, ack true
    assert hub.handle(b, [sub("same", "topic=one")]).success  # other socket: allowed
    assert hub.subscription_count == 2
    hub.handle(a, [ev("one")])
    hub.handle(a, [ev("two")])
    assert [e["topic"] for e in box_a.events()] == ["two"]
    assert [e["topic"] for e in box_b.events()] == ["one"]


def test_unsubscribe_known_and_unknown(hub: Hub) -> None:
    a, box = open_(hub, "a")
    hub.handle(a, [sub("s", "topic=t")])
    unsub = ev("ftrack.meta.unsubscribe", data={"subscriber": {"id": "s"}})
    assert hub.handle(a, [unsub]).success
    assert hub.handle(a, [unsub]).success  # unknown id: still true (§5.2)
    hub.handle(a, [ev("t")])
    assert box.events() == []
    assert hub.subscription_count == 0


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ([], "exactly one"),
        ([ev("a"), ev("b")], "exactly one"),
        (["nope"], "object"),
        ([{"data": {}}], "topic"),
        ([{**ev("t"), "stopped": True}], "unknown event keys"),
        ([ev("t", data={"x": DEEP})], "nest"),
        ([ev("ftrack.meta.connected")], "cannot be published"),
        ([ev("ftrack.meta.disconnected")], "cannot be published"),
        ([ev("t", target="   ")], "bad target"),
        ([ev("t", target="id=")], "bad target"),
        ([sub("s", "topic==x")], "invalid expression"),
        ([sub("s", "")], "empty expression"),
        ([ev("ftrack.meta.subscribe", data={"subscriber": {}, "subscription": "a=1"})], "id"),
        ([ev("ftrack.meta.subscribe", data={"subscriber": {"id": "x"}})], "subscription"),
    ],
)
def test_refusals_are_negative_acks(hub: Hub, args: list[Any], why: str) -> None:
    a, box = open_(hub, "a")
    hub.handle(a, [sub("all", "topic=*")])
    result = hub.handle(a, args)
    assert not result.success
    assert why in result.message
    assert result.payload() == {"success": False, "message": result.message}
    assert box.events() == []


def test_subscription_limit_per_connection(hub: Hub) -> None:
    a, _ = open_(hub, "a")
    for n in range(3):
        assert hub.handle(a, [sub(f"s{n}", "topic=t")]).success
    refused = hub.handle(a, [sub("s3", "topic=t")])
    assert not refused.success and "at most 3" in refused.message
    assert hub.handle(a, [sub("s0", "topic=u")]).success  # replacing is not adding


def test_unrelated_subscriptions_are_not_evaluated(hub: Hub, monkeypatch: Any) -> None:
    """The topic index: a publish scans its topic's bucket and the fallback list only."""
    big = Hub(limits=HubLimits(max_subscriptions=10_000))
    box = FakeOutbox()
    s = big.open("s", "u", box)
    for n in range(2000):
        big.handle(s, [sub(f"x{n}", f"topic=unrelated.{n}")])
    big.handle(s, [sub("hit", "topic=wanted")])
    calls = 0
    real = Expression.matches

    def counting(self: Expression, candidate: Any) -> bool:
        nonlocal calls
        calls += 1
        return real(self, candidate)

    monkeypatch.setattr(Expression, "matches", counting)
    big.handle(s, [ev("wanted")])
    assert calls == 1
    assert len(box.events()) == 1


def test_detach_drops_registrations(hub: Hub) -> None:
    a, _ = open_(hub, "a")
    b, box_b = open_(hub, "b")
    hub.handle(a, [sub("s", "topic=t")])
    hub.detach(a)
    assert hub.subscription_count == 0
    assert "a" not in hub.sessions
    hub.handle(b, [ev("t")])
    assert box_b.events() == []


def test_frames_after_a_drop_change_nothing(hub: Hub) -> None:
    a, box = open_(hub, "a")
    hub.detach(a, box)
    result = hub.handle(a, [sub("late", "topic=t")])
    assert not result.success
    assert hub.subscription_count == 0


def test_slow_consumer_is_closed_and_others_still_served(hub: Hub) -> None:
    slow_box = FakeOutbox(capacity=2)
    slow = hub.open("slow", "u", slow_box)
    fast, fast_box = open_(hub, "fast")
    for s in (slow, fast):
        hub.handle(s, [sub("s", "topic=t")])
    for n in range(5):
        hub.handle(fast, [ev("t", id=str(n))])
    assert slow_box.closed == "slow consumer"
    assert len(fast_box.events()) == 5
    assert "slow" not in hub.sessions


async def test_publish_server_event(hub: Hub) -> None:
    a, box = open_(hub, "a")
    hub.handle(a, [sub("s", "topic=vidhub.session.created")])
    await hub.publish_server_event("vidhub.session.created", {"sessionId": "ses_1"})
    (out,) = box.events()
    assert out["data"] == {"sessionId": "ses_1"}
    assert out["source"] == {"id": "vidhub-server", "applicationId": "vidhub.server"}


def test_resume_replays_after_last_seen_event(hub: Hub) -> None:
    a, box_a = open_(hub, "a", resumable=True)
    pub, _ = open_(hub, "pub")
    hub.handle(a, [sub("s", "topic=t")])
    hub.handle(pub, [ev("t", id="1")])
    hub.detach(a, box_a)
    assert hub.subscription_count == 1  # parked, still subscribed
    hub.handle(pub, [ev("t", id="2")])
    hub.handle(pub, [ev("t", id="3")])
    new_box = FakeOutbox()
    resumed = hub.resume("a", "a2", "alice", new_box, "1")
    assert resumed is not None
    session, frames = resumed
    assert session is a and session.sid == "a2"
    assert [jsoncodec.loads(f[4:])["args"][0]["id"] for f in frames] == ["2", "3"]
    hub.handle(pub, [ev("t", id="4")])
    assert [e["id"] for e in new_box.events()] == ["4"]


def test_resume_refused_for_other_user_expired_or_not_opted_in(
    hub: Hub, clock: ManualClock
) -> None:
    a, box_a = open_(hub, "a", resumable=True)
    hub.detach(a, box_a)
    assert hub.resume("a", "x", "mallory", FakeOutbox(), None) is None
    clock.advance(hub.limits.replay_window_s + 1)
    assert hub.resume("a", "x", "alice", FakeOutbox(), None) is None
    assert hub.sessions == {}
    plain, box_p = open_(hub, "p")
    hub.detach(plain, box_p)
    assert hub.resume("p", "y", "alice", FakeOutbox(), None) is None


def test_resume_takes_over_a_socket_not_yet_noticed_dead(hub: Hub) -> None:
    a, box_a = open_(hub, "a", resumable=True)
    new_box = FakeOutbox()
    assert hub.resume("a", "a2", "alice", new_box, None) is not None
    assert box_a.closed == "session resumed elsewhere"
    hub.detach(a, box_a)  # the late detach of the replaced socket changes nothing
    assert hub.sessions["a2"].outbox is new_box


def test_replay_log_is_bounded(hub: Hub) -> None:
    a, box_a = open_(hub, "a", resumable=True)
    pub, _ = open_(hub, "pub")
    hub.handle(a, [sub("s", "topic=t")])
    hub.detach(a, box_a)
    for n in range(10):
        hub.handle(pub, [ev("t", id=str(n))])
    assert a.log_chars == sum(len(entry.frame) for entry in a.log)
    resumed = hub.resume("a", "a2", "alice", FakeOutbox(), None)
    assert resumed is not None
    assert len(resumed[1]) == 3  # replay_max_events


def test_replay_log_is_bounded_in_characters(clock: ManualClock) -> None:
    hub = Hub(clock=clock, limits=HubLimits(replay_max_events=100, replay_max_chars=1000))
    a, box_a = open_(hub, "a", resumable=True)
    pub, _ = open_(hub, "pub")
    hub.handle(a, [sub("s", "topic=t")])
    hub.detach(a, box_a)
    for n in range(10):
        hub.handle(pub, [ev("t", id=str(n), data={"pad": "x" * 200})])
    assert a.log_chars <= 1000
    resumed = hub.resume("a", "a2", "alice", FakeOutbox(), None)
    assert resumed is not None
    ids = [jsoncodec.loads(f[4:])["args"][0]["id"] for f in resumed[1]]
    assert ids == [str(n) for n in range(10 - len(ids), 10)]  # the newest, in order
    assert 0 < len(ids) < 10
