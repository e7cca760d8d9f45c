"""The tutorial application server (openvidu-basic-python) endpoints.

``POST /api/sessions`` returns the new session id as text (the ``customSessionId`` when the
session already exists); ``POST /api/sessions/{id}/connections`` returns a token as text.
Unlike the tutorial, any upstream error other than 409 reaches the caller with the upstream
status and a JSON error body instead of a 200.

Two backends serve the same handlers: :class:`LocalBackend` calls the in-process manager (for
``vidhub serve``) and :class:`UpstreamBackend` calls any OpenVidu-compatible REST API (for
``vidhub app-server``).
"""

from __future__ import annotations

import base64
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from vidhub.errors import SessionExists, VidhubError
from vidhub.manager import SessionManager
from vidhub.protocol import jsoncodec
from vidhub.protocol.openvidu_rest import parse_connection_properties, parse_session_properties
from vidhub.server.middlewares import CORS_HEADERS
from vidhub.server.rest.body import json_body, json_response
from vidhub.server.urls import ws_base

__all__ = ["LocalBackend", "UpstreamBackend", "UpstreamError", "add_app_routes", "make_app_server"]


class UpstreamError(Exception):
    """The OpenVidu server answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Backend(Protocol):
    async def create_session(self, request: web.Request, body: Any) -> str: ...

    async def create_connection(self, request: web.Request, session_id: str, body: Any) -> str: ...


class LocalBackend:
    """Serves the endpoints from this process's SessionManager."""

    def __init__(
        self, manager: SessionManager, default_codec: str, allow_transcoding: bool
    ) -> None:
        self._manager = manager
        self._codec = default_codec
        self._transcoding = allow_transcoding

    async def create_session(self, request: web.Request, body: Any) -> str:
        props = parse_session_properties(
            body if body is not None else {},
            default_codec=self._codec,
            default_transcoding=self._transcoding,
        )
        try:
            return (await self._manager.create_session(props)).id
        except SessionExists:
            return props.custom_session_id

    async def create_connection(self, request: web.Request, session_id: str, body: Any) -> str:
        props = parse_connection_properties(body)
        conn = await self._manager.create_connection(session_id, props, ws_base(request))
        return conn.token


class UpstreamBackend:
    """Forwards to an OpenVidu REST API at ``base_url`` with Basic auth."""

    def __init__(self, base_url: str, secret: str, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/") + "/"
        cred = base64.b64encode(f"OPENVIDUAPP:{secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {cred}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _post(self, path: str, body: Any) -> tuple[int, Any]:
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._http.post(
                self._base + path,
                data=jsoncodec.dumps_bytes(body),
                headers=self._headers,
                ssl=False,
            ) as resp:
                raw = await resp.read()
                try:
                    data = jsoncodec.loads(raw) if raw else None
                except jsoncodec.JSONDecodeError:
                    data = raw.decode(errors="replace")
                return resp.status, data
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamError(
                502, f"OpenVidu server unreachable: {exc.__class__.__name__}"
            ) from None

    @staticmethod
    def _error(status: int, data: Any) -> UpstreamError:
        msg = data.get("message") if isinstance(data, dict) else None
        return UpstreamError(status, msg or f"OpenVidu server answered {status}")

    async def create_session(self, request: web.Request, body: Any) -> str:
        status, data = await self._post("openvidu/api/sessions", body if body is not None else {})
        if (
            status == 409
            and isinstance(body, dict)
            and isinstance(body.get("customSessionId"), str)
        ):
            return str(body["customSessionId"])
        if status != 200 or not isinstance(data, dict) or "sessionId" not in data:
            raise self._error(status if status != 200 else 502, data)
        return str(data["sessionId"])

    async def create_connection(self, request: web.Request, session_id: str, body: Any) -> str:
        status, data = await self._post(
            f"openvidu/api/sessions/{session_id}/connection", body if body is not None else {}
        )
        if status != 200 or not isinstance(data, dict) or "token" not in data:
            raise self._error(status if status != 200 else 502, data)
        return str(data["token"])


def _error_json(status: int, message: str) -> web.Response:
    return json_response({"status": status, "message": message}, status=status)


def add_app_routes(app: web.Application, backend: Backend) -> None:
    """Mount ``POST /api/sessions`` and ``POST /api/sessions/{id}/connections``."""

    async def init_session(request: web.Request) -> web.Response:
        try:
            sid = await backend.create_session(request, await json_body(request))
        except UpstreamError as exc:
            return _error_json(exc.status, exc.message)
        except VidhubError as exc:
            return _error_json(exc.http_status, exc.message or exc.__class__.__name__)
        return web.Response(text=sid, headers=CORS_HEADERS)

    async def create_connection(request: web.Request) -> web.Response:
        try:
            token = await backend.create_connection(
                request, request.match_info["session_id"], await json_body(request)
            )
        except UpstreamError as exc:
            return _error_json(exc.status, exc.message)
        except VidhubError as exc:
            return _error_json(exc.http_status, exc.message or exc.__class__.__name__)
        return web.Response(text=token, headers=CORS_HEADERS)

    app.router.add_post("/api/sessions", init_session)
    app.router.add_post("/api/sessions/{session_id}/connections", create_connection)


def make_app_server(openvidu_url: str, secret: str, max_body: int = 1 << 20) -> web.Application:
    """The standalone ``vidhub app-server`` application."""
    from vidhub.server.middlewares import cors_middleware, error_middleware

    app = web.Application(middlewares=[cors_middleware, error_middleware], client_max_size=max_body)
    backend = UpstreamBackend(openvidu_url, secret)
    add_app_routes(app, backend)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    app.router.add_get("/health", health)

    async def closing(app: web.Application) -> Any:
        yield
        await backend.close()

    app.cleanup_ctx.append(closing)
    return app
