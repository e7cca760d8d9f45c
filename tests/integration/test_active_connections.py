"""pyopenvidu and vidhub's SDK on *active* connections: a real participant (the Participant
bot: joinRoom over the signalling WebSocket, publish over aiortc) sits in a session on
``vidhub serve`` while the REST client inspects it, signals it, force-unpublishes its stream
and evicts it (openvidu.md §1.4, §1.5 #9-#11)."""

from __future__ import annotations

import asyncio
import uuid
from types import ModuleType
from typing import Any

import pytest
import requests
from aiortc import AudioStreamTrack

import vidhub.client
from tests.integration.peers import unavailable
from tests.support.proc import MS, ServerProcess
from tests.support.shapes import ACTIVE_CONNECTION_KEYS
from vidhub.client import Participant

try:
    import pyopenvidu
except ImportError:  # pragma: no cover - a dev dependency
    unavailable("pyopenvidu is not installed (pip install -e '.[dev]')")

pytestmark = pytest.mark.peers

WAIT = 10_000 * MS
FLAVOURS: list[tuple[str, ModuleType, Any]] = [
    ("pyopenvidu", pyopenvidu, lambda s: s.api + "/"),
    ("vidhub", vidhub.client, lambda s: s.url),
]


@pytest.mark.parametrize(("name", "lib", "url_of"), FLAVOURS, ids=[f[0] for f in FLAVOURS])
async def test_rest_client_on_a_live_participant(
    shared_server: ServerProcess, name: str, lib: ModuleType, url_of: Any
) -> None:
    run = asyncio.to_thread  # the REST clients block; the bot needs this loop
    ov = await run(lib.OpenVidu, url_of(shared_server), shared_server.secret, initial_fetch=False)
    session = await run(ov.create_session, "live_" + uuid.uuid4().hex[:10])
    pending = await run(session.create_webrtc_connection, "MODERATOR", "server-side")
    bot = Participant(pending.token, metadata='{"clientData":"bot"}', platform="pytest-bot")
    await bot.join()
    try:
        stream = await bot.publish(audio=AudioStreamTrack())
        assert bot.connection_id == pending.id

        # the connection is active now, with the publisher, as pyopenvidu reads it
        assert await run(pending.fetch) is True
        assert pending.active_at is not None and pending.platform == "pytest-bot"
        assert (
            pending.client_data == '{"clientData":"bot"}' and pending.server_data == "server-side"
        )
        assert [p.stream_id for p in pending.publishers] == [stream.id]
        assert pending.publishers[0].media_options["hasAudio"] is True
        assert pending.publishers[0].media_options["hasVideo"] is False
        await run(ov.fetch)
        live = ov.get_session(session.id)
        assert [c.id for c in live.connections] == [pending.id]
        conn = live.get_connection(pending.id)
        assert (conn.role, conn.active_at) == ("MODERATOR", pending.active_at)

        # signals reach the participant: to the connection, and to everyone
        got = asyncio.ensure_future(bot.wait_event("sendMessage", wait_s=WAIT))
        await run(conn.signal, "signal:direct", "to you")
        assert (await got).data["type"] == "signal:direct"
        assert (await got).data["data"] == "to you"
        got = asyncio.ensure_future(bot.wait_event("sendMessage", wait_s=WAIT))
        await run(live.signal, "signal:all", "everyone")
        assert (await got).data["data"] == "everyone"

        # force-unpublish every stream of the connection
        await run(conn.force_unpublish_all_streams)
        assert await run(conn.fetch) is True
        assert conn.publishers == []
        with pytest.raises(lib.OpenViduStreamDoesNotExistsError):
            await run(pending.publishers[0].force_unpublish)  # already gone: 404

        # evict: the participant is disconnected, and as the last one it closes the session
        evicted = asyncio.ensure_future(bot.wait_event("participantEvicted", wait_s=WAIT))
        await run(conn.force_disconnect)
        assert (await evicted).data["reason"] == "forceDisconnectByServer"
        await asyncio.wait_for(bot.closed.wait(), WAIT)
        assert conn.is_valid is False
        with pytest.raises(lib.OpenViduSessionDoesNotExistsError):
            await run(live.fetch)
    finally:
        await bot.leave()


async def test_async_sdk_on_a_live_participant(shared_server: ServerProcess) -> None:
    async with vidhub.client.AsyncOpenVidu(shared_server.url, shared_server.secret) as ov:
        session = await ov.create_session()
        pending = await session.create_webrtc_connection(role="PUBLISHER")
        bot = Participant(pending.token or "", metadata="async-bot")
        await bot.join()
        try:
            stream = await bot.publish(audio=AudioStreamTrack())
            await ov.fetch()
            conn = ov.get_session(session.id).get_connection(pending.id)
            assert conn.client_data == "async-bot"
            assert [p.stream_id for p in conn.publishers] == [stream.id]
            raw = await asyncio.to_thread(
                requests.get,
                f"{shared_server.api}/sessions/{session.id}/connection/{conn.id}",
                auth=shared_server.auth,
                timeout=10,
            )
            body = raw.json()
            assert list(body) == ACTIVE_CONNECTION_KEYS
            assert body["status"] == "active" and body["location"] == "unknown"
            assert list(body["publishers"][0]) == ["createdAt", "streamId", "mediaOptions"]
            assert list(body["publishers"][0]["mediaOptions"]) == [
                "hasAudio",
                "audioActive",
                "hasVideo",
                "filter",
            ]
            got = asyncio.ensure_future(bot.wait_event("sendMessage", wait_s=WAIT))
            await conn.signal("signal:ping", "1")
            assert (await got).data["data"] == "1"
            await conn.force_unpublish_all_streams()
            await conn.fetch()
            assert conn.publishers == []
            await conn.force_disconnect()
            await asyncio.wait_for(bot.closed.wait(), WAIT)
            assert await ov.fetch() is True
            assert session.id not in {s.id for s in ov.sessions}
        finally:
            await bot.leave()
