"""Router: one per media session; owns Producers (publisher legs) and Consumers.

Theory of operation (``/work/shared/specs/sfu.md`` §2): a publisher's browser offers, the
Router answers receive-only and creates one Producer per published track. A subscriber's
browser offers recvonly; the Router answers send-only with codecs constrained to what the
producer sends, and creates one Consumer per track. Encoded RTP flows Producer -> Consumers
without decoding. Closing is idempotent and cascades: Router -> Producers -> Consumers.

The Router knows nothing of OpenVidu: endpoint ids are opaque strings chosen by the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiortc import RTCIceServer

__all__ = ["ConsumerStats", "ProducerStats", "Router", "RouterStats"]


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """Counters of one publisher leg (all tracks together)."""

    producer_id: str
    packets_in: int = 0
    bytes_in: int = 0
    keyframe_requests: int = 0
    plis_sent: int = 0


@dataclass(frozen=True, slots=True)
class ConsumerStats:
    """Counters of one subscriber leg (all tracks together)."""

    consumer_id: str
    producer_id: str
    packets_out: int = 0
    bytes_out: int = 0
    packets_dropped: int = 0
    retransmissions: int = 0


@dataclass(frozen=True, slots=True)
class RouterStats:
    """Snapshot of a Router's counters."""

    producers: tuple[ProducerStats, ...] = field(default=())
    consumers: tuple[ConsumerStats, ...] = field(default=())

    @property
    def packets_in(self) -> int:
        return sum(p.packets_in for p in self.producers)

    @property
    def packets_out(self) -> int:
        return sum(c.packets_out for c in self.consumers)


class Router:
    """One per OpenVidu session: owns Producers (publisher legs) and Consumers (subscriber legs)."""

    on_endpoint_failed: Callable[[str], None] | None

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        host_addresses: Sequence[str] | None = None,
        announced_address: str | None = None,
        forced_video_codec: str | None = None,
    ) -> None:
        self.on_endpoint_failed = None
        raise NotImplementedError

    async def publish(self, producer_id: str, offer_sdp: str) -> str:
        """Accept a publisher's offer; return the answer SDP (server receives only).

        Raises:
            MediaError: the offer is unusable (no common codec, malformed SDP).
            ValueError: ``producer_id`` already exists.
        """
        raise NotImplementedError

    async def subscribe(self, consumer_id: str, producer_id: str, offer_sdp: str) -> str:
        """Accept a subscriber's recvonly offer for ``producer_id``; return the send-only answer.

        Codecs in the answer are constrained to the producer's.
        """
        raise NotImplementedError

    async def add_ice_candidate(
        self, endpoint_id: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        """Apply a trickled browser candidate; buffered until the PC exists; ``""`` is ignored."""
        raise NotImplementedError

    async def close_producer(self, producer_id: str) -> None:
        """Close a publisher leg and all its consumers; idempotent."""
        raise NotImplementedError

    async def close_consumer(self, consumer_id: str) -> None:
        """Close a subscriber leg; idempotent."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close every leg; idempotent."""
        raise NotImplementedError

    def stats(self) -> RouterStats:
        """Counters per producer and consumer."""
        raise NotImplementedError
