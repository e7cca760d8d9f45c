"""One client's presence in the hub: its outbox, its subscribers and, if opted in, its replay log.

A :class:`HubSession` is created when a socket opens and normally dies with it. A session
that opted in to resumption (a vidhub extension; the ftrack client never does) instead
*parks* when its socket goes: its subscribers stay registered and events routed to it go to a
bounded log, until either a new socket resumes it or the replay window expires.

The edge gives each session an :class:`Outbox`: a non-blocking sink for encoded frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from vidhub.hub.registry import Registration

__all__ = ["HubSession", "Outbox", "ParkedState", "ReplayEntry"]


class Outbox(Protocol):
    """Where the hub puts frames for one socket. Both methods must return at once."""

    def send(self, frame: str) -> bool:
        """Queue ``frame``; False means the socket is too far behind (a slow consumer)."""

    def close(self, reason: str) -> None:
        """Close the socket from the server side (the edge sends ``0::`` first)."""


@dataclass(frozen=True, slots=True)
class ReplayEntry:
    """One routed event as a resumable session received it."""

    event_id: str
    frame: str


@dataclass(slots=True)
class ParkedState:
    """A resumable session as one node hands it to another (the client resumed there).

    Attributes:
        subscribers: ``(subscriber id, metadata, subscription text)`` of each subscriber.
        log: ``(event id, frame)`` of the events kept for replay, oldest first.
    """

    subscribers: list[tuple[str, dict[str, Any], str]]
    log: list[tuple[str, str]]


@dataclass(slots=True, eq=False)
class HubSession:
    """State the hub keeps per connected (or parked) client.

    Attributes:
        serial: unique for the life of the hub; registrations are keyed by it.
        sid: the socket.io session id of the socket currently bound (changes on resume).
        user: who authenticated at the handshake.
        outbox: the bound socket, or None while parked.
        resumable: whether the client opted in to resumption.
        log: the last events routed to it (resumable sessions only).
        parked_until: monotonic deadline while parked, else None.
    """

    serial: int
    sid: str
    user: str
    outbox: Outbox | None
    resumable: bool = False
    log: deque[ReplayEntry] = field(default_factory=deque)
    registrations: dict[str, Registration] = field(default_factory=dict)
    parked_until: float | None = None
    closed: bool = False
    log_max_chars: int = 4 << 20
    log_chars: int = 0

    def deliver(self, event_id: str, frame: str) -> bool:
        """Log (if resumable) and send ``frame``; False if the outbox refused it.

        The log keeps the newest entries within both its length and ``log_max_chars``.
        """
        if self.resumable:
            log = self.log
            if log.maxlen is not None and len(log) == log.maxlen and log:
                self.log_chars -= len(log[0].frame)  # append() is about to drop it
            log.append(ReplayEntry(event_id, frame))
            self.log_chars += len(frame)
            while self.log_chars > self.log_max_chars and len(log) > 1:
                self.log_chars -= len(log.popleft().frame)
        if self.outbox is None:
            return True
        return self.outbox.send(frame)

    def replay_after(self, last_event_id: str | None) -> list[ReplayEntry]:
        """Logged entries after ``last_event_id``; all of them if it is unknown or None."""
        entries = list(self.log)
        if last_event_id:
            for i in range(len(entries) - 1, -1, -1):
                if entries[i].event_id == last_event_id:
                    return entries[i + 1 :]
        return entries
