"""The effects an EventHub operation asks its transport to perform (see
:mod:`vidhub.client.eventhub_core`): plain values, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, TypeVar

from vidhub.client.eventhub_types import Event

__all__ = ["Call", "Close", "Deliver", "Effect", "Handshake", "Next", "Op", "Open", "Send", "Sleep"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send one text frame. Result: None. Fails with EventHubConnectionError."""

    text: str


@dataclass(frozen=True, slots=True)
class Call:
    """Run a user callback on ``event``. Result: its return value (awaited when awaitable,
    on asyncio); its exception is thrown back."""

    callback: Callable[[Event], Any]
    event: Event


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds``. Result: None."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Handshake:
    """``GET url`` with ``headers`` and the hub's cookies. Result: ``(status, body text)``.
    Fails with EventHubConnectionError when no answer comes."""

    url: str
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Open:
    """Open the WebSocket at ``url`` (the hub's headers and cookies) and start its reader;
    ``connected`` is true afterwards. Result: None. Fails with EventHubConnectionError."""

    url: str


@dataclass(frozen=True, slots=True)
class Close:
    """Close the socket and stop its reader (unless the reader is the caller); ``final``
    also releases what the next connect would reuse. Result: None. Never fails."""

    final: bool


@dataclass(frozen=True, slots=True)
class Deliver:
    """Queue a received (or synthesised ``ftrack.meta.*``) event for ``wait``. Result: None."""

    event: Event


@dataclass(frozen=True, slots=True)
class Next:
    """The next queued event, waiting at most ``timeout`` seconds (None: no limit), or None."""

    timeout: float | None


Effect = Send | Call | Sleep | Handshake | Open | Close | Deliver | Next
T = TypeVar("T")
#: An operation: yields effects, receives their results, returns its own.
Op = Generator[Effect, Any, T]
