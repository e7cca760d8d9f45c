"""The relay command codec: round trips, refusals, and a bounded fuzz run."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidhub.protocol import cluster as wire

text = st.text(max_size=40)

messages = st.one_of(
    st.builds(
        wire.SignalCommand,
        text,
        st.lists(text, max_size=5).map(tuple),
        st.none() | text,
        text,
        text,
    ),
    st.builds(wire.EvictCommand, text, text, text, text, text),
    st.builds(wire.UnpublishCommand, text, text, text, text, text),
    st.builds(wire.Reply, text, st.booleans()),
)


@given(messages)
def test_round_trip(msg: wire.ClusterMessage) -> None:
    assert wire.decode(wire.encode(msg)) == msg


def test_the_wire_form_is_documented_json() -> None:
    msg = wire.EvictCommand("r1", "node-a:4443", "ses", "con_x", "forceDisconnectByServer")
    assert wire.encode(msg) == (
        b'{"op":"evict","id":"r1","replyTo":"node-a:4443","session":"ses",'
        b'"connection":"con_x","reason":"forceDisconnectByServer"}'
    )
    signal = wire.SignalCommand("ses", ("con_a",), None, "t", "d")
    assert wire.encode(signal) == (
        b'{"op":"signal","session":"ses","to":["con_a"],"sender":null,"type":"t","data":"d"}'
    )


def test_unknown_keys_are_ignored() -> None:
    assert wire.decode(b'{"op":"reply","id":"r","ok":false,"extra":1}') == wire.Reply("r", False)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"null",
        b"[1]",
        b'{"op":"reboot"}',
        b'{"id":"r","ok":true}',
        b'{"op":"reply","id":"r","ok":1}',
        b'{"op":"reply","ok":true}',
        b'{"op":"signal","session":"s","to":"con_a","sender":null,"type":"t","data":"d"}',
        b'{"op":"signal","session":"s","to":[1],"sender":null,"type":"t","data":"d"}',
        b'{"op":"signal","session":"s","to":[],"sender":5,"type":"t","data":"d"}',
        b'{"op":"evict","id":"r","replyTo":"n","session":"s","reason":"x"}',
        b'{"op":"unpublish","id":"r","replyTo":"n","session":"s","stream":7,"reason":"x"}',
    ],
)
def test_malformed_messages_are_refused(payload: bytes) -> None:
    with pytest.raises(wire.ClusterMessageError):
        wire.decode(payload)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzz_decode_raises_only_the_documented_error(payload: bytes) -> None:
    with contextlib.suppress(wire.ClusterMessageError):
        wire.decode(payload)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["op", "id", "replyTo", "session", "to", "sender", "type", "data", "ok"]),
        st.none()
        | st.booleans()
        | st.integers(-(2**53), 2**53)
        | text
        | st.lists(text, max_size=3),
    ),
    st.sampled_from(["signal", "evict", "unpublish", "reply"]),
)
def test_fuzz_near_miss_objects(obj: dict[str, object], op: str) -> None:
    from vidhub.protocol.jsoncodec import dumps_bytes

    obj.setdefault("op", op)
    with contextlib.suppress(wire.ClusterMessageError):
        wire.decode(dumps_bytes(obj))


def test_node_info_round_trips_and_refuses_garbage() -> None:
    from vidhub.protocol.cluster import NodeInfo, decode_node_info, encode_node_info

    info = NodeInfo("https://n2.example:4443", publishers=3, packets=1200)
    assert decode_node_info(encode_node_info(info)) == info
    assert decode_node_info(b'{"url": "", "extra": 1}') == NodeInfo()
    for bad in (b"nope", b"[]", b'{"url": 1}', b'{"url": "", "publishers": "3"}'):
        with pytest.raises(wire.ClusterMessageError):
            decode_node_info(bad)
