"""The I/O-free core of the OpenVidu REST SDK: state and operations (bodies and errors beside).

Theory of operation: every operation that talks to the server is written once here, as a
generator (:data:`Op`) that yields each :class:`Request` it needs and receives the
:class:`Reply`; it checks the reply against its error table (:func:`ok`, which raises the
pyopenvidu 0.2.1 exception for that operation and status and marks the local object invalid
where pyopenvidu does), updates the local state and returns the result. No socket, no event
loop. :mod:`vidhub.client.openvidu` (``requests``) and :mod:`vidhub.client.openvidu_async`
(``aiohttp``) are thin transports: each has one ``run(op)`` that drives an operation, and
classes that subclass the ``*State`` classes here with one-line public methods.

Only the documented OpenVidu 2.x REST API is used (openvidu.md §1), so the SDK works against a
real OpenVidu server as well as vidhub.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from vidhub.client.openvidu_bodies import (
    drop_none,
    ipcam_body,
    seg,
    session_body,
    signal_body,
    webrtc_body,
)
from vidhub.client.openvidu_errors import (
    CLOSE_SESSION,
    CREATE_CONNECTION,
    CREATE_SESSION,
    DISCONNECT,
    FETCH_CONNECTION,
    FETCH_SESSION,
    NO_ERRORS,
    SIGNAL,
    UNPUBLISH,
    UPDATE_CONNECTION,
    ErrorTable,
    OpenViduConnectionDoesNotExistsError,
    OpenViduError,
    OpenViduSessionDoesNotExistsError,
    ServerAnswer,
    Validity,
    check,
    server_message,
)

__all__ = [
    "ConnectionState",
    "Op",
    "OpenViduState",
    "PublisherState",
    "Reply",
    "Request",
    "SessionState",
    "SubscriberState",
    "make_connection",
    "ok",
]


# -- the sans-I/O exchange ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Request:
    """One REST call: method, path below the API base URL, JSON body (None: no body)."""

    method: str
    path: str
    body: Any = None


class Reply(Protocol):
    """What a transport hands back: a finished response (``requests.Response`` is one)."""

    @property
    def status_code(self) -> int: ...

    @property
    def content(self) -> bytes: ...

    def json(self) -> Any: ...

    def raise_for_status(self) -> None:
        """Raise the transport's own HTTP error for a status of 400 or more."""


T = TypeVar("T")
#: An operation: yields requests, receives their replies, returns its result.
Op = Generator[Request, Reply, T]


def ok(reply: Reply, table: ErrorTable, target: Validity | None = None) -> Reply:
    """``reply`` if it succeeded; else the table's error (see :func:`check`), else the
    transport's own HTTP error, unmodified but for its ``__cause__``: the :class:`ServerAnswer`.
    """
    status = reply.status_code
    check(status, table, target, reply.content)
    if status >= 400:
        answer = ServerAnswer(status, server_message(reply.content))
        try:
            reply.raise_for_status()
        except Exception as exc:  # whatever the transport raises: re-raised as is
            raise exc from answer
    return reply


