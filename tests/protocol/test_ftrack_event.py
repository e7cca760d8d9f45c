"""The ftrack event envelope (eventhub.md §4)."""

from __future__ import annotations

import pytest

from vidhub.protocol.ftrack_event import (
    MAX_DEPTH,
    WIRE_KEYS,
    Event,
    EventError,
    client_view,
    event_from_wire,
    event_to_wire,
)


def test_round_trip_keeps_keys_and_order() -> None:
    wire = {
        "id": "abc",
        "data": {"k": "vé"},
        "topic": "t",
        "sent": None,
        "source": {"id": "hub"},
        "target": "id=x",
        "inReplyToEvent": "orig",
    }
    event = event_from_wire(wire)
    assert event.in_reply_to_event == "orig"
    assert event_to_wire(event) == wire
    assert tuple(event_to_wire(event)) == WIRE_KEYS


def test_defaults_like_the_client() -> None:
    event = event_from_wire({"topic": "t", "data": [], "in_reply_to_event": "x"})
    assert event.data == {}  # falsy data becomes {}
    assert len(event.id) == 32
    assert event.target == "" and event.source == {}
    assert event.in_reply_to_event == "x"


@pytest.mark.parametrize(
    "bad",
    [
        [],
        "x",
        {"data": {}},
        {"topic": "t", "stopped": False},
        {"topic": "t", "id": 5},
        {"topic": "t", "target": 3},
    ],
)
def test_invalid_envelopes(bad: object) -> None:
    with pytest.raises(EventError):
        event_from_wire(bad)


def test_client_view_renames_at_any_depth() -> None:
    event = Event(topic="t", data={"inReplyToEvent": 1, "l": [{"inReplyToEvent": 2}]})
    view = client_view(event)
    assert view["data"] == {"in_reply_to_event": 1, "l": [{"in_reply_to_event": 2}]}
    assert "in_reply_to_event" in view and "inReplyToEvent" not in view
    assert event.data == {"inReplyToEvent": 1, "l": [{"inReplyToEvent": 2}]}  # unchanged


def test_nesting_is_bounded() -> None:
    def nest(depth: int) -> object:
        value: object = "leaf"
        for _ in range(depth):
            value = [value]
        return value

    ok = {"topic": "t", "data": {"x": nest(MAX_DEPTH - 3)}}
    assert event_from_wire(ok).data == ok["data"]
    with pytest.raises(EventError, match="nest"):
        event_from_wire({"topic": "t", "data": {"x": nest(1000)}})
