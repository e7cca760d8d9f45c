"""Recordings endpoints, answering as OpenVidu CE does with ``OPENVIDU_RECORDING=false``.

``POST /recordings/start`` still validates its body first (400 before 501), as CE does.
"""

from __future__ import annotations

from aiohttp import web

from vidhub.errors import BadRequest, NotImplementedFeature
from vidhub.server.rest.body import json_body

__all__ = ["routes"]

routes = web.RouteTableDef()


@routes.post("/openvidu/api/recordings/start")
async def start(request: web.Request) -> web.Response:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    if not isinstance(body.get("session"), str):
        raise BadRequest('"session" parameter is mandatory and must be a string')
    raise NotImplementedFeature()


async def _disabled(request: web.Request) -> web.Response:
    raise NotImplementedFeature()


for _method, _path in (
    ("POST", "/openvidu/api/recordings/stop/{recording_id}"),
    ("GET", "/openvidu/api/recordings/{recording_id}"),
    ("GET", "/openvidu/api/recordings"),
    ("DELETE", "/openvidu/api/recordings/{recording_id}"),
    ("POST", "/openvidu/api/broadcast/start"),
    ("POST", "/openvidu/api/broadcast/stop"),
):
    routes.route(_method, _path)(_disabled)