def _ts(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


# -- state and operations ---------------------------------------------------------------------
class _Bound:
    """An object that reaches the server through its transport ``_http`` (opaque here; each
    transport module narrows the type)."""

    _http: Any


class PublisherState(_Bound):
    """A published stream: ``stream_id``, ``created_at`` (aware UTC), ``media_options``."""

    def __init__(self, http: Any, session_id: str, data: Mapping[str, Any]) -> None:
        self._http = http
        self.session_id = session_id
        self.stream_id: str = data["streamId"]
        self.created_at = _ts(data["createdAt"])
        self.media_options: dict[str, Any] | None = data.get("mediaOptions")

    def _force_unpublish(self) -> Op[None]:
        """``DELETE /sessions/{id}/stream/{streamId}``.

        Raises:
            OpenViduStreamDoesNotExistsError: 404.
            OpenViduSessionDoesNotExistsError: 400 (no such session).
            OpenViduStreamError: 405 (an IPCAM stream).
        """
        path = f"sessions/{seg(self.session_id)}/stream/{seg(self.stream_id)}"
        ok((yield Request("DELETE", path)), UNPUBLISH)

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


class ConnectionState(Validity, _Bound):
    """What the server reported about one connection (Connection JSON, openvidu.md §1.4).

    Attributes common to both types: ``id``, ``type`` (``WEBRTC``/``IPCAM``), ``session_id``,
    ``created_at``, ``active_at`` (``None`` while pending), ``platform``, ``server_data``,
    ``publishers``, ``subscribers``, ``is_valid``. WEBRTC adds ``token``, ``client_data``,
    ``role``, ``kurento_options``, ``record``; IPCAM adds ``rtsp_uri``, ``adaptive_bitrate``,
    ``only_play_with_subscribers``, ``network_cache``.
    """

    #: the classes a transport builds publishers and subscribers from
    _publisher_class: ClassVar[type[PublisherState]] = PublisherState
    _subscriber_class: ClassVar[type[SubscriberState]] = SubscriberState
    publishers: list[Any]
    subscribers: list[Any]

    def __init__(self, http: Any, data: Mapping[str, Any]) -> None:
        self._http = http
        self._update_from_data(data)

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
        self.publishers = [
            self._publisher_class(self._http, self.session_id, p) for p in data["publishers"] or ()
        ]
        self.subscribers = [
            self._subscriber_class(self.session_id, s) for s in data["subscribers"] or ()
        ]
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

    def _path(self) -> str:
        return f"sessions/{seg(self.session_id)}/connection/{seg(self.id)}"

    def _check_valid(self) -> None:
        if not self.is_valid:
            raise OpenViduConnectionDoesNotExistsError()

    def _fetch(self) -> Op[bool]:
        """``GET`` the connection; whether anything changed.

        Raises:
            OpenViduConnectionDoesNotExistsError: the connection is gone (404).
            OpenViduSessionDoesNotExistsError: the session is gone (400).
        """
        self._check_valid()
        data = ok((yield Request("GET", self._path())), FETCH_CONNECTION, self).json()
        changed: bool = data != self._last
        if changed:
            self._update_from_data(data)
        return changed

    def _force_disconnect(self) -> Op[None]:
        """``DELETE`` the connection (evict, or revoke a pending token); invalidates."""
        self._check_valid()
        ok((yield Request("DELETE", self._path())), DISCONNECT, self)
        self.is_valid = False

    def _update(self, role: str | None = None, record: bool | None = None) -> Op[None]:
        """``PATCH`` role and/or record (OpenVidu Pro and vidhub; CE answers 405)."""
        self._check_valid()
        body = drop_none({"role": role, "record": record})
        self._update_from_data(
            ok((yield Request("PATCH", self._path(), body)), UPDATE_CONNECTION).json()
        )

    def _signal(self, type_: str | None = None, data: str | None = None) -> Op[None]:
        """``POST /signal`` to this connection only.

        Raises:
            OpenViduConnectionDoesNotExistsError: not an active connection (406).
        """
        self._check_valid()
        body = signal_body(self.session_id, type_, data, [self.id])
        ok((yield Request("POST", "signal", body)), SIGNAL, self)

    def _force_unpublish_all_streams(self) -> Op[None]:
        """Force-unpublish every stream this connection publishes (as last fetched)."""
        self._check_valid()
        for pub in self.publishers:
            yield from pub._force_unpublish()

    @property
    def publisher_count(self) -> int:
        return len(self.publishers)

    @property
    def subscriber_count(self) -> int:
        return len(self.subscribers)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.type} of {self.session_id}>"


C = TypeVar("C", bound=ConnectionState)
WebrtcT = TypeVar("WebrtcT", bound=ConnectionState)
IpcamT = TypeVar("IpcamT", bound=ConnectionState)


def make_connection(classes: Mapping[str, type[C]], http: Any, data: Mapping[str, Any]) -> C:
    """A connection object of the class ``classes`` maps its ``type`` to.

    Raises:
        RuntimeError: a type the SDK does not know.
    """
    cls = classes.get(data["type"])
    if cls is None:
        raise RuntimeError("Unknown connection type")
    return cls(http, data)


def _post_connection(
    session_id: str, body: Mapping[str, Any], target: Validity | None
) -> Op[Mapping[str, Any]]:
    reply = yield Request("POST", f"sessions/{seg(session_id)}/connection", dict(body))
    if reply.status_code == 500:
        raise OpenViduError(reply.content) from ServerAnswer(500, server_message(reply.content))
    data: Mapping[str, Any] = ok(reply, CREATE_CONNECTION, target).json()
    return data


