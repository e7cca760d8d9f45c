"""``vidhub app-server``'s upstream side (``UpstreamBackend`` over ``AsyncOpenVidu``) against a
stand-in OpenVidu that answers what a test tells it to: whatever the upstream says, the caller
gets its status and message, or a 502 for an answer that makes no sense, never a 500."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from vidhub.server.appserver import make_app_server

SECRET = "MY_SECRET"
SESSION = {
    "id": "ses_A",
    "sessionId": "ses_A",
    "createdAt": 1,
    "recording": False,
    "mediaMode": "ROUTED",
    "connections": {"numberOfElements": 0, "content": []},
}


class Upstream:
    """Records each request; answers with ``reply`` (status, body bytes, content type)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, Any]] = []
        self.reply: tuple[int, bytes, str] = (200, b"{}", "application/json")

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.seen.append((request.method, request.raw_path, body))
        status, text, ctype = self.reply
        return web.Response(status=status, body=text, content_type=ctype)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Upstream, str]]:
    up = Upstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", up.handle)
    async with TestServer(app, host="127.0.0.1") as server:
        yield up, str(server.make_url("/"))


@pytest.fixture
async def app_server(upstream: tuple[Upstream, str]) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(make_app_server(upstream[1], SECRET))) as client:
        yield client


async def test_bodies_pass_through_and_answers_come_back(
    upstream: tuple[Upstream, str], app_server: TestClient[Any, Any]
) -> None:
    up, _ = upstream
    up.reply = (200, json.dumps(SESSION).encode(), "application/json")
    r = await app_server.post(
        "/api/sessions", json={"customSessionId": "x", "recordingMode": "ALWAYS"}
    )
    assert (r.status, await r.text()) == (200, "ses_A")
    assert up.seen[-1] == (
        "POST",
        "/openvidu/api/sessions",
        {"customSessionId": "x", "recordingMode": "ALWAYS"},
    )


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        ((400, b'{"message":"bad field"}', "application/json"), 400, "bad field"),
        ((404, b"", "text/plain"), 404, "OpenVidu server answered 404"),
        ((409, b"", "text/plain"), 409, "OpenVidu server answered 409"),  # no custom id to reuse
        ((401, b"", "text/plain"), 401, "OpenVidu server answered 401"),
        ((403, b'{"message":"nope"}', "application/json"), 403, "nope"),
        ((200, b"not json", "text/plain"), 502, None),
        ((200, b'{"id": "only"}', "application/json"), 502, None),
        ((200, b"[1, 2]", "application/json"), 502, None),
    ],
)
async def test_session_errors_reach_the_caller(
    upstream: tuple[Upstream, str],
    app_server: TestClient[Any, Any],
    reply: tuple[int, bytes, str],
    status: int,
    message: str | None,
) -> None:
    upstream[0].reply = reply
    r = await app_server.post("/api/sessions", json={})
    assert r.status == status and r.content_type == "application/json"
    body = await r.json()
    assert body["status"] == status
    if message is not None:
        assert body["message"] == message


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ((500, b'{"message":"camera unreachable"}', "application/json"), 500),
        ((406, b"", "text/plain"), 406),
        ((200, b'{"type": "WEBRTC"}', "application/json"), 502),
        ((200, b'{"type": "SIP"}', "application/json"), 502),
    ],
)
async def test_connection_errors_reach_the_caller(
    upstream: tuple[Upstream, str],
    app_server: TestClient[Any, Any],
    reply: tuple[int, bytes, str],
    status: int,
) -> None:
    upstream[0].reply = reply
    r = await app_server.post("/api/sessions/s%20x/connections", json={"type": "IPCAM"})
    assert r.status == status and (await r.json())["status"] == status
    assert upstream[0].seen[-1][1:] == (
        "/openvidu/api/sessions/s%20x/connection",
        {"type": "IPCAM"},
    )
