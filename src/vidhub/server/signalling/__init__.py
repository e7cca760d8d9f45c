"""OpenVidu browser signalling: the ``/openvidu`` WebSocket in front of the rooms.

``setup_signalling(app, rooms)`` mounts it over the :class:`~vidhub.rooms.Rooms` the
composition root built (the same object the SessionManager reaches live participants
through), and closes sockets and routers on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from vidhub.rooms import Rooms
from vidhub.server.keys import CONFIG, MANAGER
from vidhub.server.limits import LIMITS, WS_CAPS
from vidhub.server.signalling.endpoint import Signalling, openvidu_socket

__all__ = ["SIGNALLING", "Signalling", "setup_signalling"]

SIGNALLING = web.AppKey("signalling", Signalling)


def setup_signalling(app: web.Application, rooms: Rooms) -> None:
    """Mount ``GET /openvidu`` over ``rooms``; needs CONFIG and MANAGER set."""
    cfg = app[CONFIG]
    sig = Signalling(
        rooms,
        app[MANAGER],
        max_message_bytes=cfg.max_ws_message_bytes,
        join_timeout_s=cfg.join_timeout_s,
        caps=app[WS_CAPS],
        rate=cfg.signalling_rate,
        counters=app[LIMITS],
    )
    app[SIGNALLING] = sig

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