class SessionState(Validity, _Bound, Generic[WebrtcT, IpcamT]):
    """What the server reported about one session (Session JSON, openvidu.md §1.3).

    Attributes: ``id``, ``created_at`` (aware UTC), ``is_being_recorded``, ``media_mode``,
    ``connections`` (the active ones, plus any created through this object since the last
    fetch), ``is_valid``.
    """

    #: the classes a transport builds WEBRTC and IPCAM connections from
    _webrtc_class: type[WebrtcT]
    _ipcam_class: type[IpcamT]
    connections: list[Any]

    def __init__(self, http: Any, data: Mapping[str, Any]) -> None:
        self._http = http
        self._update_from_data(data)

    def _update_from_data(self, data: Mapping[str, Any]) -> None:
        self.id: str = data["id"]
        self.created_at = _ts(data["createdAt"])
        self.is_being_recorded: bool = data["recording"]
        self.media_mode: str = data["mediaMode"]
        self.connections = [
            make_connection(self._connection_classes(), self._http, c)
            for c in data["connections"]["content"]
        ]
        self.is_valid = True
        self._last = dict(data)

    @classmethod
    def _connection_classes(cls) -> dict[str, type[WebrtcT] | type[IpcamT]]:
        return {"WEBRTC": cls._webrtc_class, "IPCAM": cls._ipcam_class}

    def get_connection(self, connection_id: str) -> Any:
        """The local connection object with that id (no request).

        Raises:
            OpenViduConnectionDoesNotExistsError: not among ``connections``.
        """
        for conn in self.connections:
            if conn.id == connection_id:
                return conn
        raise OpenViduConnectionDoesNotExistsError()

    def _fetch(self) -> Op[bool]:
        """``GET /sessions/{id}``; whether anything changed.

        Raises:
            OpenViduSessionDoesNotExistsError: 404 (this object becomes invalid).
        """
        reply = yield Request("GET", f"sessions/{seg(self.id)}")
        data = ok(reply, FETCH_SESSION, self).json()
        changed: bool = data != self._last
        if changed:
            self._update_from_data(data)
        return changed

    def _close(self) -> Op[None]:
        """``DELETE /sessions/{id}``: evict everyone; invalidates this object."""
        ok((yield Request("DELETE", f"sessions/{seg(self.id)}")), CLOSE_SESSION, self)
        self.is_valid = False

    def _signal(
        self, type_: str | None = None, data: str | None = None, to: list[Any] | None = None
    ) -> Op[None]:
        """``POST /signal`` to the connections ``to`` (default: everyone).

        Raises:
            OpenViduSessionDoesNotExistsError: no session (404).
            OpenViduConnectionDoesNotExistsError: nobody connected or a recipient not active
                (406).
            ValueError: the server rejected the body (400).
        """
        if not self.is_valid:
            raise OpenViduSessionDoesNotExistsError()
        body = signal_body(self.id, type_, data, [c.id for c in to] if to else None)
        ok((yield Request("POST", "signal", body)), SIGNAL, self)

    def _create(self, body: dict[str, Any], cls: type[C]) -> Op[C]:
        """``POST /sessions/{id}/connection``; the new connection joins ``connections``."""
        if not self.is_valid:
            raise OpenViduSessionDoesNotExistsError()
        conn = cls(self._http, (yield from _post_connection(self.id, body, self)))
        self.connections.append(conn)
        return conn

    def _create_webrtc_connection(
        self,
        role: str = "PUBLISHER",
        data: str | None = None,
        video_max_recv_bandwidth: int | None = None,
        video_min_recv_bandwidth: int | None = None,
        video_max_send_bandwidth: int | None = None,
        video_min_send_bandwidth: int | None = None,
        allowed_filters: list[str] | None = None,
        *,
        record: bool | None = None,
    ) -> Op[WebrtcT]:
        """``POST /sessions/{id}/connection`` for a user; the result carries ``token``.

        Raises:
            ValueError: unknown role, or the server rejected the body (400).
            OpenViduSessionDoesNotExistsError: the session is gone (404).
        """
        kurento = {
            "videoMaxRecvBandwidth": video_max_recv_bandwidth,
            "videoMinRecvBandwidth": video_min_recv_bandwidth,
            "videoMaxSendBandwidth": video_max_send_bandwidth,
            "videoMinSendBandwidth": video_min_send_bandwidth,
            "allowedFilters": allowed_filters,
        }
        body = webrtc_body(role, data, kurento, record)
        return (yield from self._create(body, self._webrtc_class))

    def _create_ipcam_connection(
        self,
        rtsp_uri: str,
        data: str | None = None,
        adaptive_bitrate: bool | None = None,
        only_play_with_subscribers: bool | None = None,
        network_cache: int | None = None,
    ) -> Op[IpcamT]:
        """``POST /sessions/{id}/connection`` for an IP camera.

        Raises:
            ValueError: the server rejected the body (400).
            OpenViduError: the server failed to attach the camera (500).
        """
        body = ipcam_body(
            rtsp_uri, data, adaptive_bitrate, only_play_with_subscribers, network_cache
        )
        return (yield from self._create(body, self._ipcam_class))

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id}>"


