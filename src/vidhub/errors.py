"""The vidhub exception tree.

Every error raised on purpose derives from :class:`VidhubError` and carries the HTTP status
and the OpenVidu JSON-RPC code it maps to; the HTTP middleware and the RPC dispatcher each
translate it once::

    VidhubError                       500 / 999 (never shown to clients as a trace)
    ├── BadRequest                    400  caller sent malformed or invalid input
    │   └── PayloadTooLarge           413
    ├── Unauthorized                  401  missing or wrong credentials
    ├── NotFound                      404
    │   ├── SessionNotFound
    │   └── ConnectionNotFound
    ├── Conflict                      409
    │   └── SessionExists
    ├── NotAcceptable                 406
    ├── MethodNotAllowed              405
    ├── Unprocessable                 422  well-formed but out of range (recording properties)
    ├── NotImplementedFeature         501  e.g. recordings while recording is disabled
    ├── Overloaded                    503  with Retry-After
    │   └── StoreUnavailable               the database cannot be used
    ├── TooManyRequests               429  a configured cap is reached
    └── TokenInvalid                  401 / 102 (RPC)

``empty_body`` tells the REST edge to answer with no body, as OpenVidu does for many codes.
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Conflict",
    "ConnectionNotFound",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "NotImplementedFeature",
    "Overloaded",
    "PayloadTooLarge",
    "SessionExists",
    "SessionNotFound",
    "StoreUnavailable",
    "TokenInvalid",
    "TooManyRequests",
    "Unauthorized",
    "Unprocessable",
    "VidhubError",
]


class VidhubError(Exception):
    """Base of every deliberate vidhub error."""

    http_status: int = 500
    rpc_code: int = 999
    #: When true the REST edge answers with an empty body (OpenVidu does this for 404/409/406...).
    empty_body: bool = False

    def __init__(self, message: str = "", *, empty_body: bool | None = None) -> None:
        super().__init__(message)
        self.message = message
        if empty_body is not None:
            self.empty_body = empty_body


class BadRequest(VidhubError):
    """The caller's input is malformed or fails validation."""

    http_status = 400
    rpc_code = 999  # GENERIC


class PayloadTooLarge(BadRequest):
    """The request body or message exceeds the configured limit."""

    http_status = 413


class Unauthorized(VidhubError):
    """Missing or wrong credentials."""

    http_status = 401
    rpc_code = 401  # USER_UNAUTHORIZED


class NotFound(VidhubError):
    """The addressed resource does not exist."""

    http_status = 404
    rpc_code = 999
    empty_body = True


class SessionNotFound(NotFound):
    """No session with that id."""

    rpc_code = 202  # ROOM_NOT_FOUND


class ConnectionNotFound(NotFound):
    """No connection with that id in the session."""

    rpc_code = 102  # USER_NOT_FOUND


class Conflict(VidhubError):
    """The request conflicts with the current state."""

    http_status = 409
    rpc_code = 999
    empty_body = True


class SessionExists(Conflict):
    """A session with the requested ``customSessionId`` already exists."""


class NotAcceptable(VidhubError):
    """The request is understood but the target is not in a state to accept it."""

    http_status = 406
    rpc_code = 999
    empty_body = True


class MethodNotAllowed(VidhubError):
    """The operation is not allowed on this resource."""

    http_status = 405
    empty_body = True


class Unprocessable(VidhubError):
    """Well-formed input with a value out of range (422 with an error JSON)."""

    http_status = 422


class NotImplementedFeature(VidhubError):
    """A feature that is disabled or not offered (e.g. recording)."""

    http_status = 501
    empty_body = True


class Overloaded(VidhubError):
    """The server sheds load; the caller should retry after ``retry_after`` seconds."""

    http_status = 503

    def __init__(self, message: str = "Server overloaded", retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreUnavailable(Overloaded):
    """The state store cannot be used (a damaged or unreadable file, a full disk); the
    message names the file and what to do."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message, retry_after)


class TooManyRequests(VidhubError):
    """A configured cap (sessions, connections per session, messages per second) is reached."""

    http_status = 429
    rpc_code = 999


class TokenInvalid(VidhubError):
    """The token is unknown, already used, or its session is gone."""

    http_status = 401
    rpc_code = 401  # USER_UNAUTHORIZED: what OpenVidu answers joinRoom with for a bad token
