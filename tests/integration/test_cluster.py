"""Three ``vidhub serve`` nodes on one loopback ``redis-server``: one cluster.

What a user of a cluster relies on, with the real clients: a token leads to the node that
hosts its session, whichever node made it; the unmodified ``ftrack_api`` EventHub connected
to one node receives what is published on another (replies included) and the lifecycle events
of sessions anywhere in the cluster; ``kill -9`` of a node ends its sessions (``nodeCrashed``)
within 5 s, once, on the hub and as webhooks, and touches no other node's; a Redis restart
is survived. The tests run in file order on one cluster; the last two disrupt it and each
leaves it whole again.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.hubs import acked, pump
from tests.support.proc import MS, ServerProcess, rest
from tests.support.redis import RedisServer, running_redis
from vidhub.client import Participant

ftrack_hub = pytest.importorskip("ftrack_api.event.hub")
ftrack_base = pytest.importorskip("ftrack_api.event.base")

pytestmark = [pytest.mark.redis, pytest.mark.peers]

FtrackEvent = ftrack_base.Event
DEADLINE = 10_000 * MS


class Webhooks:
    """A loopback HTTP endpoint that records the webhook bodies it receives."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        hooks = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()
                with hooks.changed:
                    hooks.bodies.append(body)
                    hooks.changed.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def matching(self, **fields: Any) -> list[dict[str, Any]]:
        with self.changed:
            return [b for b in self.bodies if all(b.get(k) == v for k, v in fields.items())]

    def wait_for(self, timeout: float = DEADLINE, **fields: Any) -> dict[str, Any]:
        with self.changed:
            ok = self.changed.wait_for(lambda: self.matching(**fields), timeout)
        assert ok, f"no webhook {fields}"
        return self.matching(**fields)[0]


class Cluster:
    def __init__(self, redis: RedisServer, nodes: list[ServerProcess], hooks: Webhooks) -> None:
        self.redis = redis
        self.nodes = nodes
        self.hooks = hooks


