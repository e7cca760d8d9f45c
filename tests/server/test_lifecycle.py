"""Lifecycle events into the hub (server/lifecycle.py): the documented topic scheme."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.support.events import sample_event
from tests.support.proc import MS
from vidhub.client import Websocket
from vidhub.clock import ManualClock
from vidhub.config import Config
from vidhub.core.events import EVENT_NAMES, EventBus
from vidhub.protocol import jsoncodec
from vidhub.server.app import make_app
from vidhub.server.keys import EVENTS, HUB
from vidhub.server.lifecycle import TOPICS, setup_lifecycle, topic_for
from vidhub.store import MemoryStore

SECRET = "MY_SECRET"
T = 3000 * MS

DOCUMENTED = {
    "sessionCreated": "vidhub.session.created",
    "sessionDestroyed": "vidhub.session.destroyed",
    "participantJoined": "vidhub.participant.joined",
    "participantLeft": "vidhub.participant.left",
    "webrtcConnectionCreated": "vidhub.webrtc.created",
    "webrtcConnectionDestroyed": "vidhub.webrtc.destroyed",
    "signalSent": "vidhub.signal.sent",
    "recordingStatusChanged": "vidhub.recording.status_changed",
    "filterEventDispatched": "vidhub.filter.dispatched",
}


class FakeHub:
    """A ServerEventPublisher that records what it is given."""

    def __init__(self, fail: bool = False) -> None:
        self.published: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.fail = fail

    async def publish_server_event(self, topic: str, data: dict[str, Any]) -> None:
        self.published.put_nowait((topic, data))
        if self.fail:
            raise RuntimeError("hub is down")

    async def next(self) -> tuple[str, dict[str, Any]]:
        return await asyncio.wait_for(self.published.get(), T)


@pytest.fixture
async def hub_client() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], FakeHub]]:
    app = make_app(Config(store="memory", garbage_interval_s=0), store=MemoryStore())
    hub = FakeHub()
    app[HUB] = hub  # replaces whatever hub the app mounted
    cred = base64.b64encode(f"OPENVIDUAPP:{SECRET}".encode()).decode()
    async with TestClient(TestServer(app), headers={"Authorization": f"Basic {cred}"}) as c:
        yield c, hub


def test_every_event_name_has_its_documented_topic() -> None:
    assert set(EVENT_NAMES) == set(DOCUMENTED)
    for name, topic in DOCUMENTED.items():
        assert topic_for(name) == topic
    assert dict(TOPICS) == DOCUMENTED


def test_an_unknown_event_gets_a_generic_topic() -> None:
    assert topic_for("mediaNodeStatusChanged") == "vidhub.event.mediaNodeStatusChanged"


async def test_rest_session_life_is_published(
    hub_client: tuple[TestClient[web.Request, web.Application], FakeHub],
) -> None:
    c, hub = hub_client
    r = await c.post("/openvidu/api/sessions", json={"customSessionId": "abc"})
    assert r.status == 200
    created_at = (await r.json())["createdAt"]
    assert (await c.delete("/openvidu/api/sessions/abc")).status == 204

    topic, data = await hub.next()
    assert topic == "vidhub.session.created"
    assert data == {
        "sessionId": "abc",
        "uniqueSessionId": f"abc_{created_at}",
        "timestamp": created_at,
        "event": "sessionCreated",
    }
    topic, data = await hub.next()
    assert topic == "vidhub.session.destroyed"
    assert data["sessionId"] == "abc"
    assert data["event"] == "sessionDestroyed"
    assert data["reason"] == "sessionClosedByServer"


@pytest.mark.parametrize("name", EVENT_NAMES)
async def test_each_event_is_published_with_openvidu_fields_and_name(name: str) -> None:
    app = web.Application()
    app[EVENTS] = EventBus()
    hub = FakeHub()
    app[HUB] = hub
    setup_lifecycle(app)
    event = sample_event(name)
    await app[EVENTS].emit(event)
    topic, data = await hub.next()
    assert topic == DOCUMENTED[name]
    assert data == event.to_webhook_json()
    assert data["sessionId"] == "abc" and data["event"] == name
    assert list(data)[-1] == "event"


async def test_without_a_hub_events_are_not_published_and_nothing_fails() -> None:
    app = web.Application()
    app[EVENTS] = EventBus()
    setup_lifecycle(app)
    late = FakeHub()
    await app[EVENTS].emit(sample_event("sessionCreated", "a"))
    app[HUB] = late  # a hub mounted later is used from then on
    await app[EVENTS].emit(sample_event("sessionCreated", "b"))
    topic, data = await late.next()
    assert (topic, data["sessionId"]) == ("vidhub.session.created", "b")
    assert late.published.empty()


async def test_a_failing_hub_does_not_fail_the_request(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(Config(store="memory", garbage_interval_s=0), clock=ManualClock())
    app[HUB] = FakeHub(fail=True)
    cred = base64.b64encode(f"OPENVIDUAPP:{SECRET}".encode()).decode()
    with caplog.at_level(logging.ERROR):
        async with TestClient(TestServer(app), headers={"Authorization": f"Basic {cred}"}) as c:
            r = await c.post("/openvidu/api/sessions", json={"customSessionId": "x"})
            assert r.status == 200
            r = await c.get("/openvidu/api/sessions/x")
            assert r.status == 200
    assert "hub is down" in caplog.text


# -- with the real hub, over the wire ------------------------------------------------------------


async def _next_frame(ws: Websocket) -> str:
    """The next socket.io frame that is not a heartbeat."""
    while True:
        frame = await asyncio.wait_for(ws.get(), T)
        if frame not in ("2::", "2"):
            assert isinstance(frame, str)
            return frame


async def test_real_hub_delivers_one_sessions_events_to_an_expression_subscriber(
    client: TestClient[web.Request, web.Application],
) -> None:
    """``topic=vidhub.* and data.sessionId=abc`` over socket.io 0.9, with our Websocket."""
    r = await client.get(
        "/socket.io/1/", headers={"ftrack-user": "tester", "ftrack-api-key": SECRET}
    )
    assert r.status == 200
    sid = (await r.text()).split(":")[0]
    ws = Websocket(str(client.make_url(f"/socket.io/1/websocket/{sid}")), json=False)
    try:
        assert await _next_frame(ws) == "1::"
        subscribe = {
            "topic": "ftrack.meta.subscribe",
            "data": {
                "subscriber": {"id": "watcher"},
                "subscription": "topic=vidhub.* and data.sessionId=abc",
            },
        }
        ws.put_nowait("5:1+::" + jsoncodec.dumps({"name": "ftrack.event", "args": [subscribe]}))
        assert await _next_frame(ws) == '6:::1+[{"success":true}]'

        for sid_ in ("other", "abc"):
            r = await client.post("/openvidu/api/sessions", json={"customSessionId": sid_})
            assert r.status == 200
        assert (await client.delete("/openvidu/api/sessions/other")).status == 204
        assert (await client.delete("/openvidu/api/sessions/abc")).status == 204

        got = []
        for _ in range(2):
            frame = await _next_frame(ws)
            assert frame.startswith("5:::")
            packet = jsoncodec.loads(frame[4:])
            assert packet["name"] == "ftrack.event"
            got.append(packet["args"][0])
    finally:
        await ws.close()
    # the hub keeps each publisher's order, so events of "other" would have come first
    assert [(e["topic"], e["data"]["event"]) for e in got] == [
        ("vidhub.session.created", "sessionCreated"),
        ("vidhub.session.destroyed", "sessionDestroyed"),
    ]
    assert all(e["data"]["sessionId"] == "abc" for e in got)
    assert got[0]["data"]["uniqueSessionId"].startswith("abc_")
