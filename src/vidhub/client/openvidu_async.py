"""OpenVidu REST SDK over ``aiohttp``: the asyncio twin of :mod:`vidhub.client.openvidu`.

Same classes, names and errors; every method that talks to the server is a coroutine, local
state (``sessions``, ``connections``, ``get_session``) stays synchronous::

    async with AsyncOpenVidu("http://127.0.0.1:4443/", "MY_SECRET") as ov:   # fetches
        session = await ov.create_session()
        conn = await session.create_webrtc_connection()

HTTP errors no operation maps raise ``aiohttp.ClientResponseError``; timeouts raise
``TimeoutError`` (``asyncio.TimeoutError``), unmodified.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, TypeVar

import aiohttp

from vidhub.client import openvidu_model as m
from vidhub.client.openvidu_model import (
    ConnectionState,
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


class _Reply:
    """A finished response: status and body, read before the connection is released."""

    def __init__(self, resp: aiohttp.ClientResponse, body: bytes) -> None:
        self.status = resp.status
        self.content = body
        self._resp = resp

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise aiohttp.ClientResponseError(
                self._resp.request_info,
                self._resp.history,
                status=self.status,
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

    async def call(self, method: str, path: str, body: Any = None) -> _Reply:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        async with self._session.request(
            method, self.base + path, json=body, ssl=self._ssl
        ) as resp:
            return _Reply(resp, await resp.read())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _ok(r: _Reply, table: m.ErrorTable, target: Any = None) -> _Reply:
    m.check(r.status, table, target)
    r.raise_for_status()
    return r


class OpenViduPublisher(PublisherState):
    """A stream published by a connection."""

    def __init__(self, http: _Http, session_id: str, data: Mapping[str, Any]) -> None:
        super().__init__(session_id, data)
        self._http = http

    async def force_unpublish(self) -> None:
        """``DELETE /sessions/{id}/stream/{streamId}`` (errors as the sync SDK)."""
        path = f"sessions/{m.seg(self.session_id)}/stream/{m.seg(self.stream_id)}"
        _ok(await self._http.call("DELETE", path), m.UNPUBLISH)


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

    async def fetch(self) -> bool:
        """Refresh from the server; returns whether anything changed."""
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        data = _ok(await self._http.call("GET", self._path()), m.FETCH_CONNECTION, self).json()
        changed: bool = data != self._last
        if changed:
            self._update_from_data(data)
        return changed

    async def force_disconnect(self) -> None:
        """Evict the participant, or revoke the token while pending. Invalidates this object."""
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        _ok(await self._http.call("DELETE", self._path()), m.DISCONNECT, self)
        self.is_valid = False

    async def update(self, role: str | None = None, record: bool | None = None) -> None:
        """``PATCH`` role and/or record (OpenVidu Pro and vidhub; CE answers 405)."""
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        body = m.drop_none({"role": role, "record": record})
        r = await self._http.call("PATCH", self._path(), body)
        self._update_from_data(_ok(r, m.UPDATE_CONNECTION).json())

    async def signal(self, type_: str | None = None, data: str | None = None) -> None:
        """Send a signal to this connection only (``POST /signal``)."""
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        body = m.signal_body(self.session_id, type_, data, [self.id])
        _ok(await self._http.call("POST", "signal", body), m.SIGNAL, self)

    async def force_unpublish_all_streams(self) -> None:
        """Force-unpublish every stream this connection publishes (as last fetched)."""
        if not self.is_valid:
            raise m.OpenViduConnectionDoesNotExistsError()
        for pub in self.publishers:
            await pub.force_unpublish()


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

    async def fetch(self) -> bool:
        """Refresh from ``GET /sessions/{id}``; returns whether anything changed."""
        r = await self._http.call("GET", f"sessions/{m.seg(self.id)}")
        data = _ok(r, m.FETCH_SESSION, self).json()
        changed: bool = data != self._last
        if changed:
            self._update_from_data(data)
        return changed

    async def close(self) -> None:
        """``DELETE /sessions/{id}``: evict everyone. Invalidates this object."""
        r = await self._http.call("DELETE", f"sessions/{m.seg(self.id)}")
        _ok(r, m.CLOSE_SESSION, self)
        self.is_valid = False

    async def signal(
        self,
        type_: str | None = None,
        data: str | None = None,
        to: list[OpenViduConnection] | None = None,
    ) -> None:
        """``POST /signal`` to ``to`` (default: everyone)."""
        if not self.is_valid:
            raise m.OpenViduSessionDoesNotExistsError()
        body = m.signal_body(self.id, type_, data, [c.id for c in to] if to else None)
        _ok(await self._http.call("POST", "signal", body), m.SIGNAL, self)

    async def _create(self, body: dict[str, Any], cls: type[_C]) -> _C:
        if not self.is_valid:
            raise m.OpenViduSessionDoesNotExistsError()
        r = await self._http.call("POST", f"sessions/{m.seg(self.id)}/connection", body)
        if r.status == 500:
            raise m.OpenViduError(r.content)
        conn = cls(self._http, _ok(r, m.CREATE_CONNECTION, self).json())
        self.connections.append(conn)
        return conn

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
        return await self._create(body, OpenViduWEBRTCConnection)

    async def create_ipcam_connection(
        self,
        rtsp_uri: str,
        data: str | None = None,
        adaptive_bitrate: bool | None = None,
        only_play_with_subscribers: bool | None = None,
        network_cache: int | None = None,
    ) -> OpenViduIPCAMConnection:
        """``POST /sessions/{id}/connection`` for an IP camera."""
        body = m.ipcam_body(
            rtsp_uri, data, adaptive_bitrate, only_play_with_subscribers, network_cache
        )
        return await self._create(body, OpenViduIPCAMConnection)


class OpenVidu:
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

    def __init__(
        self,
        url: str,
        secret: str,
        initial_fetch: bool = True,
        timeout: Timeout = None,
        verify: bool | None = None,
    ) -> None:
        self._http = _Http(url, secret, timeout, verify)
        self._initial_fetch = initial_fetch
        self._sessions: dict[str, OpenViduSession] = {}
        self._last: Any = None

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
        r = await self._http.call("GET", "sessions")
        r.raise_for_status()
        content = r.json()["content"]
        changed: bool = content != self._last
        self._last = content
        if changed:
            self._sessions = {d["id"]: OpenViduSession(self._http, d) for d in content}
        return changed

    def get_session(self, session_id: str) -> OpenViduSession:
        """The locally known, valid session with that id (no request)."""
        s = self._sessions.get(session_id)
        if s is None or not s.is_valid:
            raise m.OpenViduSessionDoesNotExistsError()
        return s

    async def create_session(
        self, custom_session_id: str | None = None, media_mode: str | None = None
    ) -> OpenViduSession:
        """``POST /sessions`` (409 -> OpenViduSessionExistsError, 400 -> ValueError)."""
        body = m.session_body(custom_session_id, media_mode)
        data = _ok(await self._http.call("POST", "sessions", body), m.CREATE_SESSION).json()
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

    async def get_config(self) -> dict[str, Any]:
        """``GET /config``: the server's configuration JSON, as is."""
        r = await self._http.call("GET", "config")
        r.raise_for_status()
        config: dict[str, Any] = r.json()
        return config


AsyncOpenVidu = OpenVidu
