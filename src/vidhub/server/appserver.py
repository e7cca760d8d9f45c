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

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from vidhub.client.openvidu_async import AsyncOpenVidu
from vidhub.client.openvidu_errors import OpenViduError, OpenViduSessionExistsError, ServerAnswer
from vidhub.errors import SessionExists, VidhubError
from vidhub.ids import SessionId
from vidhub.manager import SessionManager
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
        conn = await self._manager.create_connection(SessionId(session_id), props, ws_base(request))
        return conn.token


class UpstreamBackend:
    """Forwards to an OpenVidu REST API at ``base_url`` through the SDK's
    :class:`~vidhub.client.AsyncOpenVidu`, request bodies as given."""

    def __init__(self, base_url: str, secret: str, timeout: float = 10.0) -> None:
        self._ov = AsyncOpenVidu(
            base_url, secret, initial_fetch=False, timeout=timeout, verify=False
        )

    async def close(self) -> None:
        await self._ov.close()

    async def create_session(self, request: web.Request, body: Any) -> str:
        props = _object(body)
        custom = props.get("customSessionId")
        try:
            async with _upstream():
                return (await self._ov.create_session(properties=props)).id
        except OpenViduSessionExistsError:
            if isinstance(custom, str):
                return custom
            raise UpstreamError(409, "OpenVidu server answered 409") from None

    async def create_connection(self, request: web.Request, session_id: str, body: Any) -> str:
        async with _upstream():
            conn = await self._ov.create_connection(session_id, _object(body))
        token = getattr(conn, "token", None)
        if not isinstance(token, str):
            raise UpstreamError(502, "OpenVidu server answered without a token")
        return token


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise UpstreamError(400, "the request body must be a JSON object")
    return body


@contextlib.asynccontextmanager
async def _upstream() -> AsyncIterator[None]:
    """Turn what the SDK raises into an :class:`UpstreamError` carrying the upstream status
    and message (502 when the server is unreachable or its answer makes no sense)."""
    try:
        yield
    except OpenViduSessionExistsError:
        raise
    except (OpenViduError, ValueError, aiohttp.ClientResponseError) as exc:
        answer = exc.__cause__  # the SDK puts the upstream's answer there
        if not isinstance(answer, ServerAnswer):  # a 2xx answer that is not JSON
            raise UpstreamError(502, f"bad answer from the OpenVidu server: {exc}") from None
        message = answer.message or f"OpenVidu server answered {answer.status}"
        raise UpstreamError(answer.status, message) from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UpstreamError(502, f"OpenVidu server unreachable: {exc.__class__.__name__}") from None
    except (KeyError, TypeError, RuntimeError) as exc:
        raise UpstreamError(502, f"bad answer from the OpenVidu server: {exc!r}") from None


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