S = TypeVar("S", bound=SessionState[Any, Any])


class OpenViduState(Generic[S, C]):
    """The sessions a client knows, as of its last fetch, and the server-wide operations.

    ``C`` is the transport's connection base class (what ``create_connection`` returns).
    """

    #: the class a transport builds sessions from
    _session_class: type[S]

    def __init__(self, http: Any) -> None:
        self._http = http
        self._sessions: dict[str, S] = {}
        self._last: Any = None

    def _fetch(self) -> Op[bool]:
        """Refresh ``sessions`` from ``GET /sessions``; returns whether anything changed."""
        content = ok((yield Request("GET", "sessions")), NO_ERRORS).json()["content"]
        changed: bool = content != self._last
        self._last = content
        if changed:
            self._sessions = {d["id"]: self._session_class(self._http, d) for d in content}
        return changed

    def _create_session(
        self,
        custom_session_id: str | None = None,
        media_mode: str | None = None,
        *,
        properties: Mapping[str, Any] | None = None,
    ) -> Op[S]:
        """``POST /sessions``.

        ``properties`` (a vidhub extension) are more REST body fields, sent as given; the
        named arguments take precedence.

        Raises:
            OpenViduSessionExistsError: ``custom_session_id`` is taken (409).
            ValueError: bad ``media_mode`` or the server rejected the body (400).
        """
        body = {**(properties or {}), **session_body(custom_session_id, media_mode)}
        reply = ok((yield Request("POST", "sessions", body)), CREATE_SESSION)
        session = self._session_class(self._http, reply.json())
        self._sessions[session.id] = session
        return session

    def _create_connection(self, session_id: str, properties: Mapping[str, Any]) -> Op[C]:
        """``POST /sessions/{session_id}/connection`` with ``properties`` as the body, for a
        session this client need not know (a vidhub extension, for proxies); a locally known
        session gains the connection.

        Raises:
            OpenViduSessionDoesNotExistsError: no such session (404).
            ValueError: the server rejected the body (400).
            OpenViduError: the server failed to attach an IP camera (500).
        """
        known = self._sessions.get(session_id)
        data = yield from _post_connection(session_id, properties, known)
        classes = self._session_class._connection_classes()
        conn = cast(C, make_connection(classes, self._http, data))
        if known is not None:
            known.connections.append(conn)
        return conn

    def _get_config(self) -> Op[dict[str, Any]]:
        """``GET /config``: the server's configuration JSON, as is."""
        config: dict[str, Any] = ok((yield Request("GET", "config")), NO_ERRORS).json()
        return config

    def get_session(self, session_id: str) -> S:
        """The locally known, valid session with that id (no request).

        Raises:
            OpenViduSessionDoesNotExistsError: unknown since the last fetch, or closed.
        """
        s = self._sessions.get(session_id)
        if s is None or not s.is_valid:
            raise OpenViduSessionDoesNotExistsError()
        return s

    @property
    def sessions(self) -> list[S]:
        """The valid sessions known since the last fetch."""
        return [s for s in self._sessions.values() if s.is_valid]

    @property
    def session_count(self) -> int:
        return len(self.sessions)
