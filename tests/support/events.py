"""One sample of each typed lifecycle event, for tests that need any event of a given name."""

from __future__ import annotations

from typing import Any

from vidhub.core.events import (
    FilterEventDispatched,
    LifecycleEvent,
    ParticipantJoined,
    ParticipantLeft,
    RecordingStatusChanged,
    SessionCreated,
    SessionDestroyed,
    SignalSent,
    WebrtcConnectionCreated,
    WebrtcConnectionDestroyed,
)

__all__ = ["sample_event"]


def sample_event(name: str, session_id: str = "abc", timestamp: int = 1) -> LifecycleEvent:
    """A plausible event called ``name`` in session ``session_id``."""
    common: dict[str, Any] = {
        "session_id": session_id,
        "unique_session_id": f"{session_id}_1",
        "timestamp": timestamp,
    }
    who: dict[str, Any] = {
        "connection_id": "con_A",
        "location": "unknown",
        "ip": "127.0.0.1",
        "platform": "test",
        "client_data": "",
        "server_data": "",
    }
    leg: dict[str, Any] = {
        "stream_id": "str_CAM_X_con_A",
        "connection_id": "con_A",
        "connection": "OUTBOUND",
        "video_source": "CAMERA",
        "video_framerate": 30,
        "video_dimensions": "640x480",
        "audio_enabled": True,
        "video_enabled": True,
    }
    end: dict[str, Any] = {"start_time": 0, "duration": 0, "reason": "disconnect"}
    events: dict[str, LifecycleEvent] = {
        "sessionCreated": SessionCreated(**common),
        "sessionDestroyed": SessionDestroyed(**common, **end),
        "participantJoined": ParticipantJoined(**common, **who),
        "participantLeft": ParticipantLeft(**common, **who, **end),
        "webrtcConnectionCreated": WebrtcConnectionCreated(**common, **leg),
        "webrtcConnectionDestroyed": WebrtcConnectionDestroyed(**common, **leg, **end),
        "signalSent": SignalSent(**common, sender=None, to=("con_A",), type="t", data="d"),
        "recordingStatusChanged": RecordingStatusChanged(
            **common,
            start_time=0,
            id=session_id,
            recording_name=session_id,
            output_mode="INDIVIDUAL",
            has_audio=True,
            has_video=True,
            size=0,
            duration=0.0,
            status="started",
        ),
        "filterEventDispatched": FilterEventDispatched(
            **common,
            connection_id="con_A",
            stream_id="str_CAM_X_con_A",
            filter_type="GStreamerFilter",
            event_type="CodeFound",
            data="{}",
        ),
    }
    return events[name]
