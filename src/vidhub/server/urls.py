"""Public URLs: what clients should use to reach this server."""

from __future__ import annotations

from aiohttp import web

from vidhub.server.keys import CONFIG

__all__ = ["http_base", "ws_base"]


def http_base(request: web.Request) -> str:
    """``http[s]://host[:port]`` from the configured public URL or the URL the client reached."""
    public = request.app[CONFIG].public_url
    if public:
        return public.rstrip("/")
    host = request.headers.get("X-Forwarded-Host") or request.host
    scheme = request.headers.get("X-Forwarded-Proto") or request.scheme
    return f"{scheme}://{host}"


def ws_base(request: web.Request) -> str:
    """``ws[s]://host[:port]``, the prefix of every token."""
    base = http_base(request)
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :]
    if base.startswith("http://"):
        return "ws://" + base[len("http://") :]
    return base
