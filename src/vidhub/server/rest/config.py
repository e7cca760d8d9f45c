"""``GET /openvidu/api/config`` and its sub-paths (openvidu.md §1.10, §1.5 #18-22)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from vidhub import OPENVIDU_VERSION
from vidhub.config import Config
from vidhub.server.keys import CONFIG
from vidhub.server.rest.body import json_response
from vidhub.server.urls import http_base

__all__ = ["render_config", "routes"]

routes = web.RouteTableDef()


def render_config(cfg: Config, public_url: str) -> dict[str, Any]:
    """The CE config JSON; conditional keys only when their flag is on."""
    parts = urlsplit(public_url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    d: dict[str, Any] = {
        "VERSION": OPENVIDU_VERSION,
        "DOMAIN_OR_PUBLIC_IP": parts.hostname or "",
        "HTTPS_PORT": port,
        "OPENVIDU_PUBLICURL": public_url,
        "OPENVIDU_CDR": cfg.cdr,
        "OPENVIDU_STREAMS_VIDEO_MAX_RECV_BANDWIDTH": 1000,
        "OPENVIDU_STREAMS_VIDEO_MIN_RECV_BANDWIDTH": 300,
        "OPENVIDU_STREAMS_VIDEO_MAX_SEND_BANDWIDTH": 1000,
        "OPENVIDU_STREAMS_VIDEO_MIN_SEND_BANDWIDTH": 300,
        "OPENVIDU_STREAMS_FORCED_VIDEO_CODEC": cfg.forced_video_codec,
        "OPENVIDU_STREAMS_ALLOW_TRANSCODING": cfg.allow_transcoding,
        "OPENVIDU_WEBRTC_SIMULCAST": False,
        "OPENVIDU_SESSIONS_GARBAGE_INTERVAL": cfg.garbage_interval_s,
        "OPENVIDU_SESSIONS_GARBAGE_THRESHOLD": cfg.garbage_threshold_s,
        "OPENVIDU_RECORDING": cfg.recording,
        "OPENVIDU_WEBHOOK": cfg.webhook.enabled,
    }
    if cfg.recording:
        d["OPENVIDU_RECORDING_VERSION"] = OPENVIDU_VERSION
        d["OPENVIDU_RECORDING_PATH"] = str(cfg.effective_recording_path)
        d["OPENVIDU_RECORDING_PUBLIC_ACCESS"] = cfg.recording_public_access
        d["OPENVIDU_RECORDING_NOTIFICATION"] = cfg.recording_notification
        d["OPENVIDU_RECORDING_CUSTOM_LAYOUT"] = ""
        d["OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT"] = cfg.recording_autostop_timeout_s
    if cfg.webhook.enabled:
        d["OPENVIDU_WEBHOOK_ENDPOINT"] = cfg.webhook.endpoint
        d["OPENVIDU_WEBHOOK_HEADERS"] = cfg.webhook.header_strings()
        d["OPENVIDU_WEBHOOK_EVENTS"] = list(cfg.webhook.events)
    return d


@routes.get("/openvidu/api/config")
async def get_config(request: web.Request) -> web.Response:
    return json_response(render_config(request.app[CONFIG], http_base(request)))


@routes.get("/openvidu/api/config/openvidu-version")
async def get_version(request: web.Request) -> web.Response:
    return web.Response(text=OPENVIDU_VERSION)


@routes.get("/openvidu/api/config/openvidu-publicurl")
async def get_public_url(request: web.Request) -> web.Response:
    """Unauthenticated; the public URL with a trailing slash."""
    return web.Response(text=http_base(request) + "/")


@routes.get("/openvidu/api/config/openvidu-recording")
async def get_recording(request: web.Request) -> web.Response:
    return web.Response(text="true" if request.app[CONFIG].recording else "false")


@routes.get("/openvidu/api/config/openvidu-recording-path")
async def get_recording_path(request: web.Request) -> web.Response:
    cfg = request.app[CONFIG]
    return web.Response(text=str(cfg.effective_recording_path) if cfg.recording else "")


@routes.get("/openvidu/api/config/openvidu-cdr")
async def get_cdr(request: web.Request) -> web.Response:
    return web.Response(text="true" if request.app[CONFIG].cdr else "false")


@routes.get("/openvidu/api/health")
async def api_health(request: web.Request) -> web.Response:
    return json_response({"status": "UP", "disconnectedMediaNodes": []})
