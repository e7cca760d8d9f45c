"""Session placement: which node hosts a session, and the URL its tokens carry.

Theory of operation. A session is hosted by one node, chosen when the session is created
(or, for a session that predates placement, when its first token is made): the live node with
the lightest load as heartbeated (publishers, then forwarded packets; ties go to this node,
then by id). The choice is a first-writer-wins record (:meth:`Presence.assign`), so racing
nodes agree. Tokens of the session carry the host's public URL, so openvidu-browser and
``Participant`` reach the node where the session's media lives, with no load-balancer
affinity. A host that is unknown, dead or heartbeats no URL falls back to the URL the caller
used.

:class:`LocalPlacement` is the one-node form: every session is here.
"""

from __future__ import annotations

import logging
from typing import Protocol

from vidhub.broker.base import BrokerUnavailable
from vidhub.broker.presence import Presence
from vidhub.cluster.directory import NodeDirectory

__all__ = ["ClusterPlacement", "LocalPlacement", "Placement", "host_key", "ws_url"]

log = logging.getLogger(__name__)


def host_key(session_id: str) -> str:
    """The presence record naming a session's host."""
    return f"host:{session_id}"


def ws_url(base: str) -> str:
    """``http[s]://`` base URL -> ``ws[s]://`` (tokens use WebSocket URLs)."""
    base = base.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :]
    return base


class Placement(Protocol):
    """Where sessions live, as the SessionManager asks it."""

    async def place(self, session_id: str) -> str | None:
        """Choose (once) the node that hosts a new session; its id, or None for no cluster."""

    async def ws_base(self, session_id: str, fallback: str) -> str:
        """The ``ws[s]://host:port`` a token of the session must carry."""

    async def forget(self, session_id: str) -> None:
        """The session is gone: drop its placement."""

    async def hosts(self, session_ids: list[str]) -> list[str | None]:
        """The host of each session (None where unplaced)."""


class LocalPlacement:
    """A single node: everything is hosted here, tokens carry the caller's URL."""

    async def place(self, session_id: str) -> str | None:
        return None

    async def ws_base(self, session_id: str, fallback: str) -> str:
        return fallback

    async def forget(self, session_id: str) -> None:
        return None

    async def hosts(self, session_ids: list[str]) -> list[str | None]:
        return [None for _ in session_ids]


class ClusterPlacement:
    """Placement over the shared presence and the live-node directory."""

    def __init__(self, presence: Presence, directory: NodeDirectory) -> None:
        self._presence = presence
        self._directory = directory

    def _lightest(self) -> str:
        live = self._directory.live()
        me = self._directory.node_id
        if not live:
            return me
        return min(live, key=lambda n: (live[n].load, n != me, n))

    async def place(self, session_id: str) -> str | None:
        """Record the lightest live node as the host (first writer wins); returns the host.

        Raises:
            BrokerUnavailable: the shared server cannot be reached.
        """
        key = host_key(session_id)
        choice = self._lightest()
        host = await self._presence.assign(key, choice)
        if host != choice and host not in self._directory.live():
            # left over from an earlier session with this id whose host is gone: replace it
            await self._presence.release(key)
            host = await self._presence.assign(key, choice)
        return host

    async def ws_base(self, session_id: str, fallback: str) -> str:
        try:
            (host,) = await self._presence.lookup([host_key(session_id)])
            if host is None:
                host = await self.place(session_id)
        except BrokerUnavailable:
            log.warning(
                "placement of %s unknown (Redis unreachable): token uses this node", session_id
            )
            return fallback
        info = self._directory.live().get(host or "")
        if info is None or not info.url:
            return fallback
        return ws_url(info.url)

    async def forget(self, session_id: str) -> None:
        try:
            await self._presence.release(host_key(session_id))
        except BrokerUnavailable:
            log.warning("could not drop the placement of %s (Redis unreachable)", session_id)

    async def hosts(self, session_ids: list[str]) -> list[str | None]:
        return await self._presence.lookup([host_key(s) for s in session_ids])
