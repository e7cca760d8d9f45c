"""OpenVidu REST SDK over ``aiohttp``: the asyncio twin of :mod:`vidhub.client.openvidu`.

Same classes, names and errors; every method that talks to the server is a coroutine, local
state (``sessions``, ``connections``, ``get_session``) stays synchronous::

    async with AsyncOpenVidu("http://127.0.0.1:4443/", "MY_SECRET") as ov:   # fetches
        session = await ov.create_session()
        conn = await session.create_webrtc_connection()

HTTP errors no operation maps raise ``aiohttp.ClientResponseError``; timeouts raise
``TimeoutError`` (``asyncio.TimeoutError``), unmodified.

This module is only the transport: every operation (request, error table, state update) is
written once in :mod:`vidhub.client.openvidu_model` and driven here by :meth:`_Http.run`;
the methods' contracts are documented there and on :mod:`vidhub.client.openvidu`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, TypeVar, cast

import aiohttp

from vidhub.client import openvidu_model as m
from vidhub.client.openvidu_model import (
    ConnectionState,
    OpenViduState,
    PublisherState,
    SessionState,
    SubscriberState,
)

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
        self.base = m.api_base(url)
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


class OpenViduPublisher(PublisherState):
    """A stream published by a connection."""

    _http: _Http

    async def force_unpublish(self) -> None:
        """``DELETE /sessions/{id}/stream/{streamId}`` (errors as the sync SDK)."""
        await self._http.run(self._force_unpublish())


class OpenViduSubscriber(SubscriberState):
    """A subscription of a connection to someone's stream."""


class OpenViduConnection(ConnectionState):
    """A connection of a session: pending (a token nobody used yet) or active."""

    _http: _Http
    _publisher_class = OpenViduPublisher
    _subscriber_class = OpenViduSubscriber

    async def fetch(self) -> bool:
        """Refresh from the server; returns whether anything changed."""
        return await self._http.run(self._fetch())

    async def force_disconnect(self) -> None:
        """Evict the participant, or revoke the token while pending. Invalidates this object."""
        await self._http.run(self._force_disconnect())

    async def update(self, role: str | None = None, record: bool | None = None) -> None:
        """``PATCH`` role and/or record (OpenVidu Pro and vidhub; CE answers 405)."""
        await self._http.run(self._update(role, record))

    async def signal(self, type_: str | None = None, data: str | None = None) -> None:
        """Send a signal to this connection only (``POST /signal``)."""
        await self._http.run(self._signal(type_, data))

    async def force_unpublish_all_streams(self) -> None:
        """Force-unpublish every stream this connection publishes (as last fetched)."""
        await self._http.run(self._force_unpublish_all_streams())


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

    async def fetch(self) -> bool:
        """Refresh from ``GET /sessions/{id}``; returns whether anything changed."""
        return await self._http.run(self._fetch())

    async def close(self) -> None:
        """``DELETE /sessions/{id}``: evict everyone. Invalidates this object."""
        await self._http.run(self._close())

    async def signal(
        self,
        type_: str | None = None,
        data: str | None = None,
        to: list[OpenViduConnection] | None = None,
    ) -> None:
        """``POST /signal`` to ``to`` (default: everyone)."""
        await self._http.run(self._signal(type_, data, to))

    async def create_webrtc_connection(
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
        """``POST /sessions/{id}/connection`` for a user; the result carries ``token``."""
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
        return await self._http.run(op)

    async def create_ipcam_connection(
        self,
        rtsp_uri: str,
        data: str | None = None,
        adaptive_bitrate: bool | None = None,
        only_play_with_subscribers: bool | None = None,
        network_cache: int | None = None,
    ) -> OpenViduIPCAMConnection:
        """``POST /sessions/{id}/connection`` for an IP camera."""
        op = self._create_ipcam(
            OpenViduIPCAMConnection,
            rtsp_uri,
            data,
            adaptive_bitrate,
            only_play_with_subscribers,
            network_cache,
        )
        return await self._http.run(op)


class OpenVidu(OpenViduState[OpenViduSession]):
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

    async def fetch(self) -> bool:
        """Refresh ``sessions`` from ``GET /sessions``; returns whether anything changed."""
        return await self._http.run(self._fetch(OpenViduSession))

    async def create_session(
        self,
        custom_session_id: str | None = None,
        media_mode: str | None = None,
        *,
        properties: Mapping[str, Any] | None = None,
    ) -> OpenViduSession:
        """``POST /sessions`` (409 -> OpenViduSessionExistsError, 400 -> ValueError)."""
        op = self._create_session(OpenViduSession, custom_session_id, media_mode, properties)
        return await self._http.run(op)

    async def create_connection(
        self, session_id: str, properties: Mapping[str, Any]
    ) -> OpenViduConnection:
        """``POST /sessions/{session_id}/connection`` with ``properties`` as the body (a
        vidhub extension, for proxies: see :meth:`vidhub.client.OpenVidu.create_connection`)."""
        return await self._http.run(self._create_connection(_CONNECTIONS, session_id, properties))

    async def get_config(self) -> dict[str, Any]:
        """``GET /config``: the server's configuration JSON, as is."""
        return await self._http.run(self._get_config())


AsyncOpenVidu = OpenVidu
