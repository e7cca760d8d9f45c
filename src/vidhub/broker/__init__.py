"""Broker ABC with memory and Redis engines (cross-node fan-out).

``vidhub.broker.base`` holds the interface every layer above may see; the engines are
chosen once, in ``server/app.py``. The Redis engine lives in ``vidhub.broker.redis`` and is
imported only where Redis is configured (it needs the ``vidhub[redis]`` extra).
"""

from __future__ import annotations

from vidhub.broker.base import Broker, BrokerUnavailable, Handler, Unsubscribe
from vidhub.broker.memory import MemoryBroker, MemoryBus

__all__ = ["Broker", "BrokerUnavailable", "Handler", "MemoryBroker", "MemoryBus", "Unsubscribe"]
