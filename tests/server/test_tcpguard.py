"""The TCP door of ``vidhub serve``: connection caps, the header deadline, quiet 400s.

Issue 13: raw connections that never spoke and 1-byte/s header senders were kept forever,
and an oversized header gave a 9-line traceback per request with the header's start echoed
in the log and in the 400 body.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from tests.support.proc import MS
from vidhub.config import Config
from vidhub.server.app import make_app
from vidhub.server.limits import LIMITS, LimitCounters
from vidhub.server.tcpguard import TcpGuard, serving
from vidhub.store import MemoryStore

WAIT = 5000 * MS
AUTH = b"Authorization: Basic T1BFTlZJRFVBUFA6TVlfU0VDUkVU\r\n"


@asynccontextmanager
async def guarded(**limits: Any) -> AsyncIterator[tuple[int, LimitCounters]]:
    """A real app served through the door on a free loopback port."""
    cfg = replace(Config(store="memory", garbage_interval_s=0), **limits)
    app = make_app(cfg, store=MemoryStore())
    counters = app[LIMITS]
    guard = TcpGuard(
        counters,
        max_connections=cfg.max_tcp_connections,
        max_per_ip=cfg.max_tcp_connections_per_ip,
        header_timeout_s=cfg.header_timeout_s,
    )
    async with serving(app, guard, "127.0.0.1", 0) as port:
        yield port, counters


async def read_all(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.read(), WAIT)


async def test_connection_that_never_sends_is_closed_with_408() -> None:
    async with guarded(header_timeout_s=0.3) as (port, counters):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        data = await read_all(reader)  # returns at EOF: the server closed it
        assert time.monotonic() - started >= 0.3
        assert data.startswith(b"HTTP/1.1 408 ")
        assert counters.count("header_timeout") == 1
        writer.close()


async def test_slow_header_client_is_closed_at_the_deadline() -> None:
    async with guarded(header_timeout_s=0.5) as (port, counters):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"GET /openvidu/api/sessions HTTP/1.1\r\nHost: x\r\n" + AUTH + b"\r\n"
        started = time.monotonic()
        closed = asyncio.create_task(read_all(reader))
        for byte in request:  # a trickle: one byte per 50 ms, never completing in time
            if closed.done():
                break
            writer.write(bytes([byte]))
            await asyncio.sleep(0.05)
        data = await closed
        assert 0.5 <= time.monotonic() - started < 0.5 + WAIT
        assert data.startswith(b"HTTP/1.1 408 ")
        assert counters.count("header_timeout") == 1
        writer.close()


async def test_keepalive_requests_are_served_and_the_deadline_rearms() -> None:
    async with guarded(header_timeout_s=0.4) as (port, counters):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
        for _ in range(3):
            writer.write(request)
            status = await asyncio.wait_for(reader.readline(), WAIT)
            assert status.startswith(b"HTTP/1.1 200 ")
            await asyncio.wait_for(reader.readuntil(b'"UP"}'), WAIT)
        writer.write(b"GET /health HTTP/1.1\r\n")  # a fourth request that never finishes
        assert (await read_all(reader)).startswith(b"HTTP/1.1 408 ")
        assert counters.count("header_timeout") == 1
        writer.close()


async def test_connections_beyond_the_per_address_cap_get_503_and_retry_after() -> None:
    async with guarded(max_tcp_connections_per_ip=3) as (port, counters):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        data = await read_all(reader)
        assert data.startswith(b"HTTP/1.1 503 ")
        assert b"Retry-After: 5\r\n" in data
        assert counters.count("tcp_refused") == 1
        writer.close()
        # the held ones still work
        r, w = held[0]
        w.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(r.readline(), WAIT)).startswith(b"HTTP/1.1 200 ")
        for _, w in held:
            w.close()


async def test_header_flood_gives_one_log_line_and_never_echoes_the_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_value = "Basic c2VjcmV0LWNyZWRlbnRpYWw" + "A" * 9000
    caplog.set_level(logging.DEBUG)
    async with guarded() as (port, counters):
        bodies = []
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /openvidu/api/sessions HTTP/1.1\r\nHost: x\r\n"
                + f"Authorization: {secret_value}\r\n\r\n".encode()
            )
            data = await read_all(reader)
            writer.close()
            assert data.split(b" ", 2)[1] == b"400"
            bodies.append(data)
        assert counters.count("header_too_long") == 20
    for data in bodies:
        assert b"c2VjcmV0" not in data and b"AAAA" not in data
        assert b"request line or header too long" in data
    flood_lines = [r for r in caplog.records if "header_too_long" in r.getMessage()]
    assert len(flood_lines) == 1  # once per interval, not once per request
    for record in caplog.records:
        text = record.getMessage() + (record.exc_text or "")
        assert "c2VjcmV0" not in text and "AAAA" not in text
        assert record.exc_info is None  # no traceback


async def test_overload_is_shed_with_503_and_retry_after_and_nothing_else() -> None:
    """A burst far beyond what the server can answer within the budget: the requests that
    waited too long get 503 + Retry-After (cheaply), the rest are served; no other status."""
    request = (
        b"POST /openvidu/api/sessions HTTP/1.1\r\nHost: x\r\n"
        + AUTH
        + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    )
    per_connection, connections = 25, 40
    # a 1 ms budget: a warm server answers this burst in tens of ms, which a larger budget
    # would not count as overload on a fast machine
    async with guarded(shed_budget_ms=1) as (port, counters):

        async def burst() -> list[tuple[bytes, bool]]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request * per_connection)  # pipelined: all arrive at once
            out = []
            for _ in range(per_connection):
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                out.append((head.split(b" ", 2)[1], b"\r\nretry-after: 1\r\n" in head.lower()))
            writer.close()
            return out

        results = [
            r for rs in await asyncio.gather(*(burst() for _ in range(connections))) for r in rs
        ]
    statuses = {s for s, _ in results}
    shed = [r for r in results if r[0] == b"503"]
    assert statuses <= {b"200", b"503"}
    assert shed and all(retry for _, retry in shed)
    assert any(s == b"200" for s, _ in results)
    assert counters.count("shed") == len(shed)
