"""The I/O-free half of the OpenVidu REST SDK: URLs, request bodies, error tables, state.

Theory of operation: :mod:`vidhub.client.openvidu` (``requests``) and
:mod:`vidhub.client.openvidu_async` (``aiohttp``) are thin transports around this module. Each
operation builds its request body here, sends it, then hands the status to :func:`check`,
which raises the pyopenvidu 0.2.1 exception for that operation and status (and marks the
local object invalid where pyopenvidu does). The ``*State`` classes hold what the server last
reported and rebuild themselves from its JSON; the transports subclass them to add I/O.

Only the documented OpenVidu 2.x REST API is used (openvidu.md §1), so the SDK works against a
real OpenVidu server as well as vidhub.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "OpenViduConnectionDoesNotExistsError",
    "OpenViduConnectionError",
    "OpenViduError",
    "OpenViduSessionDoesNotExistsError",
    "OpenViduSessionError",
    "OpenViduSessionExistsError",
    "OpenViduStreamDoesNotExistsError",
    "OpenViduStreamError",
    "api_base",
    "check",
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
UNPUBLISH: ErrorTable = {
    404: (OpenViduStreamDoesNotExistsError, False),
    400: (OpenViduSessionDoesNotExistsError, False),
    405: (_ipcam_stream_error, False),
}


class _Validity:
    is_valid: bool


def check(status: int, table: ErrorTable, target: _Validity | None = None) -> None:
    """Raise the error ``table`` assigns to ``status``; invalidate ``target`` where flagged.

    Statuses absent from the table are left to the transport (``raise_for_status``).
    """
    entry = table.get(status)
    if entry is None:
        return
    factory, invalidates = entry
    if invalidates and target is not None:
        target.is_valid = False
    raise factory()


# -- URLs and bodies --------------------------------------------------------------------------
def api_base(url: str) -> str:
    """The REST base URL with its trailing slash, from a server root or an API URL.

    ``http://h:4443``, ``http://h:4443/``, ``http://h:4443/openvidu`` and
    ``http://h:4443/openvidu/api[/]`` all give ``http://h:4443/openvidu/api/``; a root with a
    path prefix (a reverse proxy) keeps it. Query and fragment are dropped.

    Raises:
        ValueError: not an ``http`` or ``https`` URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/openvidu"):
        path += "/api"
    elif not path.endswith("/openvidu/api"):
        path += "/openvidu/api"
    return urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


def seg(value: str) -> str:
    """One URL path segment, escaped."""
    return quote(value, safe="")


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def session_body(custom_session_id: str | None, media_mode: str | None) -> dict[str, Any]:
    """POST /sessions body, as pyopenvidu sends it.

    Raises:
        ValueError: ``media_mode`` is neither ROUTED nor RELAYED.
    """
    if media_mode not in ("ROUTED", "RELAYED", None):
        raise ValueError(f"media_mode must be any of ROUTED or RELAYED, not {media_mode}")
    return drop_none({"mediaMode": media_mode, "customSessionId": custom_session_id})


def webrtc_body(
    role: str,
    data: str | None,
    kurento: Mapping[str, Any],
    record: bool | None = None,
) -> dict[str, Any]:
    """POST /sessions/{id}/connection body for a WEBRTC connection.

    Raises:
        ValueError: unknown role.
    """
    if role not in ("SUBSCRIBER", "PUBLISHER", "MODERATOR"):
        raise ValueError(f"Role must be any of SUBSCRIBER, PUBLISHER or MODERATOR, not {role}")
    body: dict[str, Any] = {"type": "WEBRTC", "role": role}
    if data:
        body["data"] = data
    if record is not None:
        body["record"] = record
    options = drop_none(dict(kurento))
    if options:
        body["kurentoOptions"] = options
    return body


def ipcam_body(
    rtsp_uri: str,
    data: str | None,
    adaptive_bitrate: bool | None,
    only_play_with_subscribers: bool | None,
    network_cache: int | None,
) -> dict[str, Any]:
    """POST /sessions/{id}/connection body for an IPCAM connection."""
    return drop_none(
        {
            "type": "IPCAM",
            "data": data,
            "rtspUri": rtsp_uri,
            "adaptativeBitrate": adaptive_bitrate,
            "onlyPlayWithSubscribers": only_play_with_subscribers,
            "networkCache": network_cache,
        }
    )


def signal_body(
    session_id: str, type_: str | None, data: str | None, to: list[str] | None
) -> dict[str, Any]:
    """POST /signal body; ``to`` omitted means everyone."""
    return drop_none({"session": session_id, "to": to or None, "type": type_, "data": data})


