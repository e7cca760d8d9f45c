"""REST edge cases through the in-process app (openvidu.md §1.1, §1.5): auth, CORS, bodies,
status codes and the exact JSON shapes clients index into."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.support.shapes import PENDING_CONNECTION_KEYS, SESSION_KEYS
from vidhub.clock import ManualClock
from vidhub.config import Config
from vidhub.server.app import make_app
from vidhub.store import MemoryStore

API = "/openvidu/api"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"OPENVIDUAPP:MY_SECRET").decode()}


@pytest.fixture
async def anon(clock: ManualClock) -> AsyncIterator[TestClient[Any, Any]]:
    """The same app with no credentials set."""
    app = make_app(Config(store="memory", garbage_interval_s=0), clock=clock, store=MemoryStore())
    async with TestClient(TestServer(app)) as c:
        yield c


async def session(client: Any, sid: str = "s1") -> dict[str, Any]:
    r = await client.post(f"{API}/sessions", json={"customSessionId": sid})
    assert r.status == 200
    body: dict[str, Any] = await r.json()
    return body


async def connection(client: Any, sid: str = "s1", **body: Any) -> dict[str, Any]:
    r = await client.post(f"{API}/sessions/{sid}/connection", json=body)
    assert r.status == 200, await r.text()
    out: dict[str, Any] = await r.json()
    return out


async def assert_error_json(r: Any, status: int, path: str) -> dict[str, Any]:
    assert r.status == status
    assert r.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = await r.json()
    assert list(body) == ["timestamp", "status", "error", "message", "path"]
    assert body["status"] == status and body["path"] == path
    return body


async def assert_empty(r: Any, status: int) -> None:
    assert r.status == status
    assert await r.read() == b""


# -- auth ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "header",
    [
        None,
        "Basic " + base64.b64encode(b"OPENVIDUAPP:wrong").decode(),
        "Basic " + base64.b64encode(b"admin:MY_SECRET").decode(),
        "Basic " + base64.b64encode(b"OPENVIDUAPP:MY_SECRET ").decode(),
        "Basic !!!not-base64",
        "Bearer MY_SECRET",
        "Basic",
        "",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{API}/sessions"),
        ("POST", f"{API}/sessions"),
        ("GET", f"{API}/sessions/s1/connection/c1"),
        ("POST", f"{API}/signal"),
        ("GET", f"{API}/config"),
        ("GET", f"{API}/config/openvidu-version"),
        ("GET", f"{API}/recordings"),
        ("GET", f"{API}/no-such-endpoint"),
    ],
)
async def test_401_with_challenge(anon: Any, header: str | None, method: str, path: str) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = await anon.request(method, path, headers=headers)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"] == 'Basic realm="Realm"'


async def test_public_url_needs_no_auth(anon: Any) -> None:
    r = await anon.get(f"{API}/config/openvidu-publicurl")
    assert r.status == 200
    text = await r.text()
    assert text.startswith("http://127.0.0.1:") and text.endswith("/")
    r = await anon.head(f"{API}/config/openvidu-publicurl")
    assert r.status == 200


async def test_cors_preflight_needs_no_auth(anon: Any) -> None:
    r = await anon.options(
        f"{API}/sessions",
        headers={
            "Origin": "http://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]


async def test_cors_headers_on_answers_and_errors(client: Any, anon: Any) -> None:
    r = await client.get(f"{API}/sessions", headers={"Origin": "http://app.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    r = await anon.get(f"{API}/sessions", headers={"Origin": "http://app.example"})
    assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == "*"


# -- bodies ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    [
        f"{API}/sessions",
        f"{API}/sessions/s1/connection",
        f"{API}/tokens",
        f"{API}/signal",
        f"{API}/recordings/start",
    ],
)
@pytest.mark.parametrize(
    "raw", [b"{", b"{'single': 'quotes'}", b"[1,]", b"\xff\xfe", b"NaN", b'{"a":1}{"b":2}']
)
async def test_malformed_json_is_400_json(client: Any, path: str, raw: bytes) -> None:
    await session(client)
    r = await client.post(path, data=raw, headers={"Content-Type": "application/json"})
    body = await assert_error_json(r, 400, path)
    assert "JSON" in body["message"]


async def test_oversized_body_is_413(client: Any) -> None:
    big = b'{"customSessionId": "' + b"a" * (2 << 20) + b'"}'
    r = await client.post(
        f"{API}/sessions", data=io.BytesIO(big), headers={"Content-Type": "application/json"}
    )
    await assert_error_json(r, 413, f"{API}/sessions")
    r = await client.get(f"{API}/sessions")  # and the server keeps serving
    assert r.status == 200


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"{API}/sessions", {"customSessionId": 5}),
        (f"{API}/sessions", {"mediaMode": ["ROUTED"]}),
        (f"{API}/sessions", [1, 2]),
        (f"{API}/sessions/s1/connection", {"data": 123}),
        (f"{API}/sessions/s1/connection", {"record": "no"}),
        (f"{API}/sessions/s1/connection", {"kurentoOptions": {"allowedFilters": "x"}}),
        (f"{API}/sessions/s1/connection", "just a string"),
        (f"{API}/sessions/s1/connection", {"kurentoOptions": {"videoMaxRecvBandwidth": 1e300}}),
        (f"{API}/tokens", {"session": 1}),
        (f"{API}/signal", {"session": "s1", "to": "con_x"}),
        (f"{API}/signal", {"session": "s1", "data": 5}),
    ],
)
async def test_wrong_types_are_400(client: Any, path: str, body: Any) -> None:
    await session(client)
    r = await client.post(path, json=body)
    await assert_error_json(r, 400, path)


async def test_json_null_and_empty_bodies_mean_no_body(client: Any) -> None:
    r = await client.post(
        f"{API}/sessions", data=b"null", headers={"Content-Type": "application/json"}
    )
    assert r.status == 200
    r = await client.post(f"{API}/sessions", data=b"  ")
    assert r.status == 200
    sid = (await r.json())["id"]
    r = await client.post(f"{API}/sessions/{sid}/connection")
    assert r.status == 200


# -- status codes ----------------------------------------------------------------------------
async def test_session_status_codes(client: Any) -> None:
    await session(client, "dup")
    r = await client.post(f"{API}/sessions", json={"customSessionId": "dup"})
    await assert_empty(r, 409)
    await assert_empty(await client.get(f"{API}/sessions/nope"), 404)
    await assert_empty(await client.delete(f"{API}/sessions/nope"), 404)
    await assert_empty(await client.delete(f"{API}/sessions/dup"), 204)
    await assert_empty(await client.get(f"{API}/sessions/dup"), 404)
    r = await client.put(f"{API}/sessions")
    assert r.status == 405


async def test_connection_status_codes(client: Any) -> None:
    await session(client)
    c = await connection(client)
    cid = c["id"]
    await assert_empty(await client.post(f"{API}/sessions/nope/connection", json={}), 404)
    await assert_empty(await client.get(f"{API}/sessions/nope/connection"), 404)
    # unknown session on a connection path is a 400, as in OpenVidu CE
    await assert_empty(await client.get(f"{API}/sessions/nope/connection/{cid}"), 400)
    await assert_empty(await client.delete(f"{API}/sessions/nope/connection/{cid}"), 400)
    await assert_empty(await client.get(f"{API}/sessions/s1/connection/con_NOPE"), 404)
    await assert_empty(await client.delete(f"{API}/sessions/s1/connection/con_NOPE"), 404)
    await assert_empty(await client.delete(f"{API}/sessions/nope/stream/str_CAM_Abcd_x"), 400)
    await assert_empty(await client.delete(f"{API}/sessions/s1/stream/str_CAM_Abcd_x"), 404)
    await assert_empty(await client.delete(f"{API}/sessions/s1/connection/{cid}"), 204)
    await assert_empty(await client.get(f"{API}/sessions/s1/connection/{cid}"), 404)
    r = await client.post(
        f"{API}/sessions/s1/connection", json={"type": "IPCAM", "rtspUri": "rtsp://127.0.0.1/x"}
    )
    await assert_error_json(r, 400, f"{API}/sessions/s1/connection")


async def test_patch_connection(client: Any) -> None:
    await session(client)
    c = await connection(client, role="PUBLISHER", data="d")
    path = f"{API}/sessions/s1/connection/{c['id']}"
    r = await client.patch(path, json={"role": "MODERATOR"})
    assert r.status == 200
    body = await r.json()
    assert (body["role"], body["record"], body["serverData"]) == ("MODERATOR", True, "d")
    r = await client.patch(path, json={"record": False})
    assert (await r.json())["record"] is False
    r = await client.get(path)
    assert ((await r.json())["role"], (await r.json())["record"]) == ("MODERATOR", False)
    await assert_error_json(await client.patch(path, json={"role": "KING"}), 400, path)
    await assert_error_json(await client.patch(path, json={"record": "yes"}), 400, path)
    await assert_error_json(await client.patch(path, json=["MODERATOR"]), 400, path)
    await assert_empty(await client.patch(f"{API}/sessions/s1/connection/con_NOPE", json={}), 404)
    await assert_empty(
        await client.patch(f"{API}/sessions/nope/connection/{c['id']}", json={}), 404
    )


async def test_signal_status_codes(client: Any) -> None:
    await session(client)
    await connection(client)  # pending only: nobody is connected
    await assert_empty(await client.post(f"{API}/signal", json={"session": "nope"}), 404)
    await assert_empty(await client.post(f"{API}/signal", json={"session": "s1", "data": "x"}), 406)
    await assert_error_json(
        await client.post(f"{API}/signal", json={"to": []}), 400, f"{API}/signal"
    )
    await assert_error_json(await client.post(f"{API}/signal"), 400, f"{API}/signal")


async def test_tokens(client: Any) -> None:
    await session(client)
    r = await client.post(
        f"{API}/tokens",
        json={
            "session": "s1",
            "role": "SUBSCRIBER",
            "data": "x",
            "kurentoOptions": {"videoMaxRecvBandwidth": 9},
        },
    )
    assert r.status == 200
    t = await r.json()
    assert list(t) == [
        "id",
        "token",
        "createdAt",
        "connectionId",
        "session",
        "data",
        "role",
        "kurentoOptions",
    ]
    assert t["id"] == t["token"] and t["token"].startswith("ws://127.0.0.1:")
    assert (t["session"], t["data"], t["role"]) == ("s1", "x", "SUBSCRIBER")
    r = await client.post(f"{API}/tokens", json={"session": "s1"})
    assert "kurentoOptions" not in await r.json()
    r = await client.post(f"{API}/tokens", json={"session": "nope"})
    body = await assert_error_json(r, 404, f"{API}/tokens")
    assert body["message"] == "Session nope not found"
    await assert_error_json(await client.post(f"{API}/tokens", json={}), 400, f"{API}/tokens")


async def test_recordings_are_501(client: Any) -> None:
    await session(client)
    r = await client.post(f"{API}/recordings/start", json={"session": "s1"})
    await assert_empty(r, 501)
    await assert_error_json(
        await client.post(f"{API}/recordings/start", json={}), 400, f"{API}/recordings/start"
    )
    for method, path in [
        ("POST", f"{API}/recordings/stop/s1"),
        ("GET", f"{API}/recordings/s1"),
        ("GET", f"{API}/recordings"),
        ("DELETE", f"{API}/recordings/s1"),
    ]:
        await assert_empty(await client.request(method, path), 501)


async def test_config_endpoints(client: Any) -> None:
    cfg = await (await client.get(f"{API}/config")).json()
    assert list(cfg)[:4] == ["VERSION", "DOMAIN_OR_PUBLIC_IP", "HTTPS_PORT", "OPENVIDU_PUBLICURL"]
    assert cfg["OPENVIDU_RECORDING"] is False and cfg["OPENVIDU_WEBHOOK"] is False
    assert "OPENVIDU_WEBHOOK_ENDPOINT" not in cfg
    assert await (await client.get(f"{API}/config/openvidu-version")).text() == cfg["VERSION"]
    assert await (await client.get(f"{API}/config/openvidu-recording")).text() == "false"
    assert await (await client.get(f"{API}/config/openvidu-cdr")).text() == "false"
    health = await (await client.get(f"{API}/health")).json()
    assert health == {"status": "UP", "disconnectedMediaNodes": []}


# -- shapes ------------------------------------------------------------------------------------


async def test_session_and_connection_shapes(client: Any, clock: ManualClock) -> None:
    s = await session(client, "shape")
    assert list(s) == SESSION_KEYS
    assert (s["object"], s["sessionId"], s["createdAt"]) == ("session", "shape", clock.now_ms())
    assert s["connections"] == {"numberOfElements": 0, "content": []}
    generated = await (await client.post(f"{API}/sessions")).json()
    assert generated["customSessionId"] == ""

    c = await connection(client, "shape", data="srv")
    assert list(c) == PENDING_CONNECTION_KEYS
    assert (c["status"], c["type"], c["role"], c["record"], c["serverData"]) == (
        "pending",
        "WEBRTC",
        "PUBLISHER",
        True,
        "srv",
    )
    assert all(c[k] is None for k in PENDING_CONNECTION_KEYS[-7:] if k != "token")
    assert c["customIceServers"] == []

    # sessions list active connections by default, pending ones on request
    one = await (await client.get(f"{API}/sessions/shape")).json()
    assert one["connections"]["numberOfElements"] == 0
    one = await (await client.get(f"{API}/sessions/shape?pendingConnections=true")).json()
    assert [x["id"] for x in one["connections"]["content"]] == [c["id"]]
    # the connection list defaults to pendingConnections=true
    page = await (await client.get(f"{API}/sessions/shape/connection")).json()
    assert page["numberOfElements"] == 1
    page = await (
        await client.get(f"{API}/sessions/shape/connection?pendingConnections=false")
    ).json()
    assert page == {"numberOfElements": 0, "content": []}
    lst = await (await client.get(f"{API}/sessions")).json()
    assert lst["numberOfElements"] == 2
    assert {x["id"] for x in lst["content"]} == {"shape", generated["id"]}


async def test_overload_sheds_with_retry_after(clock: ManualClock) -> None:
    """Beyond max_inflight concurrent API requests: 503 + Retry-After, never another 5xx."""
    store = MemoryStore()
    gate = asyncio.Event()
    entered = asyncio.Event()
    real = store.list_sessions

    async def slow() -> Any:
        entered.set()
        await gate.wait()
        return await real()

    store.list_sessions = slow  # type: ignore[method-assign]
    app = make_app(
        Config(store="memory", garbage_interval_s=0, max_inflight=1), clock=clock, store=store
    )
    async with TestClient(TestServer(app), headers=AUTH) as c:
        first = asyncio.create_task(c.get(f"{API}/sessions"))
        await asyncio.wait_for(entered.wait(), 5)
        r = await c.get(f"{API}/sessions")
        assert r.status == 503 and r.headers["Retry-After"] == "1"
        gate.set()
        assert (await first).status == 200
