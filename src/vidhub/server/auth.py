"""HTTP Basic authentication for the REST API (user ``OPENVIDUAPP``), constant-time."""

from __future__ import annotations

import base64
import binascii
import hmac

__all__ = ["USER", "check_basic"]

USER = "OPENVIDUAPP"


def check_basic(header: str | None, secret: str) -> bool:
    """True when ``header`` is ``Basic base64(OPENVIDUAPP:<secret>)``.

    The comparison takes the same time whatever the mismatch, so it leaks nothing about the
    secret.
    """
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{USER}:{secret}".encode()
    return hmac.compare_digest(decoded, expected)
