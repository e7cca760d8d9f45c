"""``POST /openvidu/api/recordings/start`` body parsing (openvidu.md §1.9); no I/O.

Status codes follow CE: a missing or non-string ``session`` is 400; a ``resolution``,
``frameRate`` or ``shmSize`` out of range, or ``hasAudio`` and ``hasVideo`` both false, is
422; any other bad property (wrong type, unknown enum, bad name) is 400. Unset properties
come from the session's ``defaultRecordingProperties``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from vidhub.errors import BadRequest, Unprocessable
from vidhub.protocol.openvidu_rest import RecordingProperties, parse_recording_properties

__all__ = ["parse_start_properties", "parse_start_session"]

_RESOLUTION = re.compile(r"^(?!(0))(([0-9]{3})|1([0-9]{3}))x(?!0)(([0-9]{3})|1([0-9]{3}))$")
_COMPOSED = ("COMPOSED", "COMPOSED_QUICK_START")


def parse_start_session(body: Any) -> str:
    """The ``session`` of a start body. Raises BadRequest (400) when absent or not a string."""
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    session = body.get("session")
    if not isinstance(session, str):
        raise BadRequest('"session" parameter is mandatory and must be a string')
    return session


def parse_start_properties(
    body: dict[str, Any], defaults: RecordingProperties
) -> RecordingProperties:
    """The recording's properties: the body over the session's defaults.

    Raises:
        Unprocessable: resolution, frame rate or shm size out of range, or no track (422).
        BadRequest: any other invalid property (400).
    """
    res = body.get("resolution")
    if isinstance(res, str) and not _RESOLUTION.match(res):
        raise Unprocessable(
            "Wrong 'resolution' parameter. Acceptable values from 100 to 1999 for both width "
            "and height"
        )
    fr = body.get("frameRate")
    if isinstance(fr, int) and not isinstance(fr, bool) and not 1 <= fr <= 120:
        raise Unprocessable("Wrong 'frameRate' parameter. Acceptable values are [1,120]")
    shm = body.get("shmSize")
    if isinstance(shm, int) and not isinstance(shm, bool) and shm < 134217728:
        raise Unprocessable("Wrong 'shmSize' parameter. Must be 134217728 (128 MB) minimum")
    ha = body.get("hasAudio", defaults.has_audio)
    hv = body.get("hasVideo", defaults.has_video)
    if ha is False and hv is False:
        raise Unprocessable(
            'Cannot start a recording with both "hasAudio" and "hasVideo" set to false'
        )
    props = parse_recording_properties({k: v for k, v in body.items() if k != "session"}, defaults)
    # COMPOSED and COMPOSED_QUICK_START follow the session's default between the two.
    if props.output_mode in _COMPOSED and defaults.output_mode in _COMPOSED:
        props = replace(props, output_mode=defaults.output_mode)
    return props