def _ts(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


# -- state ------------------------------------------------------------------------------------
class PublisherState:
    """A published stream: ``stream_id``, ``created_at`` (aware UTC), ``media_options``."""

    def __init__(self, session_id: str, data: Mapping[str, Any]) -> None:
        self.session_id = session_id
        self.stream_id: str = data["streamId"]
        self.created_at = _ts(data["createdAt"])
        self.media_options: dict[str, Any] | None = data.get("mediaOptions")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.stream_id}>"


class SubscriberState:
    """A subscription: the publisher's ``stream_id`` and ``created_at``."""

    def __init__(self, session_id: str, data: Mapping[str, Any]) -> None:
        self.session_id = session_id
        self.stream_id: str = data["streamId"]
        self.created_at = _ts(data["createdAt"])

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.stream_id}>"


class ConnectionState(_Validity):
    """What the server reported about one connection (Connection JSON, openvidu.md §1.4).

    Attributes common to both types: ``id``, ``type`` (``WEBRTC``/``IPCAM``), ``session_id``,
    ``created_at``, ``active_at`` (``None`` while pending), ``platform``, ``server_data``,
    ``publishers``, ``subscribers``, ``is_valid``. WEBRTC adds ``token``, ``client_data``,
    ``role``, ``kurento_options``, ``record``; IPCAM adds ``rtsp_uri``, ``adaptive_bitrate``,
    ``only_play_with_subscribers``, ``network_cache``.
    """

    publishers: list[Any]
    subscribers: list[Any]

    def _make_publisher(self, data: Mapping[str, Any]) -> Any:
        return PublisherState(self.session_id, data)

    def _make_subscriber(self, data: Mapping[str, Any]) -> Any:
        return SubscriberState(self.session_id, data)

    def _update_from_data(self, data: Mapping[str, Any]) -> None:
        self.id: str = data["id"]
        self.type: str = data["type"]
        self.session_id: str = data["sessionId"]
        self.created_at = _ts(data["createdAt"])
        active_at = data["activeAt"]
        self.active_at = _ts(active_at) if active_at else None
        self.platform: str | None = data["platform"]
        self.server_data: str | None = data.get("serverData")
        self.status: str | None = data.get("status")
        self.publishers = [self._make_publisher(p) for p in data["publishers"] or ()]
        self.subscribers = [self._make_subscriber(s) for s in data["subscribers"] or ()]
        if self.type == "WEBRTC":
            self.token: str | None = data.get("token")
            self.client_data: str | None = data.get("clientData")
            self.role: str = data["role"]
            self.kurento_options: dict[str, Any] | None = data["kurentoOptions"]
            self.record: bool | None = data.get("record")
        elif self.type == "IPCAM":
            self.rtsp_uri: str = data["rtspUri"]
            self.adaptive_bitrate: bool = data["adaptativeBitrate"]
            self.only_play_with_subscribers: bool = data["onlyPlayWithSubscribers"]
            self.network_cache: int = data["networkCache"]
        else:
            raise RuntimeError("Unknown connection type")
        self.is_valid = True
        self._last = dict(data)

    @property
    def publisher_count(self) -> int:
        return len(self.publishers)

    @property
    def subscriber_count(self) -> int:
        return len(self.subscribers)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.type} of {self.session_id}>"


class SessionState(_Validity):
    """What the server reported about one session (Session JSON, openvidu.md §1.3).

    Attributes: ``id``, ``created_at`` (aware UTC), ``is_being_recorded``, ``media_mode``,
    ``connections`` (the active ones, plus any created through this object since the last
    fetch), ``is_valid``.
    """

    connections: list[Any]

    def _make_connection(self, data: Mapping[str, Any]) -> Any:
        raise NotImplementedError

    def _update_from_data(self, data: Mapping[str, Any]) -> None:
        self.id: str = data["id"]
        self.created_at = _ts(data["createdAt"])
        self.is_being_recorded: bool = data["recording"]
        self.media_mode: str = data["mediaMode"]
        self.connections = [self._make_connection(c) for c in data["connections"]["content"]]
        self.is_valid = True
        self._last = dict(data)

    def get_connection(self, connection_id: str) -> Any:
        """The local connection object with that id (no request).

        Raises:
            OpenViduConnectionDoesNotExistsError: not among ``connections``.
        """
        for conn in self.connections:
            if conn.id == connection_id:
                return conn
        raise OpenViduConnectionDoesNotExistsError()

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"
