"""Serialisation of domain records to plain JSON-able dicts, for persistent engines."""

from __future__ import annotations

from typing import Any

from vidhub.core.models import (
    Connection,
    ConnectionId,
    MediaOptions,
    Publisher,
    Session,
    SessionId,
    Subscriber,
)
from vidhub.protocol.openvidu_rest import (
    ConnectionProperties,
    IceServer,
    KurentoOptions,
    RecordingProperties,
    SessionProperties,
)

__all__ = ["connection_from_dict", "connection_to_dict", "session_from_dict", "session_to_dict"]


def session_to_dict(s: Session) -> dict[str, Any]:
    p = s.properties
    r = p.default_recording_properties
    return {
        "id": s.id,
        "created_at": s.created_at,
        "media_mode": p.media_mode,
        "recording_mode": p.recording_mode,
        "custom_session_id": p.custom_session_id,
        "forced_video_codec": p.forced_video_codec,
        "allow_transcoding": p.allow_transcoding,
        "media_node": p.media_node,
        "recording": {
            "name": r.name,
            "has_audio": r.has_audio,
            "has_video": r.has_video,
            "output_mode": r.output_mode,
            "recording_layout": r.recording_layout,
            "resolution": r.resolution,
            "frame_rate": r.frame_rate,
            "shm_size": r.shm_size,
            "custom_layout": r.custom_layout,
            "ignore_failed_streams": r.ignore_failed_streams,
            "media_node": r.media_node,
        },
    }


def session_from_dict(d: dict[str, Any]) -> Session:
    return Session(
        id=SessionId(d["id"]),
        created_at=d["created_at"],
        properties=SessionProperties(
            media_mode=d["media_mode"],
            recording_mode=d["recording_mode"],
            custom_session_id=d["custom_session_id"],
            forced_video_codec=d["forced_video_codec"],
            allow_transcoding=d["allow_transcoding"],
            media_node=d["media_node"],
            default_recording_properties=RecordingProperties(**d["recording"]),
        ),
    )


def _props_to_dict(p: ConnectionProperties) -> dict[str, Any]:
    k = p.kurento_options
    return {
        "type": p.type,
        "data": p.data,
        "record": p.record,
        "role": p.role,
        "kurento_options": None
        if k is None
        else {
            "video_max_recv_bandwidth": k.video_max_recv_bandwidth,
            "video_min_recv_bandwidth": k.video_min_recv_bandwidth,
            "video_max_send_bandwidth": k.video_max_send_bandwidth,
            "video_min_send_bandwidth": k.video_min_send_bandwidth,
            "allowed_filters": None if k.allowed_filters is None else list(k.allowed_filters),
        },
        "custom_ice_servers": [[s.url, s.username, s.credential] for s in p.custom_ice_servers],
        "rtsp_uri": p.rtsp_uri,
        "adaptative_bitrate": p.adaptative_bitrate,
        "only_play_with_subscribers": p.only_play_with_subscribers,
        "network_cache": p.network_cache,
    }


def _props_from_dict(d: dict[str, Any]) -> ConnectionProperties:
    k = d["kurento_options"]
    kopts = None
    if k is not None:
        filters = k.pop("allowed_filters")
        kopts = KurentoOptions(**k, allowed_filters=None if filters is None else tuple(filters))
    return ConnectionProperties(
        type=d["type"],
        data=d["data"],
        record=d["record"],
        role=d["role"],
        kurento_options=kopts,
        custom_ice_servers=tuple(IceServer(*x) for x in d["custom_ice_servers"]),
        rtsp_uri=d["rtsp_uri"],
        adaptative_bitrate=d["adaptative_bitrate"],
        only_play_with_subscribers=d["only_play_with_subscribers"],
        network_cache=d["network_cache"],
    )


def _media_to_dict(m: MediaOptions) -> dict[str, Any]:
    return {
        "has_audio": m.has_audio,
        "audio_active": m.audio_active,
        "has_video": m.has_video,
        "video_active": m.video_active,
        "type_of_video": m.type_of_video,
        "frame_rate": m.frame_rate,
        "video_dimensions": m.video_dimensions,
        "filter": m.filter,
    }


def connection_to_dict(c: Connection) -> dict[str, Any]:
    return {
        "id": c.id,
        "session_id": c.session_id,
        "token": c.token,
        "token_id": c.token_id,
        "created_at": c.created_at,
        "properties": _props_to_dict(c.properties),
        "status": c.status,
        "active_at": c.active_at,
        "location": c.location,
        "ip": c.ip,
        "platform": c.platform,
        "client_data": c.client_data,
        "node_id": c.node_id,
        "publishers": [
            {
                "stream_id": p.stream_id,
                "created_at": p.created_at,
                "media": _media_to_dict(p.media_options),
            }
            for p in c.publishers
        ],
        "subscribers": [
            {"stream_id": s.stream_id, "created_at": s.created_at} for s in c.subscribers
        ],
    }


def connection_from_dict(d: dict[str, Any]) -> Connection:
    return Connection(
        id=ConnectionId(d["id"]),
        session_id=SessionId(d["session_id"]),
        token=d["token"],
        token_id=d["token_id"],
        created_at=d["created_at"],
        properties=_props_from_dict(d["properties"]),
        status=d["status"],
        active_at=d["active_at"],
        location=d["location"],
        ip=d["ip"],
        platform=d["platform"],
        client_data=d["client_data"],
        node_id=d["node_id"],
        publishers=[
            Publisher(p["stream_id"], p["created_at"], MediaOptions(**p["media"]))
            for p in d["publishers"]
        ],
        subscribers=[Subscriber(s["stream_id"], s["created_at"]) for s in d["subscribers"]],
    )
