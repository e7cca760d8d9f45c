"""``vidhub.client.AsyncOpenVidu`` (aiohttp) through the scenarios of test_python_clients.py."""

from __future__ import annotations

import asyncio
import re
import uuid

import aiohttp
import pytest

from tests.support.proc import ServerProcess
from vidhub.client import (
    AsyncOpenVidu,
    OpenViduConnectionDoesNotExistsError,
    OpenViduSessionDoesNotExistsError,
    OpenViduSessionExistsError,
)
from vidhub.client.openvidu_async import OpenViduPublisher
from vidhub.client.openvidu_errors import OpenViduStreamDoesNotExistsError

TOKEN_RE = re.compile(r"^ws://127\.0\.0\.1:\d+\?sessionId=[\w-]+&token=tok_[A-Z][0-9A-Za-z]{15}$")


def sid() -> str:
    return "as_" + uuid.uuid4().hex[:12]


async def test_sessions_and_connections(shared_server: ServerProcess) -> None:
    async with AsyncOpenVidu(shared_server.url, shared_server.secret) as ov:
        custom = sid()
        s = await ov.create_session(custom_session_id=custom)
        assert ov.get_session(custom) is s
        with pytest.raises(OpenViduSessionExistsError):
            await ov.create_session(custom_session_id=custom)
        with pytest.raises(ValueError):
            await ov.create_session(custom_session_id="bad id")

        c = await s.create_webrtc_connection(
            role="SUBSCRIBER", data="bob", video_max_send_bandwidth=300, record=False
        )
        assert TOKEN_RE.match(c.token or "")
        assert (c.role, c.server_data, c.record) == ("SUBSCRIBER", "bob", False)
        assert c.kurento_options == {"videoMaxSendBandwidth": 300}
        assert await c.fetch() is False

        await c.update(role="MODERATOR", record=True)
        assert (c.role, c.record) == ("MODERATOR", True)

        with pytest.raises(OpenViduConnectionDoesNotExistsError):
            await s.signal("signal:x", "y")  # nobody connected: 406

        async with AsyncOpenVidu(
            shared_server.url + "/openvidu/api/", shared_server.secret
        ) as other:
            assert custom in {x.id for x in other.sessions}
            assert await other.fetch() is False
            cfg = await other.get_config()
            assert cfg["VERSION"].startswith("2.32.")

        await c.force_disconnect()
        assert c.is_valid is False
        s2 = await ov.create_session()
        await s2.close()
        assert s2.is_valid is False
        with pytest.raises(OpenViduSessionDoesNotExistsError):
            ov.get_session(s2.id)


async def test_errors_after_close(shared_server: ServerProcess) -> None:
    ov = AsyncOpenVidu(shared_server.url, shared_server.secret, initial_fetch=False)
    try:
        s = await ov.create_session(custom_session_id=sid())
        c = await s.create_webrtc_connection()
        stale = await s.create_webrtc_connection()
        await s.close()
        with pytest.raises(OpenViduSessionDoesNotExistsError):
            await stale.fetch()  # GET connection of a missing session: 400
        assert stale.is_valid is False
        with pytest.raises(OpenViduSessionDoesNotExistsError):
            await c.force_disconnect()  # DELETE connection of a missing session: 400
        with pytest.raises(OpenViduSessionDoesNotExistsError):
            await s.create_webrtc_connection()  # fails early: closed
    finally:
        await ov.close()
        await ov.close()  # idempotent


async def test_unpublish_unknown(shared_server: ServerProcess) -> None:
    async with AsyncOpenVidu(shared_server.url, shared_server.secret, initial_fetch=False) as ov:
        s = await ov.create_session(custom_session_id=sid())
        pub = OpenViduPublisher(ov._http, s.id, {"streamId": "str_CAM_Abcd_con_X", "createdAt": 0})
        with pytest.raises(OpenViduStreamDoesNotExistsError):
            await pub.force_unpublish()
        gone = OpenViduPublisher(ov._http, "no_such_session", {"streamId": "s", "createdAt": 0})
        with pytest.raises(OpenViduSessionDoesNotExistsError):
            await gone.force_unpublish()


async def test_wrong_secret_and_timeout(shared_server: ServerProcess) -> None:
    with pytest.raises(aiohttp.ClientResponseError) as info:
        async with AsyncOpenVidu(shared_server.url, "wrong"):
            pass
    assert info.value.status == 401

    held: list[asyncio.StreamWriter] = []  # accepted, never answered

    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        ov = AsyncOpenVidu(f"http://127.0.0.1:{port}", "x", initial_fetch=False, timeout=0.2)
        with pytest.raises(TimeoutError):
            await ov.create_session()
        await ov.close()
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()
