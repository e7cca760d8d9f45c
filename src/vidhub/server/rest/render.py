"""Rendering domain records as OpenVidu REST JSON (openvidu.md §1.3, §1.4, §1.8).

Field order and the presence of null keys follow OpenVidu exactly: clients index some keys
directly, so a missing key is a crash on their side.
"""

from __future__ import annotations

from typing import Any

from vidhub.core.models import Connection, MediaOptions, Session
from vidhub.manager import SessionView
from vidhub.protocol.openvidu_rest import (
    render_ice_server,
    render_kurento_options,
    render_recording_properties,
)

__all__ = ["render_connection", "render_page", "render_session", "render_token"]


def render_page(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"numberOfElements": N, "content": [...]}``."""
    return {"numberOfElements": len(items), "content": items}


def render_session(
    view: SessionView, *, pending: bool = False, stats: bool = False
) -> dict[str, Any]:
    """Session JSON; pending connections only when ``pending``."""
    s: Session = view.session
    p = s.properties
    d: dict[str, Any] = {
        "id": s.id,
        "object": "session",
        "sessionId": s.id,
        "createdAt": s.created_at,
        "recording": view.recording,
        "broadcasting": False,
        "mediaMode": p.media_mode,
        "recordingMode": p.recording_mode,
        "defaultRecordingProperties": render_recording_properties(p.default_recording_properties),
        "customSessionId": p.custom_session_id,
        "forcedVideoCodec": p.forced_video_codec,
        "allowTranscoding": p.allow_transcoding,
    }
    if p.media_node is not None:
        d["mediaNode"] = {"id": p.media_node}
    d["connections"] = render_page(
        [render_connection(c, stats=stats) for c in view.connections if pending or c.active]
    )
    return d


def _media_options(m: MediaOptions) -> dict[str, Any]:
    d: dict[str, Any] = {"hasAudio": m.has_audio}
    if m.has_audio:
        d["audioActive"] = m.audio_active
    d["hasVideo"] = m.has_video
    if m.has_video:
        d["videoActive"] = m.video_active
        d["typeOfVideo"] = m.type_of_video
        d["frameRate"] = m.frame_rate
        d["videoDimensions"] = m.video_dimensions
    d["filter"] = m.filter
    return d


def render_connection(c: Connection, *, stats: bool = False) -> dict[str, Any]:
    """Connection JSON, active or pending shape."""
    p = c.properties
    ipcam = p.type == "IPCAM"
    head: dict[str, Any] = {
        "id": c.id,
        "object": "connection",
        "status": c.status,
        "connectionId": c.id,
        "sessionId": c.session_id,
        "createdAt": c.created_at,
    }
    props: dict[str, Any] = {
        "type": p.type,
        "record": p.record,
        "role": None if ipcam else p.role,
        "kurentoOptions": render_kurento_options(p.kurento_options),
        "customIceServers": [render_ice_server(s) for s in p.custom_ice_servers],
        "rtspUri": p.rtsp_uri,
        "adaptativeBitrate": p.adaptative_bitrate,
        "onlyPlayWithSubscribers": p.only_play_with_subscribers,
        "networkCache": p.network_cache,
        "serverData": p.data,
    }
    if not c.active:
        d = head | props
        d.update(
            token=c.token,
            activeAt=None,
            location=None,
            ip=None,
            platform=None,
            clientData=None,
            publishers=None,
            subscribers=None,
        )
        return d
    d = head | {
        "activeAt": c.active_at,
        "location": c.location or "unknown",
        "ip": c.ip,
        "platform": c.platform,
        "token": None if ipcam else c.token,
    }
    d.update(props)
    d["clientData"] = c.client_data or ""
    pubs = []
    for pub in c.publishers:
        entry: dict[str, Any] = {
            "createdAt": pub.created_at,
            "streamId": pub.stream_id,
            "mediaOptions": _media_options(pub.media_options),
        }
        if stats:
            entry.update(webrtcEndpointName=pub.stream_id, localSdp="", remoteSdp="")
        pubs.append(entry)
    subs = []
    for sub in c.subscribers:
        sentry: dict[str, Any] = {"createdAt": sub.created_at, "streamId": sub.stream_id}
        if stats:
            sentry.update(webrtcEndpointName=sub.stream_id, localSdp="", remoteSdp="")
        subs.append(sentry)
    d["publishers"] = pubs
    d["subscribers"] = subs
    return d


def render_token(c: Connection) -> dict[str, Any]:
    """Legacy Token JSON for ``POST /tokens`` (openvidu.md §1.8)."""
    p = c.properties
    d: dict[str, Any] = {
        "id": c.token,
        "token": c.token,
        "createdAt": c.created_at,
        "connectionId": c.id,
        "session": c.session_id,
        "data": p.data,
        "role": p.role,
    }
    k = render_kurento_options(p.kurento_options)
    if k is not None:
        d["kurentoOptions"] = k
    if p.custom_ice_servers:
        d["customIceServers"] = [render_ice_server(s) for s in p.custom_ice_servers]
    return d
