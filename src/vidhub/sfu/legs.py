"""Publisher and subscriber legs: one ``RTCPeerConnection`` each, owning their tracks.

A :class:`PublisherLeg` owns one :class:`~vidhub.sfu.producer.Producer` per published
track; a :class:`SubscriberLeg` owns one :class:`~vidhub.sfu.consumer.Consumer` per
subscribed track. Both close idempotently; closing cascades to the tracks, then the PC.
Negotiation (which codec, which transceivers) happens in :mod:`vidhub.sfu.router`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiortc import RTCIceCandidate, RTCPeerConnection

from vidhub.sfu.consumer import Consumer
from vidhub.sfu.producer import Producer

__all__ = ["Leg", "PublisherLeg", "SubscriberLeg"]

log = logging.getLogger(__name__)


class Leg:
    """What both leg kinds share: the PC, failure reporting, candidates, closing."""

    def __init__(self, leg_id: str, pc: RTCPeerConnection) -> None:
        self.id = leg_id
        self.pc = pc
        self.closed = False
        #: Called with the leg id once, when ICE or DTLS fails.
        self.on_failed: Callable[[str], None] | None = None
        self._failed_reported = False
        pc.on("connectionstatechange", self._on_state)

    def _connection_lost(self) -> None:
        """The transport is gone for good (aiortc has no ICE restart): stop media now."""

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            self._connection_lost()
        if state == "failed" and not self._failed_reported:
            self._failed_reported = True
            if self.on_failed is not None:
                try:
                    self.on_failed(self.id)
                except Exception:
                    log.exception("on_endpoint_failed listener failed for %s", self.id)

    async def add_candidate(self, candidate: RTCIceCandidate) -> None:
        """Apply one remote candidate; errors from aiortc are logged, not raised."""
        if self.closed:
            return
        try:
            await self.pc.addIceCandidate(candidate)
        except Exception as exc:  # a bad candidate must not break the leg
            log.info("leg %s: candidate ignored: %s", self.id, exc)

    async def _close_pc(self) -> None:
        try:
            await asyncio.shield(self.pc.close())
        except Exception:
            log.exception("closing the PeerConnection of leg %s failed", self.id)


class PublisherLeg(Leg):
    """A receive-only PC from one publisher, with one producer per track."""

    def __init__(self, leg_id: str, pc: RTCPeerConnection) -> None:
        super().__init__(leg_id, pc)
        self.producers: dict[str, Producer] = {}  # by kind
        #: Consumers sending the publisher's own media back (doLoopback), if asked for.
        self.loopback: list[Consumer] = []

    async def close(self) -> None:
        """Close every producer (and through them their consumers), then the PC."""
        if self.closed:
            return
        self.closed = True
        for producer in list(self.producers.values()):
            await producer.close()
        await self._close_pc()


class SubscriberLeg(Leg):
    """A send-only PC to one subscriber, with one consumer per track of one publisher."""

    def __init__(self, leg_id: str, producer_leg_id: str, pc: RTCPeerConnection) -> None:
        super().__init__(leg_id, pc)
        self.producer_leg_id = producer_leg_id
        self.consumers: list[Consumer] = []

    def _connection_lost(self) -> None:
        for consumer in self.consumers:
            consumer.close()  # unregisters from its producer at once

    async def close(self) -> None:
        """Unregister every consumer synchronously, then close the PC."""
        if self.closed:
            return
        self.closed = True
        for consumer in self.consumers:
            consumer.close()
        await self._close_pc()
