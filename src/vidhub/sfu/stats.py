"""Router counters as plain data: what ``Router.stats()`` returns, in any process.

These dataclasses hold no aiortc object, so the main process can rebuild them from what a
media worker pushes (:func:`router_stats_from_dict`) without importing the SFU itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = [
    "ConsumerStats",
    "ProducerStats",
    "RouterStats",
    "router_stats_from_dict",
    "router_stats_to_dict",
]


@dataclass(frozen=True, slots=True)
class ProducerStats:
    """Counters of one publisher leg (all tracks together)."""

    producer_id: str
    packets_in: int = 0
    bytes_in: int = 0
    keyframe_requests: int = 0
    plis_sent: int = 0
    rtx_recovered: int = 0
    #: packets the publisher sent that never arrived (before any retransmission)
    packets_lost: int = 0
    #: video frames received (RTP marker bits)
    frames_in: int = 0


@dataclass(frozen=True, slots=True)
class ConsumerStats:
    """Counters of one subscriber leg (all tracks together)."""

    consumer_id: str
    producer_id: str
    connected: bool = False
    packets_out: int = 0
    bytes_out: int = 0
    packets_dropped: int = 0
    retransmissions: int = 0
    #: round-trip time to the subscriber from its receiver reports (None until one came)
    rtt_ms: float | None = None


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


def router_stats_to_dict(stats: RouterStats) -> dict[str, Any]:
    """``stats`` as JSON-ready data (the inverse of :func:`router_stats_from_dict`)."""
    return {
        "producers": [asdict(p) for p in stats.producers],
        "consumers": [asdict(c) for c in stats.consumers],
    }


def router_stats_from_dict(data: dict[str, Any]) -> RouterStats:
    """Rebuild what :func:`router_stats_to_dict` produced.

    Raises:
        ValueError: a field is missing or unknown.
    """
    try:
        return RouterStats(
            producers=tuple(ProducerStats(**p) for p in data.get("producers", ())),
            consumers=tuple(ConsumerStats(**c) for c in data.get("consumers", ())),
        )
    except TypeError as exc:
        raise ValueError(f"malformed router stats: {exc}") from exc
