"""Recordings endpoints (openvidu.md §1.5 rows 13-17 and 26, §1.9).

With ``OPENVIDU_RECORDING=false`` every endpoint answers 501, except that
``POST /recordings/start`` still validates its body first (400 before 501), as CE does. With
recording on, each handler parses, calls one :class:`RecordingService` method and renders.
Broadcasting is OpenVidu Pro: always 501.

Files are served at ``/openvidu/recordings/<id>/<name>.<ext>``, behind the REST credentials
unless ``OPENVIDU_RECORDING_PUBLIC_ACCESS=true``, and only once the recording is ``ready``.
"""

from __future__ import annotations

from aiohttp import web

from vidhub.errors import NotFound, NotImplementedFeature
from vidhub.ids import SessionId
from vidhub.protocol.openvidu_recording import parse_start_properties, parse_start_session
from vidhub.recording.service import RecordingFailed, RecordingService
from vidhub.server.auth import check_basic
from vidhub.server.keys import CONFIG, MANAGER, RECORDINGS
from vidhub.server.rest.body import json_body, json_response
from vidhub.server.urls import http_base

__all__ = ["routes"]

routes = web.RouteTableDef()


def _service(request: web.Request) -> RecordingService:
    """The recording service. Raises NotImplementedFeature (501) when recording is off."""
    service = request.app.get(RECORDINGS)
    if service is None:
        raise NotImplementedFeature()
    return service


@routes.post("/openvidu/api/recordings/start")
async def start(request: web.Request) -> web.Response:
    """Start recording a session; 200 with the Recording JSON (``started``)."""
    body = await json_body(request)
    session_id = parse_start_session(body)
    service = _service(request)
    view = await request.app[MANAGER].get_session(SessionId(session_id))
    service.check_startable(view)
    props = parse_start_properties(body, view.session.properties.default_recording_properties)
    try:
        rec = await service.start(session_id, props)
    except RecordingFailed as exc:
        return web.Response(status=500, text=exc.message)
    return json_response(rec.to_json(http_base(request)))


@routes.post("/openvidu/api/recordings/stop/{recording_id}")
async def stop(request: web.Request) -> web.Response:
    """Stop a recording; 200 with the finished Recording JSON."""
    rec = await _service(request).stop(request.match_info["recording_id"])
    return json_response(rec.to_json(http_base(request)))


@routes.get("/openvidu/api/recordings/{recording_id}")
async def get(request: web.Request) -> web.Response:
    rec = _service(request).get(request.match_info["recording_id"])
    return json_response(rec.to_json(http_base(request)))


@routes.get("/openvidu/api/recordings")
async def list_all(request: web.Request) -> web.Response:
    """``{"count": N, "items": [...]}`` (not the sessions' envelope)."""
    base = http_base(request)
    items = [r.to_json(base) for r in _service(request).list()]
    return json_response({"count": len(items), "items": items})


@routes.delete("/openvidu/api/recordings/{recording_id}")
async def delete(request: web.Request) -> web.Response:
    await _service(request).delete(request.match_info["recording_id"])
    return web.Response(status=204)


async def _disabled(request: web.Request) -> web.Response:
    raise NotImplementedFeature()


for _method, _path in (
    ("POST", "/openvidu/api/broadcast/start"),
    ("POST", "/openvidu/api/broadcast/stop"),
):
    routes.route(_method, _path)(_disabled)


@routes.get("/openvidu/recordings/{recording_id}/{file_name}")
async def download(request: web.Request) -> web.StreamResponse:
    """A recording's file; 401 without credentials unless public access is on."""
    cfg = request.app[CONFIG]
    if not cfg.recording_public_access and not check_basic(
        request.headers.get("Authorization"), cfg.secret
    ):
        resp = web.Response(status=401)
        resp.headers["WWW-Authenticate"] = 'Basic realm="Realm"'
        return resp
    service = request.app.get(RECORDINGS)
    if service is None:
        raise NotFound()
    path = service.served_file(request.match_info["recording_id"], request.match_info["file_name"])
    if path is None:
        raise NotFound()
    return web.FileResponse(path)
