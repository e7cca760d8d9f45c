"""Leg failure reporting, with a stand-in PeerConnection whose state the test drives."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pyee.asyncio import AsyncIOEventEmitter

from vidhub.sfu.legs import PublisherLeg, SubscriberLeg


class FakePc(AsyncIOEventEmitter):
    def __init__(self) -> None:
        super().__init__()
        self.connectionState = "new"
        self.closed = 0

    async def close(self) -> None:
        self.closed += 1


async def test_failure_is_reported_once_and_listener_errors_are_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pc = FakePc()
    leg = PublisherLeg("pub", cast(Any, pc))
    seen: list[str] = []

    def listener(endpoint: str) -> None:
        seen.append(endpoint)
        raise RuntimeError("listener bug")

    leg.on_failed = listener
    pc.connectionState = "connected"
    await leg._on_state()
    assert seen == []
    pc.connectionState = "failed"
    await leg._on_state()
    await leg._on_state()
    assert seen == ["pub"]
    assert "listener failed" in caplog.text
    await leg.close()
    await leg.close()
    assert pc.closed == 1


class FakeConsumer:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


async def test_subscriber_leg_stops_forwarding_when_its_transport_fails() -> None:
    pc = FakePc()
    leg = SubscriberLeg("sub", "pub", cast(Any, pc))
    consumer = FakeConsumer()
    leg.consumers.append(cast(Any, consumer))
    pc.connectionState = "connecting"
    await leg._on_state()
    assert consumer.closed == 0
    pc.connectionState = "failed"
    await leg._on_state()
    assert consumer.closed == 1
