"""Dashboard sign-in: the server secret in a form, then an HttpOnly SameSite=Strict cookie.

Theory of operation. ``POST /dashboard/login`` compares the posted secret with the server's in
constant time. A match opens a dashboard session: a random 256-bit id kept in memory (never
the secret) and set as the cookie :data:`COOKIE` (``HttpOnly; SameSite=Strict;
Path=/dashboard``, ``Secure`` over HTTPS), valid for :data:`SESSION_TTL_S`. A wrong secret
answers 401 with the form and a message; more than :data:`MAX_FAILURES` wrong secrets from
one address within :data:`FAILURE_WINDOW_S` answer 429 with ``Retry-After`` until the window
has passed, whatever is posted (so the secret cannot be guessed quickly).
``POST /dashboard/logout`` ends the session and clears the cookie. Sessions do not survive a
restart: operators sign in again.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "COOKIE",
    "FAILURE_WINDOW_S",
    "MAX_FAILURES",
    "SESSION_TTL_S",
    "LoginResult",
    "Logins",
]

COOKIE = "vidhub_dashboard"
#: A dashboard session lasts this long after sign-in.
SESSION_TTL_S = 12 * 3600
#: Wrong secrets allowed per address within :data:`FAILURE_WINDOW_S`.
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0
#: Addresses remembered at most (the oldest are forgotten first).
_MAX_ADDRESSES = 10_000


@dataclass(frozen=True, slots=True)
class LoginResult:
    """``ok`` with the new session id, ``wrong``, or ``limited`` with seconds to wait."""

    outcome: Literal["ok", "wrong", "limited"]
    session: str = ""
    retry_after_s: int = 0


@dataclass(slots=True)
class Logins:
    """Checks secrets, rate-limits failures per address and keeps the dashboard sessions.

    Args:
        secret: the server secret.
        now: monotonic clock in seconds (injectable for tests).
    """

    secret: str
    now: Callable[[], float] = time.monotonic
    _sessions: dict[str, float] = field(default_factory=dict)
    _failures: dict[str, deque[float]] = field(default_factory=dict)

    def _recent(self, address: str, t: float) -> deque[float]:
        fails = self._failures.get(address)
        if fails is None:
            if len(self._failures) >= _MAX_ADDRESSES:
                self._failures.pop(next(iter(self._failures)))
            fails = self._failures[address] = deque()
        while fails and fails[0] <= t - FAILURE_WINDOW_S:
            fails.popleft()
        return fails

    def login(self, address: str, given: str) -> LoginResult:
        """Check ``given`` from ``address``; opens a session on success."""
        t = self.now()
        fails = self._recent(address, t)
        if len(fails) >= MAX_FAILURES:
            wait = int(fails[0] + FAILURE_WINDOW_S - t) + 1
            return LoginResult("limited", retry_after_s=max(1, wait))
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            fails.append(t)
            return LoginResult("wrong")
        self._failures.pop(address, None)
        self._expire(t)
        session = secrets.token_urlsafe(32)
        self._sessions[session] = t + SESSION_TTL_S
        return LoginResult("ok", session=session)

    def valid(self, session: str | None) -> bool:
        """True while ``session`` (the cookie's value) is a live dashboard session."""
        if not session:
            return False
        expires = self._sessions.get(session)
        if expires is None:
            return False
        if expires <= self.now():
            del self._sessions[session]
            return False
        return True

    def logout(self, session: str | None) -> None:
        if session:
            self._sessions.pop(session, None)

    def _expire(self, t: float) -> None:
        for s in [s for s, exp in self._sessions.items() if exp <= t]:
            del self._sessions[s]
