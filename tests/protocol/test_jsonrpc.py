"""JSON-RPC 2.0 (Kurento flavour) framing: parsing, encoding, typed errors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidhub.errors import VidhubError
from vidhub.protocol import jsoncodec
from vidhub.protocol.jsonrpc import (
    INVALID_REQUEST,
    PARSE_ERROR,
    ErrorResponse,
    FrameError,
    Notification,
    Request,
    Response,
    encode_error,
    encode_notification,
    encode_request,
    encode_result,
    parse_message,
)


def test_browser_request_parses_with_params_defaulting_to_empty() -> None:
    assert parse_message('{"jsonrpc":"2.0","method":"ping","id":3}') == Request(3, "ping", {})
    msg = parse_message('{"jsonrpc":"2.0","method":"joinRoom","params":{"a":1},"id":0}')
    assert msg == Request(0, "joinRoom", {"a": 1})


def test_notification_and_responses_parse() -> None:
    assert parse_message('{"jsonrpc":"2.0","method":"x","params":{}}') == Notification("x", {})
    assert parse_message('{"id":1,"result":{"v":1},"jsonrpc":"2.0"}') == Response(1, {"v": 1})
    err = parse_message('{"id":1,"error":{"code":401,"message":"no"},"jsonrpc":"2.0"}')
    assert err == ErrorResponse(1, 401, "no")


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{", PARSE_ERROR),
        (b"\xff\xfe", PARSE_ERROR),
        ("[]", INVALID_REQUEST),
        ('{"method":"ping","id":1}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","method":5,"id":1}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","method":"m","params":[1],"id":1}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":1}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":1,"result":1,"error":{"code":1}}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":{},"method":"m"}', INVALID_REQUEST),
        ('{"jsonrpc":"2.0","id":1,"error":"bad"}', INVALID_REQUEST),
    ],
)
def test_bad_frames_raise_a_typed_error(frame: str | bytes, code: int) -> None:
    with pytest.raises(FrameError) as info:
        parse_message(frame)
    assert info.value.rpc_code == code
    assert isinstance(info.value, VidhubError)


def test_frame_error_keeps_the_request_id_when_readable() -> None:
    with pytest.raises(FrameError) as info:
        parse_message('{"jsonrpc":"1.0","method":"ping","id":9}')
    assert info.value.request_id == 9


def test_result_gets_session_id_and_non_objects_are_wrapped() -> None:
    assert encode_result(4, {"a": 1}, "rpc1") == (
        '{"id":4,"result":{"a":1,"sessionId":"rpc1"},"jsonrpc":"2.0"}'
    )
    assert jsoncodec.loads(encode_result(4, "reconnection successful", "s"))["result"] == {
        "value": "reconnection successful",
        "sessionId": "s",
    }
    assert jsoncodec.loads(encode_result(1, {"value": "pong"}, None))["result"] == {"value": "pong"}


def test_encoders_follow_kurento_key_order() -> None:
    assert encode_request(0, "ping", None) == '{"jsonrpc":"2.0","method":"ping","id":0}'
    assert (
        encode_error(2, 401, "x") == '{"id":2,"error":{"code":401,"message":"x"},"jsonrpc":"2.0"}'
    )
    assert encode_notification("m", {"a": 1}) == '{"method":"m","params":{"a":1},"jsonrpc":"2.0"}'


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(
    st.integers(0, 2**31),
    st.text(min_size=1, max_size=20),
    st.dictionaries(st.text(max_size=5), json_values, max_size=4),
)
def test_request_round_trip(rid: int, method: str, params: dict[str, object]) -> None:
    assert parse_message(encode_request(rid, method, params)) == Request(rid, method, params)


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_fuzz_only_frame_errors(data: bytes | str) -> None:
    with contextlib.suppress(FrameError):
        parse_message(data)
