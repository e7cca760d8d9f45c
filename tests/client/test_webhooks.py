"""``vidhub.client.verify_webhook``: what a receiving application calls."""

from __future__ import annotations

import time

import pytest

from vidhub.client import WebhookSignatureError, verify_webhook
from vidhub.protocol.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_headers

SECRET = "MY_SECRET"
BODY = b'{"sessionId":"s1","uniqueSessionId":"s1_1","timestamp":1,"event":"sessionCreated"}'


def test_valid_delivery_returns_the_event() -> None:
    headers = signature_headers(SECRET, int(time.time()), BODY)
    event = verify_webhook(SECRET, headers, BODY)
    assert event == {
        "sessionId": "s1",
        "uniqueSessionId": "s1_1",
        "timestamp": 1,
        "event": "sessionCreated",
    }
    assert list(event)[-1] == "event"


def test_str_body_and_explicit_clock() -> None:
    headers = signature_headers(SECRET, 1000, BODY)
    assert verify_webhook(SECRET, headers, BODY.decode(), now_s=1100)["event"] == "sessionCreated"


def test_wrong_secret_is_rejected() -> None:
    headers = signature_headers(SECRET, int(time.time()), BODY)
    with pytest.raises(WebhookSignatureError):
        verify_webhook("other", headers, BODY)


def test_stale_delivery_is_rejected_with_the_default_tolerance() -> None:
    headers = signature_headers(SECRET, 1000, BODY)
    assert verify_webhook(SECRET, headers, BODY, now_s=1300)["sessionId"] == "s1"
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        verify_webhook(SECRET, headers, BODY, now_s=1301)
    with pytest.raises(WebhookSignatureError):
        verify_webhook(SECRET, headers, BODY, tolerance_s=10, now_s=1011)


def test_unsigned_delivery_is_rejected() -> None:
    with pytest.raises(WebhookSignatureError, match="missing"):
        verify_webhook(SECRET, {"Content-Type": "application/json"}, BODY)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"str"'])
def test_signed_body_that_is_not_a_json_object_is_rejected(body: bytes) -> None:
    headers = signature_headers(SECRET, 1000, body)
    with pytest.raises(WebhookSignatureError, match="JSON"):
        verify_webhook(SECRET, headers, body, now_s=1000)


def test_header_constants_are_reexported() -> None:
    from vidhub.client import webhooks

    assert webhooks.TIMESTAMP_HEADER == TIMESTAMP_HEADER
    assert webhooks.SIGNATURE_HEADER == SIGNATURE_HEADER
