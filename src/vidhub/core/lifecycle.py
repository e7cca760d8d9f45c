"""Builders of the typed lifecycle events (openvidu.md §4.2-4.3) from domain records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidhub.core.events import (
    ParticipantJoined,
    ParticipantLeft,
    SessionCreated,
    SessionDestroyed,
    SignalSent,
    WebrtcConnectionCreated,
    WebrtcConnectionDestroyed,
)
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


def _duration_s(start: int, now: int) -> int:
    return max(0, (now - start) // 1000)


def session_created(session: Session) -> SessionCreated:
    return SessionCreated(
        session_id=session.id, unique_session_id=session.unique_id, timestamp=session.created_at
    )


def session_destroyed(session: Session, now: int, reason: str) -> SessionDestroyed:
    return SessionDestroyed(
        session_id=session.id,
        unique_session_id=session.unique_id,
        timestamp=now,
        start_time=session.created_at,
        duration=_duration_s(session.created_at, now),
        reason=reason,
    )


def _participant(session: Session, conn: Connection, timestamp: int) -> dict[str, Any]:
    return {
        "session_id": session.id,
        "unique_session_id": session.unique_id,
        "timestamp": timestamp,
        "connection_id": conn.id,
        "location": conn.location or "unknown",
        "ip": conn.ip,
        "platform": conn.platform,
        "client_data": conn.client_data or "",
        "server_data": conn.properties.data,
    }


def participant_joined(session: Session, conn: Connection) -> ParticipantJoined:
    return ParticipantJoined(**_participant(session, conn, conn.active_at or 0))


def participant_left(session: Session, conn: Connection, now: int, reason: str) -> ParticipantLeft:
    start = conn.active_at or now
    return ParticipantLeft(
        **_participant(session, conn, now),
        start_time=start,
        duration=_duration_s(start, now),
        reason=reason,
    )


def _webrtc(
    session: Session, conn: Connection, pub: Publisher, now: int, receiving_from: str | None
) -> dict[str, Any]:
    m = pub.media_options
    return {
        "session_id": session.id,
        "unique_session_id": session.unique_id,
        "timestamp": now,
        "stream_id": pub.stream_id,
        "connection_id": conn.id,
        "connection": "INBOUND" if receiving_from else "OUTBOUND",
        "receiving_from": receiving_from or None,
        "video_source": m.type_of_video,
        "video_framerate": m.frame_rate,
        "video_dimensions": m.video_dimensions,
        "audio_enabled": m.has_audio,
        "video_enabled": m.has_video,
    }


def webrtc_connection_created(
    session: Session, conn: Connection, pub: Publisher, now: int, receiving_from: str | None = None
) -> WebrtcConnectionCreated:
    """OUTBOUND when ``conn`` publishes ``pub``; INBOUND when it subscribes to it."""
    return WebrtcConnectionCreated(**_webrtc(session, conn, pub, now, receiving_from))


def webrtc_connection_destroyed(
    session: Session,
    conn: Connection,
    pub: Publisher,
    start: int,
    now: int,
    reason: str,
    receiving_from: str | None = None,
) -> WebrtcConnectionDestroyed:
    return WebrtcConnectionDestroyed(
        **_webrtc(session, conn, pub, now, receiving_from),
        start_time=start,
        duration=_duration_s(start, now),
        reason=reason,
    )


def signal_sent(
    session: Session, now: int, sender: str | None, to: Sequence[str], type_: str, data: str
) -> SignalSent:
    return SignalSent(
        session_id=session.id,
        unique_session_id=session.unique_id,
        timestamp=now,
        sender=sender,
        to=tuple(to),
        type=type_,
        data=data,
    )
