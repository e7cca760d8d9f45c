"""A fake media plane: a :class:`~vidhub.rooms.MediaRouter` that records what it is asked."""

from __future__ import annotations

import asyncio

__all__ = ["FakeRouter"]


class FakeRouter:
    """Records calls; answers SDP with a recognisable string."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.on_endpoint_failed = None
        self.on_closed = None
        self.producers: set[str] = set()
        self.consumers: dict[str, str] = {}
        self.candidates: list[tuple[str, str]] = []
        self.closed = False
        self.fail_publish = False
        #: when set, negotiations wait for it (to stage races); ``entered`` tells they began
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def _wait_gate(self) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()

    async def publish(self, producer_id: str, offer_sdp: str) -> str:
        await self._wait_gate()
        if self.fail_publish or offer_sdp == "bad":
            raise ValueError("no common codec")
        self.producers.add(producer_id)
        return f"answer-for-{producer_id}"

    async def subscribe(self, consumer_id: str, producer_id: str, offer_sdp: str) -> str:
        await self._wait_gate()
        self.consumers[consumer_id] = producer_id
        return f"answer-for-{consumer_id}"

    async def add_ice_candidate(
        self, endpoint_id: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        self.candidates.append((endpoint_id, candidate))

    async def close_producer(self, producer_id: str) -> None:
        self.producers.discard(producer_id)
        for c, p in list(self.consumers.items()):
            if p == producer_id:
                del self.consumers[c]

    async def close_consumer(self, consumer_id: str) -> None:
        self.consumers.pop(consumer_id, None)

    async def close(self) -> None:
        self.closed = True
