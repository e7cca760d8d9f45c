"""Bounded hypothesis runs over the OpenVidu REST parsers (openvidu.md §1.6-§1.9).

Any body a client can send must give either a parsed value or :class:`BadRequest` (a 400):
nothing else may escape, since anything else would be a 500. Accepted bodies must round-trip
through the renderers and the persistence records unchanged.
"""

from __future__ import annotations

import string
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import examples
from vidhub.errors import BadRequest
from vidhub.protocol import jsoncodec
from vidhub.protocol.openvidu_rest import (
    CONNECTION_TYPES,
    LAYOUTS,
    MEDIA_MODES,
    OUTPUT_MODES,
    RECORDING_MODES,
    ROLES,
    VIDEO_CODECS,
    parse_connection_properties,
    parse_recording_properties,
    parse_session_properties,
    parse_signal,
    parse_token_request,
    render_kurento_options,
    render_recording_properties,
)

FAST = settings(max_examples=examples(300))

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e300, -1e300, 2.0**63, 2.0**64, 25.0])
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
enum_words = st.sampled_from(
    MEDIA_MODES + RECORDING_MODES + VIDEO_CODECS + CONNECTION_TYPES + ROLES + OUTPUT_MODES + LAYOUTS
)
urls = st.builds(
    lambda scheme, host, port, q: f"{scheme}:{host}{port}{q}",
    st.sampled_from(["stun", "stuns", "turn", "turns", "http", "STUN", ""]),
    st.text(alphabet=string.ascii_letters + string.digits + ".-[]:_ ", max_size=15),
    st.sampled_from(["", ":3478", ":0", ":99999", ":", ":x", ":\u00b2"]),
    st.sampled_from(["", "?transport=udp", "?transport=tcp", "?transport=x", "?"]),
)
ice_entries = st.fixed_dictionaries(
    {"url": urls | json_values},
    optional={
        "username": st.text(max_size=4) | json_values,
        "credential": st.text(max_size=4) | json_values,
        "staticAuthSecret": st.text(max_size=4) | json_values,
    },
)
recording = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=8) | json_values,
        "hasAudio": st.booleans() | json_values,
        "hasVideo": st.booleans() | json_values,
        "outputMode": enum_words | json_values,
        "recordingLayout": enum_words | json_values,
        "resolution": st.from_regex(r"[0-9]{1,4}x[0-9]{1,4}", fullmatch=True) | json_values,
        "frameRate": st.integers(-5, 200) | json_values,
        "shmSize": st.integers(0, 2**40) | json_values,
        "customLayout": st.text(max_size=5) | json_values,
        "ignoreFailedStreams": st.booleans() | json_values,
        "mediaNode": st.fixed_dictionaries({"id": st.text(max_size=4) | json_values}) | json_values,
    },
)
session_bodies = json_values | st.fixed_dictionaries(
    {},
    optional={
        "mediaMode": enum_words | json_values,
        "recordingMode": enum_words | json_values,
        "customSessionId": st.from_regex(r"[a-zA-Z0-9_-]{0,12}", fullmatch=True)
        | st.text(max_size=8)
        | json_values,
        "forcedVideoCodec": enum_words | json_values,
        "allowTranscoding": st.booleans() | json_values,
        "defaultRecordingProperties": recording | json_values,
        "mediaNode": json_values,
    },
)
connection_bodies = json_values | st.fixed_dictionaries(
    {},
    optional={
        "type": enum_words | json_values,
        "data": st.text(max_size=8) | json_values,
        "record": st.booleans() | json_values,
        "role": enum_words | json_values,
        "kurentoOptions": st.fixed_dictionaries(
            {},
            optional={
                "videoMaxRecvBandwidth": st.integers(-10, 10**6) | json_values,
                "videoMinSendBandwidth": st.integers(-10, 10**6) | json_values,
                "allowedFilters": st.lists(st.text(max_size=5), max_size=3) | json_values,
            },
        )
        | json_values,
        "customIceServers": st.lists(ice_entries, max_size=3) | json_values,
        "rtspUri": st.sampled_from(["rtsp://127.0.0.1/x", "file:///x", "ftp://x", ""])
        | json_values,
        "adaptativeBitrate": st.booleans() | json_values,
        "onlyPlayWithSubscribers": st.booleans() | json_values,
        "networkCache": st.integers(-10, 10**5) | json_values,
    },
)


def only_bad_request(fn: Any, body: Any) -> Any:
    try:
        return fn(body)
    except BadRequest as exc:
        assert exc.http_status == 400 and exc.message
        return None


@FAST
@given(session_bodies)
def test_session_bodies(body: Any) -> None:
    props = only_bad_request(parse_session_properties, body)
    if props is not None:
        # what was accepted renders, serialises and re-parses to the same properties
        rendered = render_recording_properties(props.default_recording_properties)
        jsoncodec.dumps_bytes(rendered)
        again = parse_recording_properties(rendered)
        assert render_recording_properties(again) == rendered


@FAST
@given(connection_bodies)
def test_connection_bodies(body: Any) -> None:
    props = only_bad_request(parse_connection_properties, body)
    if props is not None:
        k = render_kurento_options(props.kurento_options)
        jsoncodec.dumps_bytes(k)  # what is accepted must be renderable (no 500 later)
        jsoncodec.dumps_bytes([props.network_cache, props.data, props.rtsp_uri])
        again = parse_connection_properties(
            {"kurentoOptions": k, "role": props.role, "data": props.data, "record": props.record}
        )
        assert again.kurento_options == props.kurento_options
        assert (again.role, again.data, again.record) == (props.role, props.data, props.record)


@FAST
@given(json_values | st.fixed_dictionaries({"session": st.text(max_size=5) | json_values}))
def test_token_bodies(body: Any) -> None:
    only_bad_request(parse_token_request, body)


@FAST
@given(
    json_values
    | st.fixed_dictionaries(
        {"session": st.text(max_size=5) | json_values},
        optional={
            "to": st.lists(st.text(max_size=5), max_size=3) | json_values,
            "type": st.text(max_size=5) | json_values,
            "data": st.text(max_size=5) | json_values,
        },
    )
)
def test_signal_bodies(body: Any) -> None:
    only_bad_request(parse_signal, body)


@FAST
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_raw_bytes_decode_or_fail_cleanly(raw: bytes) -> None:
    """What json_body does with a raw body: decode or JSONDecodeError, then parse or 400."""
    try:
        value = jsoncodec.loads(raw)
    except jsoncodec.JSONDecodeError:
        return
    for fn in (parse_session_properties, parse_connection_properties, parse_signal):
        only_bad_request(fn, value)
