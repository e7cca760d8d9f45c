"""The dashboard feed's JSON: stats snapshots and plotted history as plain data.

Plot points are arrays to keep the frames small: a stream point is ``[t_ms, bitrate_kbps,
loss_pct, rtt_ms|null, fps]`` and a server point ``[t_ms, cpu_pct, rss_mib, open_sockets]``.
"""

from __future__ import annotations

import json
from typing import Any

from vidhub.core.models import Connection
from vidhub.server.stats import Snapshot, StatsSource, StreamPoint

__all__ = ["display_name", "history_json", "tick_json"]


def display_name(client_data: str | None) -> str:
    """The name a participant chose: ``clientData`` of ``{"clientData": ...}`` or the text."""
    text = client_data or ""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and value.get("clientData") is not None:
        return str(value["clientData"])
    return text


def _point(p: StreamPoint) -> list[Any]:
    return [p.t_ms, p.bitrate_kbps, p.loss_pct, p.rtt_ms, p.fps]


def _connection(c: Connection) -> dict[str, Any]:
    return {
        "id": c.id,
        "status": c.status,
        "name": display_name(c.client_data),
        "role": c.properties.role,
        "platform": c.platform,
        "activeAt": c.active_at,
        "publishers": [
            {
                "streamId": p.stream_id,
                "hasAudio": p.media_options.has_audio,
                "audioActive": p.media_options.audio_active,
                "hasVideo": p.media_options.has_video,
                "videoActive": p.media_options.video_active,
                "typeOfVideo": p.media_options.type_of_video if p.media_options.has_video else None,
            }
            for p in c.publishers
        ],
        "subscribers": [s.stream_id for s in c.subscribers],
    }


def history_json(source: StatsSource, event_filter: str) -> dict[str, Any]:
    """``hello``: every plotted series so far."""
    return {
        "type": "hello",
        "filter": event_filter,
        "server": [list(p) for p in source.server],
        "streams": {leg: [_point(p) for p in pts] for leg, pts in source.streams.items()},
    }


def tick_json(source: StatsSource, snap: Snapshot) -> dict[str, Any]:
    """``tick``: the lists and figures of ``snap`` plus the plot points it added."""
    metrics = {m.name: sum(v for _labels, v in m.samples) for m in snap.metrics}
    server_point = list(source.server[-1]) if source.server else None
    points = {
        leg: _point(pts[-1])
        for leg, pts in source.streams.items()
        if pts and pts[-1].t_ms == snap.wall_ms
    }
    return {
        "type": "tick",
        "t": snap.wall_ms,
        "sessions": [
            {
                "id": v.session.id,
                "createdAt": v.session.created_at,
                "active": v.active,
                "connections": [_connection(c) for c in v.connections],
            }
            for v in sorted(snap.sessions, key=lambda v: v.session.created_at)
        ],
        "legs": [
            {
                "id": leg.leg_id,
                "session": leg.session_id,
                "stream": leg.stream_id,
                "connection": leg.connection_id,
                "direction": leg.direction,
            }
            for leg in snap.legs
        ],
        "server": {
            "cpuPct": server_point[1] if server_point else None,
            "rssMiB": round(snap.rss_bytes / 2**20, 1),
            "sockets": snap.sockets,
            "metrics": metrics,
        },
        "points": {"server": server_point, "streams": points},
    }
