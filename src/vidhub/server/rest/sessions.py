"""Sessions, connections, tokens and signals (openvidu.md §1.5 #1-#12)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from aiohttp import web

from vidhub.errors import BadRequest, SessionNotFound
from vidhub.ids import ConnectionId, SessionId
from vidhub.manager import SessionView
from vidhub.protocol import jsoncodec
from vidhub.protocol.openvidu_rest import (
    ROLES,
    parse_connection_properties,
    parse_session_properties,
    parse_signal,
    parse_token_request,
)
from vidhub.server.keys import CONFIG, MANAGER
from vidhub.server.rest.body import json_body, json_response, query_flag
from vidhub.server.rest.render import render_connection, render_page, render_session, render_token
from vidhub.server.urls import ws_base

__all__ = ["LISTINGS", "Listings", "routes"]

routes = web.RouteTableDef()


def _session_id(request: web.Request) -> SessionId:
    """The ``{session_id}`` of the path, as an id."""
    return SessionId(request.match_info["session_id"])


def _connection_id(request: web.Request) -> ConnectionId:
    """The ``{connection_id}`` of the path, as an id."""
    return ConnectionId(request.match_info["connection_id"])


@routes.post("/openvidu/api/sessions")
async def create_session(request: web.Request) -> web.Response:
    """POST /sessions: 200 Session JSON; 409 empty on a taken customSessionId."""
    cfg = request.app[CONFIG]
    props = parse_session_properties(
        await json_body(request),
        default_codec=cfg.forced_video_codec,
        default_transcoding=cfg.allow_transcoding,
    )
    session = await request.app[MANAGER].create_session(props)
    # a new session has no connections yet: no need to read it back from the store
    return json_response(render_session(SessionView(session, [])))


#: Sessions rendered per chunk of a streamed ``GET /sessions`` (the loop serves others between).
LIST_CHUNK = 256


@routes.get("/openvidu/api/sessions")
async def list_sessions(request: web.Request) -> web.StreamResponse:
    """GET /sessions, with a bounded cost: the session count is capped (``VIDHUB_MAX_SESSIONS``),
    concurrent identical listings share one rendering, and a long list is rendered and written
    in chunks, yielding to the event loop between them, so it never holds the loop for long
    (OpenVidu's shape, unpaged, is kept)."""
    pending = query_flag(request, "pendingConnections", False)
    stats = query_flag(request, "webRtcStats", False)
    shared = request.app[LISTINGS]
    key = (pending, stats)
    job = shared.get(key)
    if job is None:
        job = asyncio.ensure_future(_render_listing(request, pending, stats))
        shared[key] = job
        job.add_done_callback(lambda _: shared.pop(key, None))
    chunks = await asyncio.shield(job)
    if len(chunks) == 1:
        return web.Response(body=chunks[0], content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    for chunk in chunks:
        await resp.write(chunk)
    await resp.write_eof()
    return resp


async def _render_listing(request: web.Request, pending: bool, stats: bool) -> list[bytes]:
    views = await request.app[MANAGER].list_sessions()
    if len(views) <= LIST_CHUNK:
        page = render_page([render_session(v, pending=pending, stats=stats) for v in views])
        return [jsoncodec.dumps_bytes(page)]
    chunks = [b'{"numberOfElements":%d,"content":[' % len(views)]
    for start in range(0, len(views), LIST_CHUNK):
        part = [
            render_session(v, pending=pending, stats=stats)
            for v in views[start : start + LIST_CHUNK]
        ]
        body = jsoncodec.dumps_bytes(part)[1:-1]  # the items without the brackets
        chunks.append(body if start == 0 else b"," + body)
        await asyncio.sleep(0)  # let other requests in between chunks
    chunks.append(b"]}")
    return chunks


class Listings(dict[tuple[bool, bool], "asyncio.Future[list[bytes]]"]):
    """In-flight listings by (pendingConnections, webRtcStats), shared by concurrent requests."""


LISTINGS = web.AppKey("session_listings", Listings)


@routes.get("/openvidu/api/sessions/{session_id}")
async def get_session(request: web.Request) -> web.Response:
    view = await request.app[MANAGER].get_session(_session_id(request))
    return json_response(
        render_session(
            view,
            pending=query_flag(request, "pendingConnections", False),
            stats=query_flag(request, "webRtcStats", False),
        )
    )


@routes.delete("/openvidu/api/sessions/{session_id}")
async def delete_session(request: web.Request) -> web.Response:
    await request.app[MANAGER].close_session(_session_id(request))
    return web.Response(status=204)


@routes.post("/openvidu/api/sessions/{session_id}/connection")
async def create_connection(request: web.Request) -> web.Response:
    props = parse_connection_properties(await json_body(request))
    conn = await request.app[MANAGER].create_connection(
        _session_id(request), props, ws_base(request)
    )
    return json_response(render_connection(conn))


@routes.get("/openvidu/api/sessions/{session_id}/connection")
async def list_connections(request: web.Request) -> web.Response:
    view = await request.app[MANAGER].get_session(_session_id(request))
    pending = query_flag(request, "pendingConnections", True)
    stats = query_flag(request, "webRtcStats", False)
    return json_response(
        render_page(
            [render_connection(c, stats=stats) for c in view.connections if pending or c.active]
        )
    )


@contextlib.contextmanager
def _missing_session_is_400() -> Iterator[None]:
    """On connection and stream paths OpenVidu answers an unknown session with an empty 400."""
    try:
        yield
    except SessionNotFound:
        raise BadRequest(empty_body=True) from None


@routes.get("/openvidu/api/sessions/{session_id}/connection/{connection_id}")
async def get_connection(request: web.Request) -> web.Response:
    with _missing_session_is_400():
        conn = await request.app[MANAGER].get_connection(
            _session_id(request), _connection_id(request)
        )
    return json_response(render_connection(conn))


@routes.patch("/openvidu/api/sessions/{session_id}/connection/{connection_id}")
async def update_connection(request: web.Request) -> web.Response:
    """PATCH: role and record (a Pro feature in OpenVidu; offered here)."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    role = body.get("role")
    record = body.get("record")
    if role is not None and (not isinstance(role, str) or role not in ROLES):
        raise BadRequest(f"Parameter role {role} is not defined")
    if record is not None and not isinstance(record, bool):
        raise BadRequest("Type error in some parameter: 'record'")
    conn = await request.app[MANAGER].update_connection(
        _session_id(request), _connection_id(request), role, record
    )
    return json_response(render_connection(conn))


@routes.delete("/openvidu/api/sessions/{session_id}/connection/{connection_id}")
async def delete_connection(request: web.Request) -> web.Response:
    with _missing_session_is_400():
        await request.app[MANAGER].delete_connection(_session_id(request), _connection_id(request))
    return web.Response(status=204)


@routes.delete("/openvidu/api/sessions/{session_id}/stream/{stream_id}")
async def force_unpublish(request: web.Request) -> web.Response:
    with _missing_session_is_400():
        await request.app[MANAGER].force_unpublish(
            _session_id(request), request.match_info["stream_id"]
        )
    return web.Response(status=204)


@routes.post("/openvidu/api/tokens")
async def create_token(request: web.Request) -> web.Response:
    """Legacy POST /tokens: the Token JSON; 404 with a message for an unknown session."""
    session_id, props = parse_token_request(await json_body(request))
    try:
        conn = await request.app[MANAGER].create_connection(session_id, props, ws_base(request))
    except SessionNotFound:
        raise SessionNotFound(f"Session {session_id} not found", empty_body=False) from None
    return json_response(render_token(conn))


@routes.post("/openvidu/api/signal")
async def signal(request: web.Request) -> web.Response:
    """POST /signal: 200 empty; 404 no session; 406 nobody connected."""
    req = parse_signal(await json_body(request))
    await request.app[MANAGER].signal(req)
    return web.Response(status=200)
