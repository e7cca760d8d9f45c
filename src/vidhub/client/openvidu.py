"""OpenVidu REST SDK over ``requests``, with the public API of pyopenvidu 0.2.1.

Usage::

    from vidhub.client import OpenVidu

    ov = OpenVidu("http://127.0.0.1:4443/", "MY_SECRET", timeout=5)
    session = ov.create_session(custom_session_id="demo")
    conn = session.create_webrtc_connection(role="PUBLISHER", data="alice")
    print(conn.token)
    ov.fetch()                      # refresh ov.sessions from the server
    session.close()

The URL may be the server root (``http://host:4443/``) or the API base
(``http://host:4443/openvidu/api/``). Local objects hold what the server last reported;
``fetch()`` refreshes them. Errors are pyopenvidu's exception classes (see
:mod:`vidhub.client.openvidu_model`); other HTTP errors raise ``requests.HTTPError`` and
timeouts ``requests.exceptions.Timeout``, unmodified.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import requests

from vidhub.client import openvidu_model as m
from vidhub.client.openvidu_model import (
    ConnectionState,
    PublisherState,
    SessionState,
    SubscriberState,
)

__all__ = [
    "OpenVidu",
    "OpenViduConnection",
    "OpenViduIPCAMConnection",
    "OpenViduPublisher",
    "OpenViduSession",
    "OpenViduSubscriber",
    "OpenViduWEBRTCConnection",
]

Timeout = float | tuple[float, float] | None


class _Http:
    """A ``requests`` session bound to the API base URL, Basic auth and a timeout."""

    def __init__(
        self, url: str, secret: str, timeout: Timeout, verify: str | bool | None, cert: Any
    ) -> None:
        self.base = m.api_base(url)
        self.timeout = timeout
        self.session = requests.Session()
        self.session.auth = ("OPENVIDUAPP", secret)
        self.session.headers["User-Agent"] = "vidhub-openvidu-sdk"
        if verify is not None:
            self.session.verify = verify
        self.session.cert = cert

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.session.request(method, self.base + path, json=body, timeout=self.timeout)


def _ok(r: requests.Response, table: m.ErrorTable, target: Any = None) -> requests.Response:
    m.check(r.status_code, table, target)
    r.raise_for_status()
    return r


class OpenViduPublisher(PublisherState):
    """A stream published by a connection."""

    def __init__(self, http: _Http, session_id: str, data: Mapping[str, Any]) -> None:
        super().__init__(session_id, data)
        self._http = http

    def force_unpublish(self) -> None:
        """``DELETE /sessions/{id}/stream/{streamId}``.

        Raises:
            OpenViduStreamDoesNotExistsError: 404.
            OpenViduSessionDoesNotExistsError: 400 (no such session).
            OpenViduStreamError: 405 (an IPCAM stream).
        """
        r = self._http.call(
            "DELETE", f"sessions/{m.seg(self.session_id)}/stream/{m.seg(self.stream_id)}"
        )
        _ok(r, m.UNPUBLISH)


class OpenViduSubscriber(SubscriberState):
    """A subscription of a connection to someone's stream."""


