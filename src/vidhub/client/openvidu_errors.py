"""The OpenVidu SDK's errors: pyopenvidu 0.2.1's exception classes and, per operation, the
table from an HTTP status to the exception raised (and whether the local object becomes
invalid), as pyopenvidu raises them. Shared by both transports through
:mod:`vidhub.client.openvidu_model`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = [
    "OpenViduConnectionDoesNotExistsError",
    "OpenViduConnectionError",
    "OpenViduError",
    "OpenViduSessionDoesNotExistsError",
    "OpenViduSessionError",
    "OpenViduSessionExistsError",
    "OpenViduStreamDoesNotExistsError",
    "OpenViduStreamError",
    "ServerAnswer",
    "check",
    "server_message",
]


# -- exceptions (pyopenvidu 0.2.1's names and hierarchy) ------------------------------------
class OpenViduError(Exception):
    """Base of every error the SDK raises on purpose.

    pyopenvidu derives this from ``BaseException``; here it is an ``Exception`` so that
    ``except Exception`` handlers see it. ``except OpenViduError`` works the same in both.
    """


class OpenViduSessionError(OpenViduError):
    """A problem with a session."""


class OpenViduSessionDoesNotExistsError(OpenViduSessionError):
    """The session does not exist (any more) on the server."""


class OpenViduSessionExistsError(OpenViduSessionError):
    """``create_session`` with a ``custom_session_id`` that is taken (HTTP 409)."""


class OpenViduConnectionError(OpenViduSessionError):
    """A problem with a connection."""


class OpenViduConnectionDoesNotExistsError(OpenViduConnectionError):
    """The connection does not exist, or (signals) is not active."""


class OpenViduStreamError(OpenViduConnectionError):
    """A problem with a published stream."""


class OpenViduStreamDoesNotExistsError(OpenViduStreamError):
    """The stream does not exist."""


def _value_error() -> BaseException:
    return ValueError()


def _ipcam_stream_error() -> BaseException:
    return OpenViduStreamError("You cannot directly delete the stream of an IPCAM participant.")


#: status -> (exception factory, whether the local object becomes invalid)
ErrorTable = Mapping[int, tuple[Any, bool]]

CREATE_SESSION: ErrorTable = {409: (OpenViduSessionExistsError, False), 400: (_value_error, False)}
FETCH_SESSION: ErrorTable = {404: (OpenViduSessionDoesNotExistsError, True)}
CLOSE_SESSION: ErrorTable = {404: (OpenViduSessionDoesNotExistsError, True)}
SIGNAL: ErrorTable = {
    404: (OpenViduSessionDoesNotExistsError, True),
    400: (_value_error, False),
    406: (OpenViduConnectionDoesNotExistsError, True),
}
CREATE_CONNECTION: ErrorTable = {
    404: (OpenViduSessionDoesNotExistsError, True),
    400: (_value_error, False),
}
FETCH_CONNECTION: ErrorTable = {
    404: (OpenViduConnectionDoesNotExistsError, True),
    400: (OpenViduSessionDoesNotExistsError, True),
}
DISCONNECT: ErrorTable = FETCH_CONNECTION
UPDATE_CONNECTION: ErrorTable = {
    404: (OpenViduConnectionDoesNotExistsError, False),
    400: (_value_error, False),
}
NO_ERRORS: ErrorTable = {}
UNPUBLISH: ErrorTable = {
    404: (OpenViduStreamDoesNotExistsError, False),
    400: (OpenViduSessionDoesNotExistsError, False),
    405: (_ipcam_stream_error, False),
}


class Validity:
    """Anything :func:`check` may mark invalid."""

    is_valid: bool


class ServerAnswer(Exception):
    """The error reply behind an exception :func:`check` raises (its ``__cause__``).

    pyopenvidu's exceptions carry no status; a proxy that passes errors on (the tutorial
    app server) reads ``status`` and the server's ``message`` (None when it sent none) here.
    """

    def __init__(self, status: int, message: str | None) -> None:
        super().__init__(f"{status}: {message}" if message else str(status))
        self.status = status
        self.message = message


def server_message(content: bytes) -> str | None:
    """The ``message`` field of an OpenVidu error body, or None."""
    try:
        data = json.loads(content)
    except ValueError:
        return None
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) else None


def check(
    status: int, table: ErrorTable, target: Validity | None = None, content: bytes = b""
) -> None:
    """Raise the error ``table`` assigns to ``status``; invalidate ``target`` where flagged.

    The error is raised ``from`` a :class:`ServerAnswer` holding the status and the message
    in ``content``. Statuses absent from the table are left to the transport
    (``raise_for_status``).
    """
    entry = table.get(status)
    if entry is None:
        return
    factory, invalidates = entry
    if invalidates and target is not None:
        target.is_valid = False
    raise factory() from ServerAnswer(status, server_message(content))
