"""Two ``vidhub serve`` nodes on one Redis (``--store redis``) serve the same sessions.

Node A and node B are separate processes that share nothing but a loopback ``redis-server``:
whatever one creates over REST the other lists and serves, and a token is consumed once
whichever node (or store instance) tries it. Live media and signalling stay on the node a
participant's socket reached; only the store is shared.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.proc import ServerProcess
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


def rest(node: ServerProcess, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, node.api + path, auth=node.auth, timeout=10, **kw)


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