class OpenViduConnection(ConnectionState):
    """A connection of a session: pending (a token nobody used yet) or active."""

    def __init__(self, http: _Http, data: Mapping[str, Any]) -> None:
        self._http = http
        self._update_from_data(data)

    def _make_publisher(self, data: Mapping[str, Any]) -> OpenViduPublisher:
        return OpenViduPublisher(self._http, self.session_id, data)

    def _make_subscriber(self, data: Mapping[str, Any]) -> OpenViduSubscriber:
        return OpenViduSubscriber(self.session_id, data)

    def _path(self) -> str:
        return f"sessions/{m.seg(self.session_id)}/connection/{m.seg(self.id)}"

    def fetch(self) -> bool:
        """Refresh from the server; returns whether anything changed.

        Raises:
            OpenViduConnectionDoesNotExistsError: the connection is gone (404).
            OpenViduSessionDoesNotExistsError: the session is gone (400).
        """
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        data = _ok(self._http.call("GET", self._path()), m.FETCH_CONNECTION, self).json()
        changed: bool = data != self._last
        if changed:
            self._update_from_data(data)
        return changed

    def force_disconnect(self) -> None:
        """Evict the participant, or revoke the token while pending. Invalidates this object."""
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        _ok(self._http.call("DELETE", self._path()), m.DISCONNECT, self)
        self.is_valid = False

    def update(self, role: str | None = None, record: bool | None = None) -> None:
        """``PATCH`` role and/or record (OpenVidu Pro and vidhub; CE answers 405)."""
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        body = m.drop_none({"role": role, "record": record})
        data = _ok(self._http.call("PATCH", self._path(), body), m.UPDATE_CONNECTION).json()
        self._update_from_data(data)

    def signal(self, type_: str | None = None, data: str | None = None) -> None:
        """Send a signal to this connection only (``POST /signal``).

        Raises:
            OpenViduConnectionDoesNotExistsError: not an active connection (406).
        """
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        body = m.signal_body(self.session_id, type_, data, [self.id])
        _ok(self._http.call("POST", "signal", body), m.SIGNAL, self)

    def force_unpublish_all_streams(self) -> None:
        """Force-unpublish every stream this connection publishes (as last fetched)."""
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        for pub in self.publishers:
            pub.force_unpublish()


class OpenViduWEBRTCConnection(OpenViduConnection):
    """A WEBRTC connection (a user): ``token``, ``role``, ``client_data``, ``kurento_options``."""


class OpenViduIPCAMConnection(OpenViduConnection):
    """An IPCAM connection: ``rtsp_uri``, ``adaptive_bitrate``, ``network_cache`` ..."""


_C = TypeVar("_C", bound="OpenViduConnection")


def _connection(http: _Http, data: Mapping[str, Any]) -> OpenViduConnection:
    if data["type"] == "WEBRTC":
        return OpenViduWEBRTCConnection(http, data)
    if data["type"] == "IPCAM":
        return OpenViduIPCAMConnection(http, data)
    raise RuntimeError("Unknown connection type")


class OpenViduSession(SessionState):
    """A session on the server."""

    def __init__(self, http: _Http, data: Mapping[str, Any]) -> None:
        self._http = http
        self._update_from_data(data)

    def _make_connection(self, data: Mapping[str, Any]) -> OpenViduConnection:
        return _connection(self._http, data)

    def fetch(self) -> bool:
        """Refresh from ``GET /sessions/{id}``; returns whether anything changed.

        Raises:
            OpenViduSessionDoesNotExistsError: 404 (this object becomes invalid).
        """
        data = _ok(
            self._http.call("GET", f"sessions/{m.seg(self.id)}"), m.FETCH_SESSION, self
        ).json()
        changed: bool = data != self._last
        if changed:
            self._update_from_data(data)
        return changed

    def close(self) -> None:
        """``DELETE /sessions/{id}``: evict everyone. Invalidates this object."""
        _ok(self._http.call("DELETE", f"sessions/{m.seg(self.id)}"), m.CLOSE_SESSION, self)
        self.is_valid = False

    def signal(
        self,
        type_: str | None = None,
        data: str | None = None,
        to: list[OpenViduConnection] | None = None,
    ) -> None:
        """``POST /signal`` to ``to`` (default: everyone).

        Raises:
            OpenViduSessionDoesNotExistsError: no session (404).
            OpenViduConnectionDoesNotExistsError: nobody connected or a recipient not active (406).
            ValueError: the server rejected the body (400).
        """
        if not self.is_valid:
            raise m.OpenViduSessionDoesNotExistsError()
        body = m.signal_body(self.id, type_, data, [c.id for c in to] if to else None)
        _ok(self._http.call("POST", "signal", body), m.SIGNAL, self)

    def _create(self, body: dict[str, Any], cls: type[_C]) -> _C:
        if not self.is_valid:
            raise m.OpenViduSessionDoesNotExistsError()
        r = self._http.call("POST", f"sessions/{m.seg(self.id)}/connection", body)
        if r.status_code == 500:
            raise m.OpenViduError(r.content)
        conn = cls(self._http, _ok(r, m.CREATE_CONNECTION, self).json())
        self.connections.append(conn)
        return conn

    def create_webrtc_connection(
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
    ) -> OpenViduWEBRTCConnection:
        """``POST /sessions/{id}/connection`` for a user; the result carries ``token``.

        Raises:
            ValueError: unknown role, or the server rejected the body (400).
            OpenViduSessionDoesNotExistsError: the session is gone (404).
        """
        body = m.webrtc_body(
            role,
            data,
            {
                "videoMaxRecvBandwidth": video_max_recv_bandwidth,
                "videoMinRecvBandwidth": video_min_recv_bandwidth,
                "videoMaxSendBandwidth": video_max_send_bandwidth,
                "videoMinSendBandwidth": video_min_send_bandwidth,
                "allowedFilters": allowed_filters,
            },
            record,
        )
        return self._create(body, OpenViduWEBRTCConnection)

    def create_ipcam_connection(
        self,
        rtsp_uri: str,
        data: str | None = None,
        adaptive_bitrate: bool | None = None,
        only_play_with_subscribers: bool | None = None,
        network_cache: int | None = None,
    ) -> OpenViduIPCAMConnection:
        """``POST /sessions/{id}/connection`` for an IP camera.

        Raises:
            ValueError: the server rejected the body (400).
            OpenViduError: the server failed to attach the camera (500).
        """
        body = m.ipcam_body(
            rtsp_uri, data, adaptive_bitrate, only_play_with_subscribers, network_cache
        )
        return self._create(body, OpenViduIPCAMConnection)


