"""Builders of OpenVidu-format lifecycle events (openvidu.md §4.2-4.3) from domain records."""

from __future__ import annotations

from typing import Any

from vidhub.core.events import ServerEvent
from vidhub.core.models import Connection, Publisher, Session

__all__ = [
    "participant_joined",
    "participant_left",
    "session_created",
    "session_destroyed",
    "signal_sent",
    "webrtc_connection_created",
    "webrtc_connection_destroyed",
]


def _common(session: Session, timestamp: int) -> dict[str, Any]:
    return {"sessionId": session.id, "uniqueSessionId": session.unique_id, "timestamp": timestamp}


def _end(d: dict[str, Any], start: int, now: int, reason: str | None) -> dict[str, Any]:
    d["startTime"] = start
    d["duration"] = max(0, (now - start) // 1000)
    if reason is not None:
        d["reason"] = reason
    return d


def session_created(session: Session) -> ServerEvent:
    return ServerEvent("sessionCreated", _common(session, session.created_at))


def session_destroyed(session: Session, now: int, reason: str) -> ServerEvent:
    return ServerEvent(
        "sessionDestroyed", _end(_common(session, now), session.created_at, now, reason)
    )


def _participant(session: Session, conn: Connection, timestamp: int) -> dict[str, Any]:
    d = _common(session, timestamp)
    d.update(
        participantId=conn.id,
        connectionId=conn.id,
        location=conn.location or "unknown",
        ip=conn.ip,
        platform=conn.platform,
        clientData=conn.client_data or "",
        serverData=conn.properties.data,
    )
    return d


def participant_joined(session: Session, conn: Connection) -> ServerEvent:
    return ServerEvent("participantJoined", _participant(session, conn, conn.active_at or 0))


def participant_left(session: Session, conn: Connection, now: int, reason: str) -> ServerEvent:
    d = _participant(session, conn, now)
    return ServerEvent("participantLeft", _end(d, conn.active_at or now, now, reason))


def _webrtc(
    session: Session, conn: Connection, pub: Publisher, timestamp: int, receiving_from: str | None
) -> dict[str, Any]:
    d = _common(session, timestamp)
    d.update(
        streamId=pub.stream_id,
        participantId=conn.id,
        connectionId=conn.id,
        connection="INBOUND" if receiving_from else "OUTBOUND",
    )
    if receiving_from:
        d["receivingFrom"] = receiving_from
    m = pub.media_options
    if m.has_video:
        d.update(
            videoSource=m.type_of_video,
            videoFramerate=m.frame_rate,
            videoDimensions=m.video_dimensions,
        )
    d.update(audioEnabled=m.has_audio, videoEnabled=m.has_video)
    return d


def webrtc_connection_created(
    session: Session, conn: Connection, pub: Publisher, now: int, receiving_from: str | None = None
) -> ServerEvent:
    """OUTBOUND when ``conn`` publishes ``pub``; INBOUND when it subscribes to it."""
    return ServerEvent("webrtcConnectionCreated", _webrtc(session, conn, pub, now, receiving_from))


def webrtc_connection_destroyed(
    session: Session,
    conn: Connection,
    pub: Publisher,
    start: int,
    now: int,
    reason: str,
    receiving_from: str | None = None,
) -> ServerEvent:
    d = _webrtc(session, conn, pub, now, receiving_from)
    return ServerEvent("webrtcConnectionDestroyed", _end(d, start, now, reason))


def signal_sent(
    session: Session, now: int, sender: str | None, to: list[str], type_: str, data: str
) -> ServerEvent:
    d = _common(session, now)
    d.update({"from": sender, "to": to, "type": type_, "data": data})
    return ServerEvent("signalSent", d)
