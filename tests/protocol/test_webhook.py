"""The webhook signature scheme (vidhub.protocol.webhook): sign, verify, reject."""

from __future__ import annotations

import contextlib
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidhub.protocol.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSignatureError,
    compute_signature,
    signature_headers,
    verify_signature,
)

KEY = "s3cret"
BODY = b'{"sessionId":"s1","timestamp":1700000000000,"event":"sessionCreated"}'
NOW = 1_700_000_000


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(b"s3cret", b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(KEY, NOW, BODY) == expected
    assert signature_headers(KEY, NOW, BODY) == {
        TIMESTAMP_HEADER: "1700000000",
        SIGNATURE_HEADER: f"v1={expected}",
    }
    assert TIMESTAMP_HEADER == "X-Vidhub-Timestamp"
    assert SIGNATURE_HEADER == "X-Vidhub-Signature"


def test_str_and_bytes_inputs_agree() -> None:
    assert compute_signature(KEY, NOW, BODY) == compute_signature(KEY.encode(), NOW, BODY.decode())


def test_valid_signature_verifies_and_returns_timestamp() -> None:
    headers = signature_headers(KEY, NOW, BODY)
    assert verify_signature(KEY, headers, BODY, now_s=NOW + 10) == NOW


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in signature_headers(KEY, NOW, BODY).items()}
    assert verify_signature(KEY, headers, BODY, now_s=NOW) == NOW


@pytest.mark.parametrize(
    ("key", "body"),
    [("wrong", BODY), (KEY, BODY + b" "), (KEY, BODY.replace(b"s1", b"s2"))],
)
def test_wrong_key_or_altered_body_is_rejected(key: str, body: bytes) -> None:
    headers = signature_headers(KEY, NOW, BODY)
    with pytest.raises(WebhookSignatureError, match="mismatch"):
        verify_signature(key, headers, body, now_s=NOW)


@pytest.mark.parametrize("skew", [-301, 301, 10_000])
def test_timestamp_outside_tolerance_is_rejected(skew: int) -> None:
    headers = signature_headers(KEY, NOW, BODY)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_signature(KEY, headers, BODY, now_s=NOW + skew)


def test_tolerance_is_configurable() -> None:
    headers = signature_headers(KEY, NOW, BODY)
    assert verify_signature(KEY, headers, BODY, now_s=NOW + 299) == NOW
    with pytest.raises(WebhookSignatureError):
        verify_signature(KEY, headers, BODY, now_s=NOW + 299, tolerance_s=60)


def test_replayed_signature_with_a_new_timestamp_is_rejected() -> None:
    headers = signature_headers(KEY, NOW, BODY)
    headers[TIMESTAMP_HEADER] = str(NOW + 1000)
    with pytest.raises(WebhookSignatureError, match="mismatch"):
        verify_signature(KEY, headers, BODY, now_s=NOW + 1000)


def test_one_matching_signature_among_several_is_enough() -> None:
    good = compute_signature(KEY, NOW, BODY)
    headers = {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: f"v1={'0' * 64}, v0=x, v1={good}"}
    assert verify_signature(KEY, headers, BODY, now_s=NOW) == NOW


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TIMESTAMP_HEADER: str(NOW)},
        {SIGNATURE_HEADER: "v1=abc"},
        {TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "v1=abc"},
        {TIMESTAMP_HEADER: "-5", SIGNATURE_HEADER: "v1=abc"},
        {TIMESTAMP_HEADER: "9" * 40, SIGNATURE_HEADER: "v1=abc"},
        {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "sha256=abc"},
        {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "v1="},
        {TIMESTAMP_HEADER: str(NOW), SIGNATURE_HEADER: "v1=\u00e9\u00e9"},
    ],
)
def test_missing_or_malformed_headers_are_rejected(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookSignatureError):
        verify_signature(KEY, headers, BODY, now_s=NOW)


@given(key=st.text(min_size=1), ts=st.integers(0, 10**12), body=st.binary())
def test_sign_then_verify_round_trip(key: str, ts: int, body: bytes) -> None:
    assert verify_signature(key, signature_headers(key, ts, body), body, now_s=ts) == ts


@given(
    ts_header=st.text(max_size=30),
    sig_header=st.text(max_size=200),
    body=st.binary(max_size=64),
)
def test_arbitrary_headers_raise_only_the_documented_error(
    ts_header: str, sig_header: str, body: bytes
) -> None:
    headers = {TIMESTAMP_HEADER: ts_header, SIGNATURE_HEADER: sig_header}
    with contextlib.suppress(WebhookSignatureError):
        verify_signature(KEY, headers, body, now_s=NOW)
