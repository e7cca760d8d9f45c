"""Identifiers and tokens in OpenVidu's formats, drawn from a CSPRNG.

``U`` is one of ``[A-Z]`` and ``X`` one of ``[0-9A-Za-z]`` (openvidu.md §1.2). Token ids carry
15 random ``X`` characters after a letter: about 89 bits, unguessable.
"""

from __future__ import annotations

import re
import secrets
import string
from typing import NewType

__all__ = [
    "CUSTOM_SESSION_ID_RE",
    "ConnectionId",
    "SessionId",
    "connection_id",
    "connection_of_stream",
    "session_id",
    "stream_id",
    "token_id",
]

#: A session's id (generated ``ses_...`` or the client's ``customSessionId``).
SessionId = NewType("SessionId", str)
#: A connection's id, ``con_...``; also the participant's id in signalling.
ConnectionId = NewType("ConnectionId", str)

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


def session_id() -> SessionId:
    """A generated session id, ``ses_`` + U + 9X."""
    return SessionId(_rand("ses_", 9))


def connection_id() -> ConnectionId:
    """A connection id, ``con_`` + U + 9X."""
    return ConnectionId(_rand("con_", 9))


def token_id() -> str:
    """A token id, ``tok_`` + U + 15X."""
    return _rand("tok_", 15)


def stream_id(type_of_video: str | None, has_video: bool, connection: str) -> str:
    """A stream id ``str_<CAM|SCR|CUS|IPC|MIC>_<U+3X>_<connectionId>``."""
    kind = (type_of_video or "CAMERA")[:3].upper() if has_video else "MIC"
    return _rand(f"str_{kind}_", 3) + "_" + connection


def connection_of_stream(stream_id: str) -> ConnectionId | None:
    """The publisher's connection id inside a stream id (after the last ``_con_``), or
    ``None`` when ``stream_id`` names no connection. The one parser of this format."""
    i = stream_id.rfind("_con_")
    return ConnectionId(stream_id[i + 1 :]) if i >= 0 else None
