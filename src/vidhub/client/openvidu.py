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

This module is only the transport: every operation (its signature, contract, request, error
table and state update) is written once in :mod:`vidhub.client.openvidu_model`; each public
method here is that operation driven by :meth:`_Http.run`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import requests

from vidhub.client import openvidu_model as m
from vidhub.client.openvidu_bodies import api_base
from vidhub.client.openvidu_model import (
    ConnectionState,
    OpenViduState,
    PublisherState,
    SessionState,
    SubscriberState,
)
from vidhub.client.transport import named_after

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
P = ParamSpec("P")


class _Http:
    """A ``requests`` session bound to the API base URL, Basic auth and a timeout."""

    def __init__(
        self, url: str, secret: str, timeout: Timeout, verify: str | bool | None, cert: Any
    ) -> None:
        self.base = api_base(url)
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


class _Bound(Protocol):
    _http: _Http


B = TypeVar("B", bound=_Bound)


def _blocking(op: Callable[Concatenate[B, P], m.Op[T]]) -> Callable[Concatenate[B, P], T]:
    """The public method that runs the operation ``op`` over this module's transport."""

    def method(self: B, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._http.run(op(self, *args, **kwargs))

    return named_after(op, method)


class OpenViduPublisher(PublisherState):
    """A stream published by a connection."""

    _http: _Http
    force_unpublish = _blocking(PublisherState._force_unpublish)


class OpenViduSubscriber(SubscriberState):
    """A subscription of a connection to someone's stream."""


class OpenViduConnection(ConnectionState):
    """A connection of a session: pending (a token nobody used yet) or active."""

    _http: _Http
    _publisher_class = OpenViduPublisher
    _subscriber_class = OpenViduSubscriber
    fetch = _blocking(ConnectionState._fetch)
    force_disconnect = _blocking(ConnectionState._force_disconnect)
    update = _blocking(ConnectionState._update)
    signal = _blocking(ConnectionState._signal)
    force_unpublish_all_streams = _blocking(ConnectionState._force_unpublish_all_streams)


class OpenViduWEBRTCConnection(OpenViduConnection):
    """A WEBRTC connection (a user): ``token``, ``role``, ``client_data``, ``kurento_options``."""


class OpenViduIPCAMConnection(OpenViduConnection):
    """An IPCAM connection: ``rtsp_uri``, ``adaptive_bitrate``, ``network_cache`` ..."""


_Session = SessionState[OpenViduWEBRTCConnection, OpenViduIPCAMConnection]


class OpenViduSession(_Session):
    """A session on the server."""

    _http: _Http
    _webrtc_class = OpenViduWEBRTCConnection
    _ipcam_class = OpenViduIPCAMConnection
    fetch = _blocking(_Session._fetch)
    close = _blocking(_Session._close)
    signal = _blocking(_Session._signal)
    create_webrtc_connection = _blocking(_Session._create_webrtc_connection)
    create_ipcam_connection = _blocking(_Session._create_ipcam_connection)


_OpenVidu = OpenViduState[OpenViduSession, OpenViduConnection]


class OpenVidu(_OpenVidu):
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
    _session_class = OpenViduSession

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

    fetch = _blocking(_OpenVidu._fetch)
    create_session = _blocking(_OpenVidu._create_session)
    create_connection = _blocking(_OpenVidu._create_connection)
    get_config = _blocking(_OpenVidu._get_config)
