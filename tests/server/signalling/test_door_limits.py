"""Door limits of the /openvidu socket: join deadline, open-socket caps, per-socket rate.

Issue 13: an unjoined socket used to live forever, and 8 000 of them were accepted.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import WSMsgType

from tests.server.signalling.conftest import WAIT, Harness
from vidhub.server.limits import LIMITS, SocketCaps
from vidhub.server.signalling import SIGNALLING


async def test_socket_that_never_joins_is_closed_after_the_join_deadline(sig: Harness) -> None:
    app = sig.client.server.app
    app[SIGNALLING].join_timeout_s = 0.3
    p = await sig.peer()
    started = time.monotonic()
    # pinging is not joining: openvidu-browser pings first, a squatter may ping forever
    assert (await p.call("ping", {"interval": 5000}))["value"] == "pong"
    await asyncio.wait_for(p.closed.wait(), WAIT)
    assert time.monotonic() - started >= 0.3
    assert p.ws.close_code == 1008
    assert app[LIMITS].count("join_timeout") == 1
    metrics = await (await sig.client.get("/metrics")).text()
    assert 'vidhub_limit_hits_total{limit="join_timeout"} 1' in metrics


async def test_joined_socket_outlives_the_join_deadline(sig: Harness) -> None:
    app = sig.client.server.app
    app[SIGNALLING].join_timeout_s = 0.2
    p, _ = await sig.joined()
    idle = await sig.peer()
    await asyncio.wait_for(idle.closed.wait(), WAIT)  # the deadline has certainly passed
    assert not p.closed.is_set()
    assert (await p.call("ping", {"interval": 5000}))["value"] == "pong"
    assert app[LIMITS].count("join_timeout") == 1


class _ObservedCaps(SocketCaps):
    """Caps that tell the test when the server gave a slot back."""

    def __init__(self, max_total: int, max_per_ip: int) -> None:
        super().__init__(max_total, max_per_ip)
        self.released = asyncio.Event()

    def release(self, ip: str) -> None:
        super().release(ip)
        self.released.set()


async def test_sockets_beyond_the_cap_are_closed_with_1013_and_slots_are_returned(
    sig: Harness,
) -> None:
    # the 8 000-socket report, scaled down: a cap of 5 per address
    app = sig.client.server.app
    caps = _ObservedCaps(max_total=100, max_per_ip=5)
    app[SIGNALLING].caps = caps
    peers = [await sig.peer() for _ in range(5)]
    for p in peers:
        assert (await p.call("ping", {"interval": 5000}))["value"] == "pong"
    extra = await sig.client.ws_connect("/openvidu")
    msg = await asyncio.wait_for(extra.receive(), WAIT)
    assert msg.type is WSMsgType.CLOSE
    assert extra.close_code == 1013
    assert "Too many sockets" in str(msg.extra)
    assert app[LIMITS].count("websocket_refused") == 1
    assert all(not p.closed.is_set() for p in peers)  # the admitted ones are unaffected
    await peers[0].close()
    await asyncio.wait_for(caps.released.wait(), WAIT)
    assert caps.total == 4
    again = await sig.peer()
    assert (await again.call("ping", {"interval": 5000}))["value"] == "pong"


async def test_a_flooding_socket_gets_errors_and_others_are_served(sig: Harness) -> None:
    app = sig.client.server.app
    app[SIGNALLING].rate = 10.0  # bursts of 20
    flood = await sig.peer()
    other = await sig.peer()
    answers = await asyncio.gather(*(flood.raw("ping", {"interval": 5000}) for _ in range(60)))
    refused = [a for a in answers if "error" in a]
    assert 20 <= len(refused) <= 40
    assert all("Too many messages" in a["error"]["message"] for a in refused)
    assert (await other.call("ping", {"interval": 5000}))["value"] == "pong"
    assert app[LIMITS].count("signalling_rate") == len(refused)
