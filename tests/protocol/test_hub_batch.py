"""The hub bridge's wire: event batches and session handovers between nodes."""

from __future__ import annotations

import pytest

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


def test_a_batch_round_trips_in_order_with_its_origin() -> None:
    events = [Event(topic="t", id=f"e{i}", data={"é": i}) for i in range(3)]
    payload = encode_batch("node-1", [encode_one(e) for e in events])
    assert origin_of(payload) == b"node-1"
    origin, got = decode_batch(payload)
    assert origin == "node-1" and got == events
    assert decode_batch(encode_batch("n", [])) == ("n", [])
    with pytest.raises(ValueError):
        encode_batch("bad\nid", [])


@pytest.mark.parametrize(
    "payload", [b"no origin line", b"n\nnot json", b"n\n{}", b'n\n[{"nope": 1}]', b"n\n[1]"]
)
def test_a_bad_batch_is_refused(payload: bytes) -> None:
    with pytest.raises(HubBatchError):
        decode_batch(payload)


def test_handover_messages_round_trip() -> None:
    ask = TakeRequest("r1", "sid", "alice", "n2")
    assert decode_take(encode_take(ask)) == ask
    reply = TakeReply("r1", True, [("s", {"id": "s"}, "topic=t")], [("e1", "5:::{}")])
    assert decode_take(encode_take(reply)) == reply
    assert decode_take(encode_take(TakeReply("r2", False))) == TakeReply("r2", False)


@pytest.mark.parametrize(
    "payload",
    [
        b"[",
        b"[]",
        b'{"op": "take", "id": "r"}',
        b'{"op": "other", "id": "r"}',
        b'{"op": "handover", "id": "r", "found": "yes"}',
        b'{"op": "handover", "id": "r", "found": true, "subscribers": [["s", 1, "t"]]}',
        b'{"op": "handover", "id": "r", "found": true, "log": [["e"]]}',
    ],
)
def test_a_bad_handover_message_is_refused(payload: bytes) -> None:
    with pytest.raises(HubBatchError):
        decode_take(payload)
