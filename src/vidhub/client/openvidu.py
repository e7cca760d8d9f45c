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

This module is only the transport: every operation (request, error table, state update) is
written once in :mod:`vidhub.client.openvidu_model` and driven here by :meth:`_Http.run`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

import requests

from vidhub.client import openvidu_model as m
from vidhub.client.openvidu_model import (
    ConnectionState,
    OpenViduState,
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
T = TypeVar("T")


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

    def run(self, op: m.Op[T]) -> T:
        """Drive one operation: send each request it yields and hand it the response."""
        try:
            request = next(op)
            while True:
                request = op.send(
                    self.session.request(
                        request.method,
                        self.base + request.path,
                        json=request.body,
                        timeout=self.timeout,
                    )
                )
        except StopIteration as done:
            return cast(T, done.value)


class OpenViduPublisher(PublisherState):
    """A stream published by a connection."""

    _http: _Http

    def force_unpublish(self) -> None:
        """``DELETE /sessions/{id}/stream/{streamId}``.

        Raises:
            OpenViduStreamDoesNotExistsError: 404.
            OpenViduSessionDoesNotExistsError: 400 (no such session).
            OpenViduStreamError: 405 (an IPCAM stream).
        """
        self._http.run(self._force_unpublish())


class OpenViduSubscriber(SubscriberState):
    """A subscription of a connection to someone's stream."""


class OpenViduConnection(ConnectionState):
    """A connection of a session: pending (a token nobody used yet) or active."""

    _http: _Http
    _publisher_class = OpenViduPublisher
    _subscriber_class = OpenViduSubscriber

    def fetch(self) -> bool:
        """Refresh from the server; returns whether anything changed.

        Raises:
            OpenViduConnectionDoesNotExistsError: the connection is gone (404).
            OpenViduSessionDoesNotExistsError: the session is gone (400).
        """
        return self._http.run(self._fetch())

    def force_disconnect(self) -> None:
        """Evict the participant, or revoke the token while pending. Invalidates this object."""
        self._http.run(self._force_disconnect())

    def update(self, role: str | None = None, record: bool | None = None) -> None:
        """``PATCH`` role and/or record (OpenVidu Pro and vidhub; CE answers 405)."""
        self._http.run(self._update(role, record))

    def signal(self, type_: str | None = None, data: str | None = None) -> None:
        """Send a signal to this connection only (``POST /signal``).

        Raises:
            OpenViduConnectionDoesNotExistsError: not an active connection (406).
        """
        self._http.run(self._signal(type_, data))

    def force_unpublish_all_streams(self) -> None:
        """Force-unpublish every stream this connection publishes (as last fetched)."""
        self._http.run(self._force_unpublish_all_streams())


class OpenViduWEBRTCConnection(OpenViduConnection):
    """A WEBRTC connection (a user): ``token``, ``role``, ``client_data``, ``kurento_options``."""


class OpenViduIPCAMConnection(OpenViduConnection):
    """An IPCAM connection: ``rtsp_uri``, ``adaptive_bitrate``, ``network_cache`` ..."""


_CONNECTIONS: dict[str, type[OpenViduConnection]] = {
    "WEBRTC": OpenViduWEBRTCConnection,
    "IPCAM": OpenViduIPCAMConnection,
}


class OpenViduSession(SessionState):
    """A session on the server."""

    _http: _Http
    _connection_classes = _CONNECTIONS

    def fetch(self) -> bool:
        """Refresh from ``GET /sessions/{id}``; returns whether anything changed.

        Raises:
            OpenViduSessionDoesNotExistsError: 404 (this object becomes invalid).
        """
        return self._http.run(self._fetch())

    def close(self) -> None:
        """``DELETE /sessions/{id}``: evict everyone. Invalidates this object."""
        self._http.run(self._close())

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
        self._http.run(self._signal(type_, data, to))

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
        op = self._create_webrtc(
            OpenViduWEBRTCConnection,
            role,
            data,
            video_max_recv_bandwidth,
            video_min_recv_bandwidth,
            video_max_send_bandwidth,
            video_min_send_bandwidth,
            allowed_filters,
            record,
        )
        return self._http.run(op)

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
        op = self._create_ipcam(
            OpenViduIPCAMConnection,
            rtsp_uri,
            data,
            adaptive_bitrate,
            only_play_with_subscribers,
            network_cache,
        )
        return self._http.run(op)


class OpenVidu(OpenViduState[OpenViduSession]):
    """An OpenVidu (or vidhub) server.

    Args:
        url: server root or API base URL.
        secret: the ``OPENVIDU_SECRET``.
        initial_fetch: fetch the sessions now (one request).
        timeout: ``requests`` timeout for every call (seconds, or ``(connect, read)``).
        verify: ``requests``' TLS verification (a CA bundle path or a bool).
        cert: client certificate for ``requests``.
    """

    _http: _Http

    def __init__(
        self,
        url: str,
        secret: str,
        initial_fetch: bool = True,
        timeout: Timeout = None,
        verify: str | bool | None = None,
        cert: Any = None,
    ) -> None:
        super().__init__(_Http(url, secret, timeout, verify, cert))
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
        return self._http.run(self._fetch(OpenViduSession))

    def create_session(
        self,
        custom_session_id: str | None = None,
        media_mode: str | None = None,
        *,
        properties: Mapping[str, Any] | None = None,
    ) -> OpenViduSession:
        """``POST /sessions``.

        ``properties`` (a vidhub extension) are more REST body fields, sent as given; the
        named arguments take precedence.

        Raises:
            OpenViduSessionExistsError: ``custom_session_id`` is taken (409).
            ValueError: bad ``media_mode`` or the server rejected the body (400).
        """
        op = self._create_session(OpenViduSession, custom_session_id, media_mode, properties)
        return self._http.run(op)

    def create_connection(
        self, session_id: str, properties: Mapping[str, Any]
    ) -> OpenViduConnection:
        """``POST /sessions/{session_id}/connection`` with ``properties`` as the body, for a
        session this client need not know (a vidhub extension, for proxies).

        Raises:
            OpenViduSessionDoesNotExistsError: no such session (404).
            ValueError: the server rejected the body (400).
            OpenViduError: the server failed to attach an IP camera (500).
        """
        return self._http.run(self._create_connection(_CONNECTIONS, session_id, properties))

    def get_config(self) -> dict[str, Any]:
        """``GET /config``: the server's configuration JSON, as is."""
        return self._http.run(self._get_config())
