"""Two ``vidhub serve`` nodes on one Redis (``--store redis``) serve the same sessions.

Node A and node B are separate processes that share nothing but a loopback ``redis-server``:
whatever one creates over REST the other lists and serves, and a token is consumed once
whichever node (or store instance) tries it. Live media and signalling stay on the node a
participant's socket reached; REST actions on a live participant (signal, force-disconnect,
session close, force-unpublish) made through the other node are relayed to it over Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.proc import ServerProcess, rest
from tests.support.redis import RedisServer, running_redis
from vidhub.client import Participant
from vidhub.client.participant import ParticipantError
from vidhub.core.models import SessionId
from vidhub.core.store import ActivationInfo
from vidhub.store import RedisStore

pytestmark = pytest.mark.redis


class Cluster:
    def __init__(self, redis: RedisServer, a: ServerProcess, b: ServerProcess) -> None:
        self.redis, self.a, self.b = redis, a, b


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root: Path = tmp_path_factory.mktemp("multinode")
    with running_redis(root / "redis") as redis:
        args = ["--store", "redis", "--redis-url", redis.db_url(1)]
        a = ServerProcess(root / "a", extra_args=args).start()
        try:
            b = ServerProcess(root / "b", extra_args=args).start()
            try:
                yield Cluster(redis, a, b)
            finally:
                b.stop()
        finally:
            a.stop()


def new_session(node: ServerProcess) -> str:
    sid = "mn_" + uuid.uuid4().hex[:12]
    r = rest(node, "POST", "/sessions", json={"customSessionId": sid})
    assert r.status_code == 200, r.text
    return sid


def on_node(token: str, node: ServerProcess) -> str:
    """The same token, pointed at ``node``'s signalling port."""
    parts = urlsplit(token)
    return parts._replace(netloc=f"127.0.0.1:{node.port}").geturl()


def token_id(token: str) -> str:
    return parse_qs(urlsplit(token).query)["token"][0]


