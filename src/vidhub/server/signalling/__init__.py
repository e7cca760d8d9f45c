"""OpenVidu browser signalling: the ``/openvidu`` WebSocket, live rooms and the SFU behind them.

``setup_signalling(app)`` mounts it: it builds :class:`Rooms` over the app's SessionManager
and a per-session SFU router, installs the rooms as the manager's LiveGateway (so REST signals,
evictions and force-unpublish reach live participants), and closes sockets and routers on
shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSCloseCode, web

from vidhub.config import is_loopback_host
from vidhub.server.keys import CONFIG, MANAGER
from vidhub.server.signalling.endpoint import Signalling, openvidu_socket
from vidhub.server.signalling.media import MediaRouter, RouterFactory, sfu_router_factory
from vidhub.server.signalling.rooms import Rooms

__all__ = [
    "SIGNALLING",
    "MediaRouter",
    "Rooms",
    "RouterFactory",
    "Signalling",
    "setup_signalling",
]

SIGNALLING = web.AppKey("signalling", Signalling)


def _ice_servers(entries: tuple[str, ...]) -> list[Any]:
    from aiortc import RTCIceServer

    from vidhub.server.app import parse_ice_servers

    return [
        RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
        for s in parse_ice_servers(entries)
    ]


def setup_signalling(app: web.Application) -> None:
    """Mount ``GET /openvidu`` and the rooms; needs CONFIG and MANAGER set."""
    cfg = app[CONFIG]
    manager = app[MANAGER]
    hosts: list[str] | None = list(cfg.ice_host_addresses) or (
        ["127.0.0.1"] if is_loopback_host(cfg.host) else None
    )
    factory = sfu_router_factory(
        ice_servers=_ice_servers(cfg.ice_servers),
        host_addresses=hosts,
        announced_address=cfg.ice_announced_address or None,
        forced_video_codec=cfg.forced_video_codec,
    )
    rooms = Rooms(manager, factory)
    sig = Signalling(rooms, max_message_bytes=cfg.max_ws_message_bytes)
    app[SIGNALLING] = sig
    manager.live = rooms

    async def handler(request: web.Request) -> web.StreamResponse:
        return await openvidu_socket(request, sig)

    async def close_sockets(app: web.Application) -> None:
        for ws in list(sig.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Server shutdown")

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        yield
        await sig.sessions.close()
        await rooms.close()

    app.router.add_get("/openvidu", handler)
    app.on_shutdown.append(close_sockets)
    app.cleanup_ctx.append(lifetime)
