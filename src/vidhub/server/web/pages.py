"""Static pages: ``GET /`` (the call page) and ``GET /assets/...`` from the package.

Every page and asset is served with a strict Content-Security-Policy (scripts, styles and
sockets only from this origin) and ``nosniff``; assets are revalidated on each load
(``no-cache`` plus ETag) so an upgrade is never half-applied in a browser.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

__all__ = ["ASSETS", "SECURITY_HEADERS", "page", "setup_pages"]

#: The package's web assets (``src/vidhub/web``).
ASSETS = Path(__file__).resolve().parent.parent.parent / "web"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self' blob: mediastream:; connect-src 'self' ws: wss:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def page(name: str) -> web.FileResponse:
    """The HTML page ``name`` from the assets, with the security headers."""
    resp = web.FileResponse(ASSETS / name, headers=SECURITY_HEADERS)
    resp.content_type = "text/html"
    return resp


async def call_page(request: web.Request) -> web.FileResponse:
    """``GET /``: the call page (``?room=<name>&name=<display name>`` joins directly)."""
    return page("index.html")


async def _asset_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith("/assets/"):
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)


def setup_pages(app: web.Application) -> None:
    """Mount ``GET /`` and ``GET /assets/{path}``."""
    app.router.add_get("/", call_page)
    app.router.add_static("/assets", ASSETS, append_version=False)
    app.on_response_prepare.append(_asset_headers)
