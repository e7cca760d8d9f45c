"""Webhook signatures: sign and verify vidhub webhook deliveries (pure, no I/O).

Scheme (``v1``), chosen so a receiver can authenticate a delivery and reject replays:

1. The sender takes the exact request body bytes ``body`` and the current Unix time in whole
   seconds ``ts``.
2. It computes ``HMAC-SHA256(key, f"{ts}.".encode() + body)`` and writes the lower-case hex
   digest ``sig``.
3. It sends two headers with the request::

       X-Vidhub-Timestamp: <ts>
       X-Vidhub-Signature: v1=<sig>

   The signature header may carry several comma-separated ``v1=...`` entries (for key
   rotation); one matching entry is enough.

A receiver recomputes the HMAC over the *raw* body it received (before any JSON parsing),
compares in constant time, and rejects a timestamp further than ``tolerance_s`` (default 300 s)
from its own clock, so a captured request cannot be replayed later. The key is
``VIDHUB_WEBHOOK_SIGNING_KEY``, by default the server secret (``OPENVIDU_SECRET``).

The body itself is OpenVidu's webhook JSON (openvidu.md §4): the event's fields with
``"event": <name>`` last.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from vidhub.errors import VidhubError

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SCHEME",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookSignatureError",
    "compute_signature",
    "signature_headers",
    "verify_signature",
]

TIMESTAMP_HEADER = "X-Vidhub-Timestamp"
SIGNATURE_HEADER = "X-Vidhub-Signature"
SCHEME = "v1"
DEFAULT_TOLERANCE_S = 300


class WebhookSignatureError(VidhubError):
    """A webhook delivery is unsigned, badly signed, or outside the time tolerance."""

    http_status = 401


def _as_bytes(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def compute_signature(key: str | bytes, timestamp: int, body: bytes | str) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}."`` followed by ``body``.

    Args:
        key: the signing key (``str`` is UTF-8 encoded).
        timestamp: Unix time in whole seconds.
        body: the exact request body (``str`` is UTF-8 encoded).
    """
    mac = hmac.new(_as_bytes(key), f"{timestamp}.".encode(), hashlib.sha256)
    mac.update(_as_bytes(body))
    return mac.hexdigest()


def signature_headers(key: str | bytes, timestamp: int, body: bytes | str) -> dict[str, str]:
    """The two headers that sign ``body`` at ``timestamp`` (seconds)."""
    sig = compute_signature(key, timestamp, body)
    return {TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: f"{SCHEME}={sig}"}


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


def verify_signature(
    key: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> int:
    """Check that ``body`` was signed with ``key`` within ``tolerance_s`` of ``now_s``.

    Header names are matched case-insensitively.

    Args:
        key: the shared signing key.
        headers: the request headers.
        body: the raw request body, exactly as received.
        now_s: the receiver's Unix time in seconds.
        tolerance_s: the largest accepted distance between the timestamp and ``now_s``.

    Returns:
        The signed timestamp (seconds).

    Raises:
        WebhookSignatureError: a header is missing or malformed, the timestamp is outside the
            tolerance, or no ``v1`` signature matches.
    """
    ts_raw = _header(headers, TIMESTAMP_HEADER)
    sig_raw = _header(headers, SIGNATURE_HEADER)
    if ts_raw is None or sig_raw is None:
        raise WebhookSignatureError("missing webhook signature headers")
    ts_raw = ts_raw.strip()
    if not ts_raw.isascii() or not ts_raw.isdigit() or len(ts_raw) > 15:
        raise WebhookSignatureError("malformed webhook timestamp")
    ts = int(ts_raw)
    if abs(now_s - ts) > tolerance_s:
        raise WebhookSignatureError("webhook timestamp outside the tolerance window")
    candidates = []
    for part in sig_raw.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme == SCHEME and value:
            candidates.append(value.strip().lower())
    if not candidates:
        raise WebhookSignatureError("no v1 webhook signature")
    expected = compute_signature(key, ts, body)
    # compare every candidate so timing does not depend on which one matches
    ok = False
    for cand in candidates:
        ok |= hmac.compare_digest(expected.encode(), cand.encode("ascii", "replace"))
    if not ok:
        raise WebhookSignatureError("webhook signature mismatch")
    return ts