def test_a_session_created_on_one_node_is_served_by_the_other(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    sid = new_session(a)
    assert sid in [s["id"] for s in rest(b, "GET", "/sessions").json()["content"]]
    got = rest(b, "GET", f"/sessions/{sid}")
    assert got.status_code == 200 and got.json()["sessionId"] == sid
    # the id is taken on every node
    assert rest(b, "POST", "/sessions", json={"customSessionId": sid}).status_code == 409

    made = rest(b, "POST", f"/sessions/{sid}/connection", json={"data": "from-b"})
    assert made.status_code == 200, made.text
    cid = made.json()["id"]
    seen = rest(a, "GET", f"/sessions/{sid}?pendingConnections=true").json()["connections"][
        "content"
    ]
    assert [(c["id"], c["serverData"], c["status"]) for c in seen] == [(cid, "from-b", "pending")]

    patched = rest(a, "PATCH", f"/sessions/{sid}/connection/{cid}", json={"role": "SUBSCRIBER"})
    assert patched.status_code == 200
    assert rest(b, "GET", f"/sessions/{sid}/connection/{cid}").json()["role"] == "SUBSCRIBER"

    assert rest(a, "DELETE", f"/sessions/{sid}").status_code == 204
    assert rest(b, "GET", f"/sessions/{sid}").status_code == 404
    assert sid not in [s["id"] for s in rest(b, "GET", "/sessions").json()["content"]]


async def test_a_token_joins_once_across_nodes(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    sid = await asyncio.to_thread(new_session, a)
    made = await asyncio.to_thread(rest, a, "POST", f"/sessions/{sid}/connection", json={})
    token, cid = made.json()["token"], made.json()["id"]

    # the token minted on A joins on B; A then reports the participant active
    on_b = Participant(on_node(token, b), metadata="joined-on-b")
    await on_b.join()
    try:
        assert on_b.connection_id == cid
        seen = await asyncio.to_thread(rest, a, "GET", f"/sessions/{sid}/connection/{cid}")
        assert seen.json()["status"] == "active"
        assert seen.json()["clientData"] == "joined-on-b"
        # and it cannot join a second time, on A
        again = Participant(token)
        with pytest.raises(ParticipantError) as refused:
            await again.join()
        assert refused.value.code == 401  # OpenVidu's USER_UNAUTHORIZED
        await again.leave()
    finally:
        await on_b.leave()
    # the last participant left (on B): A no longer has the session either
    gone = await asyncio.to_thread(rest, a, "GET", f"/sessions/{sid}")
    assert gone.status_code == 404


async def test_concurrent_activation_from_two_store_instances(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    sid = await asyncio.to_thread(new_session, a)
    made = await asyncio.to_thread(rest, a, "POST", f"/sessions/{sid}/connection", json={})
    tok, cid = token_id(made.json()["token"]), made.json()["id"]
    # what node A's and node B's stores do when two joins race: one wins
    stores = [RedisStore(cluster.redis.db_url(1)) for _ in range(2)]
    for s in stores:
        await s.start()
    try:
        results = await asyncio.gather(
            *(
                s.activate(SessionId(sid), tok, ActivationInfo(1, "127.0.0.1", "race", f"{n}"))
                for n in range(10)
                for s in stores
            )
        )
    finally:
        for s in stores:
            await s.close()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].id == cid
    seen = await asyncio.to_thread(rest, b, "GET", f"/sessions/{sid}/connection/{cid}")
    assert seen.json()["status"] == "active"
    assert seen.json()["clientData"] == winners[0].client_data
    assert (await asyncio.to_thread(rest, b, "DELETE", f"/sessions/{sid}")).status_code == 204


def test_restarting_a_node_keeps_other_nodes_participants(cluster: Cluster) -> None:
    """A node that restarts drops only the connections it served itself, never another's."""
    a, b = cluster.a, cluster.b
    sid = new_session(a)
    token = rest(a, "POST", f"/sessions/{sid}/connection", json={}).json()["token"]

    async def scenario() -> None:
        async with Participant(token) as bot:  # joins through node A
            await asyncio.to_thread(b.restart)
            got = rest(b, "GET", f"/sessions/{sid}/connection/{bot.connection_id}")
            assert got.status_code == 200 and got.json()["status"] == "active"

    asyncio.run(scenario())


# -- REST actions on live participants reach the node serving them (cluster relay) ------------
async def _joined(node: ServerProcess, sid: str, via: ServerProcess, **body: Any) -> Participant:
    """A bot joined through ``via`` with a token made over REST on ``node``."""
    made = await asyncio.to_thread(rest, node, "POST", f"/sessions/{sid}/connection", json=body)
    assert made.status_code == 200, made.text
    bot = Participant(on_node(made.json()["token"], via))
    await bot.join()
    return bot


async def test_a_rest_signal_through_b_reaches_a_participant_on_a(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    sid = await asyncio.to_thread(new_session, a)
    on_a = await _joined(a, sid, via=a)
    try:
        got = asyncio.ensure_future(on_a.wait_event("sendMessage"))
        sent = await asyncio.to_thread(
            rest,
            b,
            "POST",
            "/signal",
            json={"session": sid, "to": [on_a.connection_id], "type": "note", "data": "via B"},
        )
        assert sent.status_code == 200, sent.text
        assert (await got).data == {"data": "via B", "type": "note"}
    finally:
        await on_a.leave()


async def test_a_broadcast_signal_through_b_reaches_both_nodes(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    sid = await asyncio.to_thread(new_session, a)
    on_a = await _joined(a, sid, via=a)
    on_b = await _joined(a, sid, via=b)
    try:
        got = [asyncio.ensure_future(p.wait_event("sendMessage")) for p in (on_a, on_b)]
        sent = await asyncio.to_thread(
            rest, b, "POST", "/signal", json={"session": sid, "type": "all", "data": "hello"}
        )
        assert sent.status_code == 200, sent.text
        for fut in got:
            assert (await fut).data == {"data": "hello", "type": "all"}
    finally:
        await on_a.leave()
        await on_b.leave()


async def test_deleting_a_connection_through_b_evicts_the_participant_on_a(
    cluster: Cluster,
) -> None:
    a, b = cluster.a, cluster.b
    sid = await asyncio.to_thread(new_session, a)
    on_a = await _joined(a, sid, via=a)
    stays = await _joined(a, sid, via=a)  # keeps the session open
    try:
        evicted = asyncio.ensure_future(on_a.wait_event("participantEvicted"))
        left = asyncio.ensure_future(
            stays.wait_event(
                "participantLeft", lambda e: e.data.get("connectionId") == on_a.connection_id
            )
        )
        gone = await asyncio.to_thread(
            rest, b, "DELETE", f"/sessions/{sid}/connection/{on_a.connection_id}"
        )
        assert gone.status_code == 204, gone.text
        assert (await evicted).data["reason"] == "forceDisconnectByServer"
        assert (await left).data["reason"] == "forceDisconnectByServer"
        await asyncio.wait_for(on_a.closed.wait(), 10)
        seen = await asyncio.to_thread(rest, a, "GET", f"/sessions/{sid}")
        assert [c["id"] for c in seen.json()["connections"]["content"]] == [stays.connection_id]
    finally:
        await on_a.leave()
        await stays.leave()


async def test_closing_a_session_through_b_evicts_participants_on_a(cluster: Cluster) -> None:
    a, b = cluster.a, cluster.b
    sid = await asyncio.to_thread(new_session, a)
    on_a = await _joined(a, sid, via=a)
    try:
        evicted = asyncio.ensure_future(on_a.wait_event("participantEvicted"))
        assert (await asyncio.to_thread(rest, b, "DELETE", f"/sessions/{sid}")).status_code == 204
        assert (await evicted).data["reason"] == "sessionClosedByServer"
        await asyncio.wait_for(on_a.closed.wait(), 10)
    finally:
        await on_a.leave()


async def test_force_unpublish_through_b_stops_a_stream_on_a(cluster: Cluster) -> None:
    from aiortc import AudioStreamTrack

    a, b = cluster.a, cluster.b
    sid = await asyncio.to_thread(new_session, a)
    on_a = await _joined(a, sid, via=a)
    try:
        stream = await on_a.publish(audio=AudioStreamTrack())
        unpublished = asyncio.ensure_future(on_a.wait_event("participantUnpublished"))
        gone = await asyncio.to_thread(rest, b, "DELETE", f"/sessions/{sid}/stream/{stream.id}")
        assert gone.status_code == 204, gone.text
        assert (await unpublished).data["reason"] == "forceUnpublishByServer"
        again = await asyncio.to_thread(rest, b, "DELETE", f"/sessions/{sid}/stream/{stream.id}")
        assert again.status_code == 404
    finally:
        await on_a.leave()
