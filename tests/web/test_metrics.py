"""``GET /metrics`` against a real ``vidhub serve`` with Python participants sending media.

The exposition is parsed by prometheus_client's own parser; its counts must match REST.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import requests
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiortc import AudioStreamTrack, VideoStreamTrack
from prometheus_client.parser import text_string_to_metric_families

from tests.support.proc import MS, ServerProcess
from vidhub.client import Participant

WAIT_S = 20_000 * MS


def scrape(srv: ServerProcess) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    r = requests.get(f"{srv.url}/metrics", auth=srv.auth, timeout=5)
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def one(metrics: dict[str, dict[Any, float]], name: str, **labels: str) -> float:
    return metrics[name][tuple(sorted(labels.items()))]


def rest(srv: ServerProcess, method: str, path: str, **kw: Any) -> Any:
    r = requests.request(method, f"{srv.api}{path}", auth=srv.auth, timeout=5, **kw)
    r.raise_for_status()
    return r.json() if r.content else None


def test_metrics_needs_the_secret(vidhub: ServerProcess) -> None:
    assert requests.get(f"{vidhub.url}/metrics", timeout=5).status_code == 401
    r = requests.get(f"{vidhub.url}/metrics", auth=("OPENVIDUAPP", "wrong"), timeout=5)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")


async def test_metrics_parse_and_match_rest(vidhub: ServerProcess) -> None:
    for sid in ("m1", "m2"):
        await asyncio.to_thread(rest, vidhub, "POST", "/sessions", json={"customSessionId": sid})
    tokens = [
        (await asyncio.to_thread(rest, vidhub, "POST", "/sessions/m1/connection", json={}))["token"]
        for _ in range(3)
    ]  # the third stays pending
    a = Participant(tokens[0], metadata="a", host_addresses=["127.0.0.1"])
    b = Participant(tokens[1], metadata="b", host_addresses=["127.0.0.1"])
    await a.join()
    await b.join()
    try:
        await a.publish(audio=AudioStreamTrack(), video=VideoStreamTrack())
        assert a.stream is not None
        sub = await b.subscribe(a.stream.id)
        await asyncio.wait_for(sub.video.recv(), WAIT_S)  # media flows through the SFU

        sessions = await asyncio.to_thread(
            rest, vidhub, "GET", "/sessions", params={"pendingConnections": "true"}
        )
        conns = [c for s in sessions["content"] for c in s["connections"]["content"]]
        m = scrape(vidhub)
        assert one(m, "vidhub_sessions") == sessions["numberOfElements"] == 2
        for status in ("active", "pending"):
            assert one(m, "vidhub_connections", status=status) == sum(
                c["status"] == status for c in conns
            )
        assert one(m, "vidhub_connections", status="active") == 2
        assert one(m, "vidhub_publishers") == sum(len(c["publishers"] or []) for c in conns) == 1
        assert one(m, "vidhub_subscribers") == sum(len(c["subscribers"] or []) for c in conns) == 1
        assert one(m, "vidhub_rtp_packets_received_total") > 0
        first = one(m, "vidhub_rtp_packets_forwarded_total")
        assert first > 0 and one(m, "vidhub_rtp_bytes_forwarded_total") > first
        assert one(m, "vidhub_open_sockets", kind="signalling") == 2
        assert one(m, "vidhub_rest_requests_total", status="200") >= 5
        assert one(m, "process_cpu_seconds_total") > 0
        assert one(m, "process_resident_memory_bytes") > 10 * 2**20
        assert one(m, "vidhub_hub_events_published_total") > 0  # lifecycle events
        assert one(m, "vidhub_webhook_failures_total") == 0

        # counters only grow while media flows
        await asyncio.wait_for(sub.video.recv(), WAIT_S)
        for _ in range(30):
            await asyncio.wait_for(sub.video.recv(), WAIT_S)
        assert one(scrape(vidhub), "vidhub_rtp_packets_forwarded_total") > first
    finally:
        await b.leave()
        await a.leave()
    # the closed legs' packets stay counted
    m = scrape(vidhub)
    assert one(m, "vidhub_rtp_packets_forwarded_total") >= first
    assert one(m, "vidhub_connections", status="active") == 0


async def test_webhook_deliveries_and_failures_are_counted(tmp_path: Path) -> None:
    """A real webhook receiver that accepts some events and refuses others (400)."""
    got: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        body = await request.json()
        await got.put(body)
        return web.Response(status=400 if body.get("sessionId") == "refused" else 200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    receiver = TestServer(app, host="127.0.0.1")
    await receiver.start_server()
    srv = ServerProcess(
        tmp_path / "data",
        extra_env={
            "OPENVIDU_WEBHOOK": "true",
            "OPENVIDU_WEBHOOK_ENDPOINT": str(receiver.make_url("/hook")),
            "OPENVIDU_WEBHOOK_EVENTS": '["sessionCreated"]',
        },
    )
    await asyncio.to_thread(srv.start)
    try:
        for sid in ("taken", "refused"):
            await asyncio.to_thread(rest, srv, "POST", "/sessions", json={"customSessionId": sid})
        seen = {(await asyncio.wait_for(got.get(), WAIT_S))["sessionId"] for _ in range(2)}
        assert seen == {"taken", "refused"}

        def counted() -> bool:
            m = scrape(srv)
            return (
                one(m, "vidhub_webhook_deliveries_total") == 1
                and one(m, "vidhub_webhook_failures_total") == 1
            )

        # the receiver answered; the sender books the answer right after
        for _ in range(100):
            if await asyncio.to_thread(counted):
                break
            await asyncio.sleep(0.05)  # polling another process's counters: no event to wait on
        assert await asyncio.to_thread(counted)
    finally:
        await asyncio.to_thread(srv.stop)
        await receiver.close()
