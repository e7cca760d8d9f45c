"""Receiving vidhub webhooks in your application: check the signature, then read the event.

The signature scheme is described in :mod:`vidhub.protocol.webhook`. Typical use in an
aiohttp receiver::

    body = await request.read()
    try:
        event = verify_webhook(SECRET, request.headers, body)
    except WebhookSignatureError:
        return web.Response(status=401)
    print(event["event"], event.get("sessionId"))
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from vidhub.protocol import jsoncodec
from vidhub.protocol.webhook import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookSignatureError,
)
from vidhub.protocol.webhook import verify_signature as _verify

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookSignatureError", "verify_webhook"]


def verify_webhook(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes | str,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    *,
    now_s: float | None = None,
) -> dict[str, Any]:
    """Verify a webhook delivery and return its decoded OpenVidu event.

    Args:
        secret: the signing key (``VIDHUB_WEBHOOK_SIGNING_KEY``, by default the server secret).
        headers: the request headers (any mapping; names are matched case-insensitively).
        body: the raw request body, exactly as received.
        tolerance_s: how far (seconds) the signed timestamp may be from ``now_s``.
        now_s: the current Unix time; defaults to the system clock.

    Returns:
        The event JSON object, e.g. ``{"sessionId": ..., "timestamp": ..., "event": ...}``.

    Raises:
        WebhookSignatureError: missing or bad signature, stale timestamp, or a body that is
            not a JSON object.
    """
    now = time.time() if now_s is None else now_s
    _verify(secret, headers, body, now, tolerance_s)
    try:
        event = jsoncodec.loads(body)
    except jsoncodec.JSONDecodeError as exc:
        raise WebhookSignatureError("webhook body is not JSON") from exc
    if not isinstance(event, dict):
        raise WebhookSignatureError("webhook body is not a JSON object")
    return event
