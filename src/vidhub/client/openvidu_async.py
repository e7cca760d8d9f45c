"""OpenVidu REST SDK over ``aiohttp``: the asyncio twin of :mod:`vidhub.client.openvidu`.

Same classes, names and errors; every method that talks to the server is a coroutine, local
state (``sessions``, ``connections``, ``get_session``) stays synchronous::

    async with AsyncOpenVidu("http://127.0.0.1:4443/", "MY_SECRET") as ov:   # fetches
        session = await ov.create_session()
        conn = await session.create_webrtc_connection()

HTTP errors no operation maps raise ``aiohttp.ClientResponseError``; timeouts raise
``TimeoutError`` (``asyncio.TimeoutError``), unmodified.

This module is only the transport: every operation (its signature, contract, request, error
table and state update) is written once in :mod:`vidhub.client.openvidu_model`; each public
method here is a coroutine driving that operation with :meth:`_Http.run`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, cast

import aiohttp

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
    "AsyncOpenVidu",
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


class _Reply:
    """A finished response: status and body, read before the connection is released."""

    def __init__(self, resp: aiohttp.ClientResponse, body: bytes) -> None:
        self.status_code = resp.status
        self.content = body
        self._resp = resp

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise aiohttp.ClientResponseError(
                self._resp.request_info,
                self._resp.history,
                status=self.status_code,
                message=self._resp.reason or "",
                headers=self._resp.headers,
            )


class _Http:
    """An ``aiohttp`` session (made on first use) bound to the API base, auth and timeout."""

    def __init__(self, url: str, secret: str, timeout: Timeout, verify: bool | None) -> None:
        self.base = api_base(url)
        cred = base64.b64encode(f"OPENVIDUAPP:{secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {cred}", "User-Agent": "vidhub-openvidu-sdk"}
        if isinstance(timeout, tuple):
            self._timeout = aiohttp.ClientTimeout(connect=timeout[0], sock_read=timeout[1])
        else:
            self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl = verify is not False
        self._session: aiohttp.ClientSession | None = None

    async def run(self, op: m.Op[T]) -> T:
        """Drive one operation: send each request it yields and hand it the response."""
        try:
            request = next(op)
            while True:
                request = op.send(await self._call(request))
        except StopIteration as done:
            return cast(T, done.value)

    async def _call(self, request: m.Request) -> _Reply:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        url = self.base + request.path
        async with self._session.request(
            request.method, url, json=request.body, ssl=self._ssl
        ) as resp:
            return _Reply(resp, await resp.read())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _Bound(Protocol):
    _http: _Http


B = TypeVar("B", bound=_Bound)


def _awaiting(
    op: Callable[Concatenate[B, P], m.Op[T]],
) -> Callable[Concatenate[B, P], Coroutine[Any, Any, T]]:
    """The public coroutine method that runs the operation ``op`` over this transport."""

    async def method(self: B, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._http.run(op(self, *args, **kwargs))

    return named_after(op, method)


class OpenViduPublisher(PublisherState):
    """A stream published by a connection."""

    _http: _Http
    force_unpublish = _awaiting(PublisherState._force_unpublish)


class OpenViduSubscriber(SubscriberState):
    """A subscription of a connection to someone's stream."""


class OpenViduConnection(ConnectionState):
    """A connection of a session: pending (a token nobody used yet) or active."""

    _http: _Http
    _publisher_class = OpenViduPublisher
    _subscriber_class = OpenViduSubscriber
    fetch = _awaiting(ConnectionState._fetch)
    force_disconnect = _awaiting(ConnectionState._force_disconnect)
    update = _awaiting(ConnectionState._update)
    signal = _awaiting(ConnectionState._signal)
    force_unpublish_all_streams = _awaiting(ConnectionState._force_unpublish_all_streams)


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
    fetch = _awaiting(_Session._fetch)
    close = _awaiting(_Session._close)
    signal = _awaiting(_Session._signal)
    create_webrtc_connection = _awaiting(_Session._create_webrtc_connection)
    create_ipcam_connection = _awaiting(_Session._create_ipcam_connection)


_OpenVidu = OpenViduState[OpenViduSession, OpenViduConnection]


class OpenVidu(_OpenVidu):
    """An OpenVidu (or vidhub) server, asynchronously.

    Construct it, then ``await ov.fetch()`` or use ``async with`` (which fetches when
    ``initial_fetch`` is true and closes the HTTP session on exit).

    Args:
        url: server root or API base URL.
        secret: the ``OPENVIDU_SECRET``.
        initial_fetch: fetch on ``async with`` entry.
        timeout: total seconds per call, or ``(connect, read)``.
        verify: ``False`` disables TLS verification.
    """

    _http: _Http
    _session_class = OpenViduSession

    def __init__(
        self,
        url: str,
        secret: str,
        initial_fetch: bool = True,
        timeout: Timeout = None,
        verify: bool | None = None,
    ) -> None:
        super().__init__(_Http(url, secret, timeout, verify))
        self._initial_fetch = initial_fetch

    async def __aenter__(self) -> OpenVidu:
        if self._initial_fetch:
            try:
                await self.fetch()
            except BaseException:
                await self.close()
                raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session. Safe to call twice."""
        await self._http.close()

    fetch = _awaiting(_OpenVidu._fetch)
    create_session = _awaiting(_OpenVidu._create_session)
    create_connection = _awaiting(_OpenVidu._create_connection)
    get_config = _awaiting(_OpenVidu._get_config)


AsyncOpenVidu = OpenVidu
