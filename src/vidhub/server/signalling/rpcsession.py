"""RPC sessions: the Kurento layer under OpenVidu signalling (openvidu.md §3.1-3.2).

Theory of operation: an :class:`RpcSession` outlives the WebSocket it was born on. When a
socket drops, the session is *unbound*: frames sent meanwhile are kept (bounded) and a
reconnection window starts. A ``connect {sessionId}`` on a new socket re-binds it, cancels the
window and flushes the kept frames. When the window expires, ``on_expired`` runs (the room
evicts the participant with reason ``networkDisconnect``).

An RPC session is the :class:`~vidhub.rooms.room.ParticipantSink` of its participant: the
room notifies it and, once the participant left, asks it to close the socket later.

:class:`RpcSessions` is the registry ``connect`` looks sessions up in.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from vidhub.protocol import jsonrpc
from vidhub.rooms.room import LiveParticipant

__all__ = ["RpcSession", "RpcSessions", "Sender"]

log = logging.getLogger(__name__)

#: Sends one text frame on a socket; raises ConnectionError when the socket is gone.
Sender = Callable[[str], Awaitable[None]]

_ALPHABET = string.ascii_lowercase + string.digits
_MAX_KEPT = 512


def _rpc_session_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(26))


class RpcSession:
    """One client's RPC session; ``id`` is what joinRoom results carry as ``sessionId``."""

    def __init__(self, registry: RpcSessions, sender: Sender) -> None:
        self.id = _rpc_session_id()
        self._registry = registry
        self._sender: Sender | None = sender
        self._kept: deque[str] = deque(maxlen=_MAX_KEPT)
        self._expiry: asyncio.TimerHandle | None = None
        self._close_socket: Callable[[], Coroutine[Any, Any, None]] | None = None
        #: Called once when the reconnection window expires with no ``connect``.
        self.on_expired: Callable[[], Coroutine[Any, Any, None]] | None = None
        #: Set by the signalling layer once joinRoom succeeded.
        self.participant: LiveParticipant | None = None
        self.closed = False

    @property
    def joined(self) -> LiveParticipant | None:
        """The participant this session carries, unless it has left its room."""
        part = self.participant
        return part if part is not None and not part.gone else None

    @property
    def bound(self) -> bool:
        return self._sender is not None

    async def send(self, frame: str) -> None:
        """Send a frame now, or keep it for the next socket while unbound."""
        if self.closed:
            return
        sender = self._sender
        if sender is None:
            self._kept.append(frame)
            return
        try:
            await sender(frame)
        except (ConnectionError, RuntimeError):
            self._kept.append(frame)

    async def respond(self, request_id: jsonrpc.RequestId, result: Any) -> None:
        await self.send(jsonrpc.encode_result(request_id, result, self.id))

    async def respond_error(
        self, request_id: jsonrpc.RequestId | None, code: int, message: str
    ) -> None:
        await self.send(jsonrpc.encode_error(request_id, code, message))

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        await self.send(jsonrpc.encode_notification(method, params))

    def bind(self, sender: Sender, close_socket: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Attach a (new) socket; cancels a running reconnection window."""
        self._sender = sender
        self._close_socket = close_socket
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None

    async def flush(self) -> None:
        """Send the frames kept while unbound, in order."""
        while self._kept and self._sender is not None:
            await self.send(self._kept.popleft())

    def owned_by(self, sender: Sender) -> bool:
        """Whether ``sender``'s socket is the one this session is bound to now."""
        return self._sender == sender

    def unbind(self, window_s: float) -> None:
        """The socket closed: keep the session for ``window_s`` seconds awaiting ``connect``."""
        self._sender = None
        self._close_socket = None
        if self.closed:
            return
        loop = asyncio.get_running_loop()
        if self._expiry is not None:
            self._expiry.cancel()
        self._expiry = loop.call_later(window_s, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        if self.closed or self._sender is not None:
            return
        callback = self.on_expired
        self.close()
        if callback is not None:
            task = asyncio.get_running_loop().create_task(callback())
            self._registry.track(task)

    def close_later(self, delay_s: float) -> None:
        """The participant left: forget it, and close the current socket after ``delay_s``
        (OpenVidu's safety net after a leave or an eviction)."""
        self.participant = None
        close = self._close_socket
        if close is None:
            return

        def fire() -> None:
            if self._close_socket is close:
                self._registry.track(asyncio.get_running_loop().create_task(close()))

        asyncio.get_running_loop().call_later(delay_s, fire)

    def close(self) -> None:
        """Forget the session; later ``connect`` calls for it fail. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        self._kept.clear()
        self._registry.forget(self)


class RpcSessions:
    """The live RPC sessions of this server, by id, plus their background tasks."""

    def __init__(self) -> None:
        self._sessions: dict[str, RpcSession] = {}
        self._tasks: set[asyncio.Task[Any]] = set()

    def new(self, sender: Sender) -> RpcSession:
        s = RpcSession(self, sender)
        self._sessions[s.id] = s
        return s

    def get(self, session_id: str) -> RpcSession | None:
        return self._sessions.get(session_id)

    def forget(self, session: RpcSession) -> None:
        if self._sessions.get(session.id) is session:
            del self._sessions[session.id]

    def track(self, task: asyncio.Task[Any]) -> None:
        """Keep a background task referenced until it ends; log its failure."""
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("signalling task failed", exc_info=task.exception())

    async def close(self) -> None:
        """Shutdown: cancel background tasks and forget every session."""
        for s in list(self._sessions.values()):
            s.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
