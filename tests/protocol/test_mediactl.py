"""The media worker control channel codec: framing, the three message kinds, bad input."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidhub.protocol.mediactl import (
    ControlProtocolError,
    Decoder,
    Event,
    Request,
    Response,
    encode,
)

MESSAGES = [
    Request(1, "publish", {"router": "S#1", "id": "str_CAM_x", "sdp": "v=0\r\n"}),
    Request(2**40, "ping"),
    Response.success(1, "v=0\r\nanswer"),
    Response.success(2, None),
    Response.success(3, {"routers": 2}),
    Response.failure(4, "BadRequest", "unusable SDP offer: é"),
    Event("hello", {"pid": 1234, "index": 0}),
    Event("load", {"cpu": 1.5, "in": 10, "out": 60, "routers": {}}),
]


@pytest.mark.parametrize("msg", MESSAGES)
def test_every_message_round_trips(msg: Request | Response | Event) -> None:
    assert Decoder().feed(encode(msg)) == [msg]


def test_a_stream_cut_anywhere_gives_the_same_messages_in_order() -> None:
    stream = b"".join(encode(m) for m in MESSAGES)
    for step in (1, 3, 7, 64, len(stream)):
        dec = Decoder()
        out = []
        for i in range(0, len(stream), step):
            out += dec.feed(stream[i : i + step])
        assert out == MESSAGES
        assert dec.buffered == 0


def test_a_partial_frame_waits_for_the_rest() -> None:
    frame = encode(Event("hello", {"pid": 1}))
    dec = Decoder()
    assert dec.feed(frame[:2]) == []
    assert dec.feed(frame[2:-1]) == []
    assert dec.buffered == len(frame) - 1
    assert dec.feed(frame[-1:]) == [Event("hello", {"pid": 1})]


def _frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        b'{"k": "x"}',
        b'{"k": "q", "id": "1", "op": "ping"}',
        b'{"k": "q", "id": true, "op": "ping"}',
        b'{"k": "q", "id": 1, "op": 5}',
        b'{"k": "q", "id": 1, "op": "ping", "a": []}',
        b'{"k": "r", "id": 1, "ok": "yes"}',
        b'{"k": "r", "id": 1, "ok": false, "e": 1, "m": "x"}',
        b'{"k": "e", "ev": null}',
        b"\xff\xfe",
    ],
)
def test_malformed_frames_break_the_decoder_for_good(body: bytes) -> None:
    dec = Decoder()
    with pytest.raises(ControlProtocolError):
        dec.feed(_frame(body))
    # the framing cannot be trusted any more: even a good frame is refused
    with pytest.raises(ControlProtocolError):
        dec.feed(encode(Event("hello")))


def test_an_oversized_frame_is_refused_before_it_is_buffered() -> None:
    dec = Decoder(max_frame=1024)
    with pytest.raises(ControlProtocolError, match="exceeds"):
        dec.feed(struct.pack(">I", 1025) + b"{")


def test_values_json_cannot_carry_are_refused_at_encoding() -> None:
    with pytest.raises(ControlProtocolError):
        encode(Request(1, "publish", {"sdp": object()}))


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_args = st.dictionaries(st.text(max_size=8), _json, max_size=4)
_messages = (
    st.builds(Request, st.integers(0, 2**53), st.text(max_size=16), _args)
    | st.builds(Response.success, st.integers(0, 2**53), _json)
    | st.builds(Response.failure, st.integers(0, 2**53), st.text(max_size=16), st.text(max_size=40))
    | st.builds(Event, st.text(max_size=16), _args)
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_messages, max_size=6), st.integers(1, 50))
def test_any_messages_round_trip_however_the_stream_is_cut(
    msgs: list[Request | Response | Event], step: int
) -> None:
    stream = b"".join(encode(m) for m in msgs)
    dec = Decoder()
    out = []
    for i in range(0, len(stream), step):
        out += dec.feed(stream[i : i + step])
    assert out == msgs


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_gives_only_protocol_errors(data: bytes) -> None:
    dec = Decoder(max_frame=1 << 16)
    with contextlib.suppress(ControlProtocolError):
        dec.feed(data)
