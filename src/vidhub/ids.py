"""Identifiers and tokens in OpenVidu's formats, drawn from a CSPRNG.

``U`` is one of ``[A-Z]`` and ``X`` one of ``[0-9A-Za-z]`` (openvidu.md §1.2). Token ids carry
15 random ``X`` characters after a letter: about 89 bits, unguessable.
"""

from __future__ import annotations

import re
import secrets
import string

__all__ = [
    "CUSTOM_SESSION_ID_RE",
    "connection_id",
    "session_id",
    "stream_id",
    "token_id",
]

_UPPER = string.ascii_uppercase
_ALNUM = string.digits + string.ascii_uppercase + string.ascii_lowercase

CUSTOM_SESSION_ID_RE = re.compile(r"[a-zA-Z0-9_-]+")


def _alnum(n: int) -> str:
    """``n`` uniform characters of ``[0-9A-Za-z]`` from one CSPRNG read (rejection sampling).

    Bytes >= 248 (= 4 * 62) are discarded so ``b % 62`` carries no modulo bias.
    """
    out: list[str] = []
    while len(out) < n:
        for b in secrets.token_bytes(n + 4):
            if b < 248:
                out.append(_ALNUM[b % 62])
                if len(out) == n:
                    break
    return "".join(out)


def _rand(prefix: str, n: int) -> str:
    return prefix + secrets.choice(_UPPER) + _alnum(n)


def session_id() -> str:
    """A generated session id, ``ses_`` + U + 9X."""
    return _rand("ses_", 9)


def connection_id() -> str:
    """A connection id, ``con_`` + U + 9X."""
    return _rand("con_", 9)


def token_id() -> str:
    """A token id, ``tok_`` + U + 15X."""
    return _rand("tok_", 15)


def stream_id(type_of_video: str | None, has_video: bool, connection: str) -> str:
    """A stream id ``str_<CAM|SCR|CUS|IPC|MIC>_<U+3X>_<connectionId>``."""
    kind = (type_of_video or "CAMERA")[:3].upper() if has_video else "MIC"
    return _rand(f"str_{kind}_", 3) + "_" + connection