class OpenVidu:
    """An OpenVidu (or vidhub) server.

    Args:
        url: server root or API base URL.
        secret: the ``OPENVIDU_SECRET``.
        initial_fetch: fetch the sessions now (one request).
        timeout: ``requests`` timeout for every call (seconds, or ``(connect, read)``).
        verify: ``requests``' TLS verification (a CA bundle path or a bool).
        cert: client certificate for ``requests``.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        initial_fetch: bool = True,
        timeout: Timeout = None,
        verify: str | bool | None = None,
        cert: Any = None,
    ) -> None:
        self._http = _Http(url, secret, timeout, verify, cert)
        self._sessions: dict[str, OpenViduSession] = {}
        self._last: Any = None
        if initial_fetch:
            self.fetch()

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._http.session.close()

    def __enter__(self) -> OpenVidu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fetch(self) -> bool:
        """Refresh ``sessions`` from ``GET /sessions``; returns whether anything changed."""
        r = self._http.call("GET", "sessions")
        r.raise_for_status()
        content = r.json()["content"]
        changed: bool = content != self._last
        self._last = content
        if changed:
            self._sessions = {d["id"]: OpenViduSession(self._http, d) for d in content}
        return changed

    def get_session(self, session_id: str) -> OpenViduSession:
        """The locally known, valid session with that id (no request).

        Raises:
            OpenViduSessionDoesNotExistsError: unknown since the last fetch, or closed.
        """
        s = self._sessions.get(session_id)
        if s is None or not s.is_valid:
            raise m.OpenViduSessionDoesNotExistsError()
        return s

    def create_session(
        self, custom_session_id: str | None = None, media_mode: str | None = None
    ) -> OpenViduSession:
        """``POST /sessions``.

        Raises:
            OpenViduSessionExistsError: ``custom_session_id`` is taken (409).
            ValueError: bad ``media_mode`` or the server rejected the body (400).
        """
        body = m.session_body(custom_session_id, media_mode)
        data = _ok(self._http.call("POST", "sessions", body), m.CREATE_SESSION).json()
        session = OpenViduSession(self._http, data)
        self._sessions[session.id] = session
        return session

    @property
    def sessions(self) -> list[OpenViduSession]:
        """The valid sessions known since the last fetch."""
        return [s for s in self._sessions.values() if s.is_valid]

    @property
    def session_count(self) -> int:
        return len(self.sessions)

    def get_config(self) -> dict[str, Any]:
        """``GET /config``: the server's configuration JSON, as is."""
        r = self._http.call("GET", "config")
        r.raise_for_status()
        config: dict[str, Any] = r.json()
        return config