def node_args(redis: RedisServer) -> list[str]:
    return ["--store", "redis", "--redis-url", redis.db_url(2)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root: Path = tmp_path_factory.mktemp("cluster")
    hooks = Webhooks()
    with running_redis(root / "redis", persistent=True) as redis:
        nodes: list[ServerProcess] = []
        try:
            for n in (1, 2, 3):
                srv = ServerProcess(
                    root / f"n{n}",
                    extra_env={
                        "VIDHUB_NODE_ID": f"n{n}",
                        "OPENVIDU_WEBHOOK": "true",
                        "OPENVIDU_WEBHOOK_ENDPOINT": hooks.url,
                    },
                )
                srv.extra_args = [*node_args(redis), "--public-url", srv.url]
                nodes.append(srv.start())
            yield Cluster(redis, nodes, hooks)
        finally:
            for srv in nodes:
                srv.stop()
            hooks.server.shutdown()
            hooks.server.server_close()


def new_session(node: ServerProcess) -> str:
    """A session created through ``node`` (all nodes idle: it is placed there)."""
    sid = "cl_" + uuid.uuid4().hex[:12]
    r = rest(node, "POST", "/sessions", json={"customSessionId": sid})
    assert r.status_code == 200, r.text
    return sid


def new_token(node: ServerProcess, sid: str) -> str:
    r = rest(node, "POST", f"/sessions/{sid}/connection", json={})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def port_of(token: str) -> int | None:
    return urlsplit(token).port


async def joined(token: str) -> Participant:
    bot = Participant(token)
    await bot.join()
    return bot


# -- the real ftrack client ------------------------------------------------------------------
@pytest.fixture
def ftrack(cluster: Cluster) -> Iterator[Callable[[ServerProcess], Any]]:
    made: list[Any] = []

    def connect(node: ServerProcess) -> Any:
        hub = ftrack_hub.EventHub(node.url, "alice", node.secret)
        hub.connect()
        made.append(hub)
        return hub

    yield connect
    for hub in made:
        if hub.connected:
            hub.disconnect()


def test_an_ftrack_hub_receives_what_is_published_on_another_node(
    cluster: Cluster, ftrack: Callable[[ServerProcess], Any]
) -> None:
    n1, n2, _ = cluster.nodes
    listener, publisher = ftrack(n1), ftrack(n2)
    topic = f"cluster.{uuid.uuid4().hex[:8]}"
    got: list[Any] = []
    listener.subscribe(f"topic={topic}", got.append)
    assert pump([listener], acked(listener))
    for i in range(3):
        publisher.publish(FtrackEvent(topic=topic, data={"i": i}))
    assert pump([listener, publisher], lambda: len(got) == 3)
    assert [e["data"]["i"] for e in got] == [0, 1, 2]  # in publish order


def test_a_reply_reaches_the_publisher_on_another_node(
    cluster: Cluster, ftrack: Callable[[ServerProcess], Any]
) -> None:
    n1, _, n3 = cluster.nodes
    asker, answerer = ftrack(n1), ftrack(n3)
    topic = f"cluster.ask.{uuid.uuid4().hex[:8]}"
    answerer.subscribe(f"topic={topic}", lambda event: {"answer": event["data"]["q"] * 2})
    assert pump([asker, answerer], acked(asker, answerer))
    replies: list[Any] = []
    asker.publish(FtrackEvent(topic=topic, data={"q": 21}), on_reply=replies.append)
    assert pump([asker, answerer], lambda: len(replies) == 1)
    assert replies[0]["data"] == {"answer": 42}


# -- placement: tokens lead to the hosting node ------------------------------------------------
async def test_a_token_made_anywhere_leads_to_the_node_hosting_the_session(
    cluster: Cluster,
) -> None:
    n1, n2, n3 = cluster.nodes
    sid = await asyncio.to_thread(new_session, n2)  # hosted on n2
    token = await asyncio.to_thread(new_token, n1, sid)
    assert token.startswith(f"ws://127.0.0.1:{n2.port}?sessionId={sid}&token=")
    bot = await joined(token)  # openvidu-browser and Participant just follow the token
    try:
        seen = await asyncio.to_thread(rest, n3, "GET", f"/sessions/{sid}")
        assert seen.status_code == 200
        (conn,) = seen.json()["connections"]["content"]
        assert (conn["id"], conn["status"]) == (bot.connection_id, "active")
        # a second participant, token made on n3, lands in the same room on n2
        token3 = await asyncio.to_thread(new_token, n3, sid)
        assert port_of(token3) == n2.port
        seen_join = asyncio.ensure_future(bot.wait_event("participantJoined"))
        other = await joined(token3)
        try:
            assert (await seen_join).data["id"] == other.connection_id
        finally:
            await other.leave()
    finally:
        await bot.leave()


def test_the_hub_on_one_node_sees_sessions_created_on_another(
    cluster: Cluster, ftrack: Callable[[ServerProcess], Any]
) -> None:
    n1, _, n3 = cluster.nodes
    listener = ftrack(n1)
    got: list[Any] = []
    listener.subscribe("topic=vidhub.session.created", got.append)
    assert pump([listener], acked(listener))
    sid = new_session(n3)
    assert pump([listener], lambda: any(e["data"]["sessionId"] == sid for e in got))
    (created,) = [e for e in got if e["data"]["sessionId"] == sid]
    assert created["data"]["event"] == "sessionCreated"


# -- node death --------------------------------------------------------------------------------
async def test_kill_9_of_a_node_ends_its_sessions_once_and_only_its_own(
    cluster: Cluster,
) -> None:
    from tests.support.hubwatch import watch_hub

    n1, n2, n3 = cluster.nodes
    hooks = cluster.hooks
    on2 = await asyncio.to_thread(new_session, n2)
    idle2 = await asyncio.to_thread(new_session, n2)  # hosted there, nobody joined
    on1, on3 = await asyncio.to_thread(new_session, n1), await asyncio.to_thread(new_session, n3)
    bots = [await joined(await asyncio.to_thread(new_token, n1, s)) for s in (on2, on1, on3)]
    crashed = f"topic=vidhub.session.destroyed and data.sessionId={on2}"
    try:
        async with watch_hub(n1.url, n1.secret, crashed) as destroyed:
            killed_at = time.monotonic()
            await asyncio.to_thread(n2.kill9)
            await asyncio.wait_for(destroyed.wait(), DEADLINE)
            noticed_s = time.monotonic() - killed_at
        assert noticed_s < 5.0, f"sessionDestroyed {noticed_s:.1f}s after kill -9"
        for sid in (on2, idle2):
            body = await asyncio.to_thread(hooks.wait_for, event="sessionDestroyed", sessionId=sid)
            assert body["reason"] == "nodeCrashed"
        left = await asyncio.to_thread(hooks.wait_for, event="participantLeft", sessionId=on2)
        assert (left["connectionId"], left["reason"]) == (bots[0].connection_id, "nodeCrashed")
        for sid in (on2, idle2):
            assert (await asyncio.to_thread(rest, n1, "GET", f"/sessions/{sid}")).status_code == 404
        # sessions hosted by live nodes are untouched, their participants still connected
        for sid, bot in ((on1, bots[1]), (on3, bots[2])):
            seen = (await asyncio.to_thread(rest, n3, "GET", f"/sessions/{sid}")).json()
            assert [c["id"] for c in seen["connections"]["content"]] == [bot.connection_id]
            assert not bot.closed.is_set()

        # n2 comes back with the same id: it reconciles, nothing is reported twice
        await asyncio.to_thread(n2.start)
        barrier = await asyncio.to_thread(new_session, n2)
        assert (
            await asyncio.to_thread(rest, n2, "DELETE", f"/sessions/{barrier}")
        ).status_code == 204
        # n2's webhooks go out in order: once this one is in, any earlier one from n2 is too
        await asyncio.to_thread(hooks.wait_for, event="sessionCreated", sessionId=barrier)
        for sid in (on2, idle2):
            assert len(hooks.matching(event="sessionDestroyed", sessionId=sid)) == 1
        assert len(hooks.matching(event="participantLeft", sessionId=on2)) == 1
    finally:
        for bot in bots:
            await bot.leave()


# -- Redis restart -----------------------------------------------------------------------------
def _health(node: ServerProcess) -> tuple[int, dict[str, Any]]:
    try:
        r = requests.get(node.url + "/health", timeout=2)
    except requests.RequestException:
        return 0, {}
    return r.status_code, r.json()


def _until(cond: Callable[[], bool], timeout: float = DEADLINE) -> bool:
    """Poll ``cond`` (the state of other processes: no event to wait on) until it holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_a_redis_restart_is_survived_with_no_lost_state(
    cluster: Cluster, ftrack: Callable[[ServerProcess], Any]
) -> None:
    n1, _, n3 = cluster.nodes
    sid = new_session(n1)
    token = new_token(n3, sid)
    listener, publisher = ftrack(n1), ftrack(n3)
    topic = f"cluster.after.{uuid.uuid4().hex[:8]}"
    got: list[Any] = []
    listener.subscribe(f"topic={topic}", got.append)
    assert pump([listener], acked(listener))
    publisher.publish(FtrackEvent(topic=topic, data={"i": 0}))
    assert pump([listener, publisher], lambda: len(got) == 1)

    cluster.redis.stop()
    try:
        # every node says it cannot reach Redis, and REST answers 503, not 500
        assert _until(
            lambda: all(_health(n)[1].get("redis") == "unreachable" for n in cluster.nodes)
        )
        assert rest(n1, "GET", f"/sessions/{sid}").status_code == 503
    finally:
        cluster.redis.start()
    assert _until(lambda: all(_health(n)[0] == 200 for n in cluster.nodes))
    assert "cannot reach Redis" in n1.log()
    # the state is still there (append-only Redis), and nobody was taken for dead
    seen = rest(n3, "GET", f"/sessions/{sid}?pendingConnections=true")
    assert seen.status_code == 200
    assert [c["token"] for c in seen.json()["connections"]["content"]] == [token]
    assert {s["id"] for s in rest(n1, "GET", "/sessions").json()["content"]} >= {sid}
    # the hub still spans the nodes once they resubscribed
    assert pump([listener, publisher], acked(listener, publisher))

    def delivered_after_restart() -> bool:
        publisher.publish(FtrackEvent(topic=topic, data={"i": len(got)}))
        return pump([listener, publisher], lambda: len(got) >= 2, 500 * MS)

    assert _until(delivered_after_restart)


# -- resumption on another node ----------------------------------------------------------------
async def test_a_resumable_hub_session_resumes_on_another_node(cluster: Cluster) -> None:
    import aiohttp

    from vidhub.protocol import jsoncodec

    n1, n2, n3 = cluster.nodes
    topic = f"cluster.resume.{uuid.uuid4().hex[:8]}"
    auth = {"ftrack-user": "alice", "ftrack-api-key": n1.secret}

    def frame(ack: int, topic_: str, data: dict[str, Any]) -> str:
        event = {"id": uuid.uuid4().hex, "topic": topic_, "data": data, "source": {"id": "me"}}
        return f"5:{ack}+::" + jsoncodec.dumps({"name": "ftrack.event", "args": [event]})

    async def next_text(ws: aiohttp.ClientWebSocketResponse, prefix: str) -> str:
        async with asyncio.timeout(DEADLINE):  # heartbeats (2::) do not extend it
            while True:
                msg = await ws.receive()
                assert msg.type is aiohttp.WSMsgType.TEXT, msg
                if msg.data.startswith(prefix):
                    return str(msg.data)

    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{n1.url}/socket.io/1/", headers={**auth, "vidhub-resume": "new"}
        ) as r:
            sid = (await r.text()).split(":")[0]
        sub = {"subscriber": {"id": "resumer"}, "subscription": f"topic={topic}"}
        async with http.get(f"{n1.url}/socket.io/1/", headers=auth) as r:
            witness_sid = (await r.text()).split(":")[0]
        witness = await http.ws_connect(
            f"ws://127.0.0.1:{n1.port}/socket.io/1/websocket/{witness_sid}"
        )
        await witness.send_str(frame(1, "ftrack.meta.subscribe", sub))
        await next_text(witness, "6:::1+")
        async with http.ws_connect(f"ws://127.0.0.1:{n1.port}/socket.io/1/websocket/{sid}") as ws:
            await next_text(ws, "1::")
            await ws.send_str(frame(1, "ftrack.meta.subscribe", sub))
            await next_text(ws, "6:::1+")
        # the socket is gone; events published on n2 meanwhile are kept for it on n1
        for i in range(3):
            await ws_publish(http, n2, frame(1, topic, {"i": i}))
        for _ in range(3):  # they reached n1 (events in flight during a handover may be missed)
            await next_text(witness, "5:::")
        await witness.close()
        async with http.get(
            f"{n3.url}/socket.io/1/", headers={**auth, "vidhub-resume": f"{sid}:"}
        ) as r:
            sid3 = (await r.text()).split(":")[0]
        async with http.ws_connect(f"ws://127.0.0.1:{n3.port}/socket.io/1/websocket/{sid3}") as ws3:
            await next_text(ws3, "1::")
            got = [jsoncodec.loads((await next_text(ws3, "5:::"))[4:]) for _ in range(3)]
            assert [g["args"][0]["data"]["i"] for g in got] == [0, 1, 2]
            # and it keeps receiving, now on n3, what is published anywhere
            await ws_publish(http, n1, frame(1, topic, {"i": 3}))
            after = jsoncodec.loads((await next_text(ws3, "5:::"))[4:])
            assert after["args"][0]["data"]["i"] == 3


async def ws_publish(http: Any, node: ServerProcess, text: str) -> None:
    """Publish one event through a fresh socket on ``node`` and wait for its ack."""
    auth = {"ftrack-user": "bob", "ftrack-api-key": node.secret}
    async with http.get(f"{node.url}/socket.io/1/", headers=auth) as r:
        sid = (await r.text()).split(":")[0]
    async with http.ws_connect(f"ws://127.0.0.1:{node.port}/socket.io/1/websocket/{sid}") as ws:
        await ws.send_str(text)
        while True:
            msg = await asyncio.wait_for(ws.receive(), DEADLINE)
            if str(msg.data).startswith("6:::"):
                return
