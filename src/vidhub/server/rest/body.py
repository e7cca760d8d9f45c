"""Reading request bodies: size-limited, JSON-decoded, errors as OpenVidu 400s."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from vidhub.errors import BadRequest, PayloadTooLarge
from vidhub.protocol import jsoncodec

__all__ = ["json_body", "json_response", "query_flag"]


async def json_body(request: web.Request) -> Any:
    """The decoded JSON body, or ``None`` when there is none.

    Raises:
        PayloadTooLarge: over the app's ``client_max_size``.
        BadRequest: the body is not valid JSON.
    """
    if not request.body_exists:
        return None
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("Request body too large") from exc
    if not raw.strip():
        return None
    try:
        return jsoncodec.loads(raw)
    except jsoncodec.JSONDecodeError as exc:
        raise BadRequest(
            f"Request body is not valid JSON: {exc.args[0] if exc.args else ''}"
        ) from None


def json_response(obj: Any, status: int = 200) -> web.Response:
    """A JSON response encoded with orjson."""
    return web.Response(
        status=status, body=jsoncodec.dumps_bytes(obj), content_type="application/json"
    )


def query_flag(request: web.Request, name: str, default: bool) -> bool:
    """A boolean query parameter (``true``/``false``); anything else is the default."""
    raw = request.query.get(name)
    if raw is None:
        return default
    return raw.strip().lower() == "true"
