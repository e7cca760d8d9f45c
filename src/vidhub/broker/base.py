"""The Broker interface: at-most-once publish/subscribe on named channels.

Theory of operation: one :class:`Broker` instance is one node's attachment to a shared bus
(Centrifuge's model). ``publish`` hands bytes to every broker currently subscribed to the
channel, this one included; each receiving broker calls its handlers for that channel, one
message at a time, in the order the bus delivered them. Delivery is at most once: a message
published while a subscriber is disconnected is lost for it, and nothing is persisted.
A handler that raises is logged by the engine and never stops delivery to other handlers or
of later messages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence

from vidhub.errors import Overloaded

__all__ = ["Broker", "BrokerUnavailable", "Handler", "Unsubscribe"]

#: Called with each payload published on the channel it subscribed to.
Handler = Callable[[bytes], Awaitable[None]]
#: Cancels one subscription; calling it twice is harmless.
Unsubscribe = Callable[[], Awaitable[None]]


class BrokerUnavailable(Overloaded):
    """The bus cannot be reached; a 503 with ``Retry-After`` at the REST edge."""

    def __init__(self, message: str = "Cluster bus unavailable") -> None:
        super().__init__(message, retry_after=2)


class Broker(ABC):
    """Publish/subscribe between nodes. Engines: memory (one process), Redis."""

    @abstractmethod
    async def start(self) -> None:
        """Connect. Called once before any other method.

        Raises:
            BrokerUnavailable: the bus cannot be reached at start-up.
        """

    @abstractmethod
    async def close(self) -> None:
        """Drop every subscription and disconnect. Safe to call twice."""

    @abstractmethod
    async def publish(self, channel: str, payload: bytes) -> int:
        """Send ``payload`` to the channel's subscribers.

        Returns:
            How many brokers (nodes) were subscribed to the channel when it was published;
            ``0`` means nobody will receive it.

        Raises:
            BrokerUnavailable: the bus cannot be reached now.
        """

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish each ``(channel, payload)`` in order (one round trip where the engine can).

        Messages reach each subscriber in the order given, as if published one by one.

        Raises:
            BrokerUnavailable: the bus cannot be reached now; none, some or all of the
                messages may have gone out.
        """
        for channel, payload in messages:
            await self.publish(channel, payload)

    @abstractmethod
    async def subscribe(self, channel: str, handler: Handler) -> Unsubscribe:
        """Call ``handler(payload)`` for each later message on ``channel``.

        The subscription is in effect when this returns: a message published afterwards,
        from any node, reaches ``handler``. Returns the function that cancels it.
        """
