"""Parsing and validation of OpenVidu REST bodies (openvidu.md §1.5-§1.9): every 400 case."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import pytest

from vidhub.errors import BadRequest
from vidhub.protocol.openvidu_rest import (
    ConnectionProperties,
    IceServer,
    KurentoOptions,
    RecordingProperties,
    SessionProperties,
    parse_connection_properties,
    parse_recording_properties,
    parse_session_properties,
    parse_signal,
    parse_token_request,
    render_ice_server,
    render_kurento_options,
    render_recording_properties,
    turn_rest_credentials,
)


def bad(fn: Any, body: Any, fragment: str = "") -> str:
    with pytest.raises(BadRequest) as info:
        fn(body)
    assert info.value.http_status == 400
    assert fragment in info.value.message
    return info.value.message


# -- POST /sessions (§1.6) -------------------------------------------------------------------
def test_session_no_body_uses_builder_defaults() -> None:
    p = parse_session_properties(None, default_codec="VP8", default_transcoding=True)
    assert p == SessionProperties()
    assert p.forced_video_codec == "MEDIA_SERVER_PREFERRED" and p.allow_transcoding is False


def test_session_empty_body_uses_config_defaults() -> None:
    p = parse_session_properties({}, default_codec="VP8", default_transcoding=True)
    assert (p.forced_video_codec, p.allow_transcoding) == ("VP8", True)
    assert (p.media_mode, p.recording_mode, p.custom_session_id) == ("ROUTED", "MANUAL", "")


def test_session_node_client_body() -> None:
    body = {
        "mediaMode": "ROUTED",
        "recordingMode": "MANUAL",
        "customSessionId": "",
        "defaultRecordingProperties": {
            "name": "",
            "hasAudio": True,
            "hasVideo": True,
            "outputMode": "COMPOSED",
            "recordingLayout": "BEST_FIT",
            "resolution": "1280x720",
            "frameRate": 25,
            "shmSize": 536870912,
        },
    }
    p = parse_session_properties(body)
    assert p.default_recording_properties == RecordingProperties()
    assert p.custom_session_id == ""


def test_session_all_fields() -> None:
    p = parse_session_properties(
        {
            "mediaMode": "RELAYED",
            "recordingMode": "ALWAYS",
            "customSessionId": "My-Session_1",
            "forcedVideoCodec": "H264",
            "allowTranscoding": True,
            "mediaNode": {"id": "kms_1"},
            "unknownKey": [1, 2],  # ignored
        }
    )
    assert p == SessionProperties(
        media_mode="RELAYED",
        recording_mode="ALWAYS",
        custom_session_id="My-Session_1",
        forced_video_codec="H264",
        allow_transcoding=True,
        media_node="kms_1",
    )


def test_session_nulls_mean_not_provided() -> None:
    body = {k: None for k in ("mediaMode", "recordingMode", "customSessionId", "mediaNode")}
    assert parse_session_properties(body) == SessionProperties()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "JSON object"),
        ("text", "JSON object"),
        (42, "JSON object"),
        ({"mediaMode": "SFU"}, "mediaMode"),
        ({"mediaMode": 1}, "mediaMode"),
        ({"recordingMode": "SOMETIMES"}, "recordingMode"),
        ({"customSessionId": "has space"}, "customSessionId"),
        ({"customSessionId": "dots.not.allowed"}, "customSessionId"),
        ({"customSessionId": "ü"}, "customSessionId"),
        ({"customSessionId": 12}, "customSessionId"),
        ({"customSessionId": "x" * 257}, "customSessionId"),
        ({"forcedVideoCodec": "AV1"}, "forcedVideoCodec"),
        ({"allowTranscoding": "yes"}, "allowTranscoding"),
        ({"mediaNode": "kms_1"}, "mediaNode"),
        ({"mediaNode": {}}, "mediaNode"),
        ({"mediaNode": {"id": 3}}, "mediaNode"),
        ({"defaultRecordingProperties": "COMPOSED"}, "defaultRecordingProperties"),
        ({"defaultRecordingProperties": {"outputMode": "MIXED"}}, "outputMode"),
        ({"defaultRecordingProperties": {"recordingLayout": "GRID"}}, "recordingLayout"),
        ({"defaultRecordingProperties": {"resolution": "99x720"}}, "resolution"),
        ({"defaultRecordingProperties": {"resolution": "2000x720"}}, "resolution"),
        ({"defaultRecordingProperties": {"resolution": "0720x720"}}, "resolution"),
        ({"defaultRecordingProperties": {"frameRate": 0}}, "frameRate"),
        ({"defaultRecordingProperties": {"frameRate": 121}}, "frameRate"),
        ({"defaultRecordingProperties": {"frameRate": "25"}}, "frameRate"),
        ({"defaultRecordingProperties": {"frameRate": True}}, "frameRate"),
        ({"defaultRecordingProperties": {"shmSize": 1024}}, "shmSize"),
        ({"defaultRecordingProperties": {"hasAudio": False, "hasVideo": False}}, "hasAudio"),
        ({"defaultRecordingProperties": {"hasAudio": "no"}}, "hasAudio"),
        ({"defaultRecordingProperties": {"name": "bad name"}}, "name"),
        ({"defaultRecordingProperties": {"mediaNode": 5}}, "mediaNode"),
        ({"defaultRecordingProperties": {"mediaNode": {"id": None}}}, "mediaNode"),
    ],
)
def test_session_400s(body: Any, fragment: str) -> None:
    bad(parse_session_properties, body, fragment)


def test_custom_session_id_message_is_openvidus() -> None:
    msg = bad(parse_session_properties, {"customSessionId": "a b"})
    assert msg == (
        "Some parameter is not valid. Parameter 'customSessionId' is wrong. "
        "Must be an alphanumeric string [a-zA-Z0-9_-]"
    )


def test_recording_properties_inherit_and_render() -> None:
    base = RecordingProperties(name="base", frame_rate=30)
    p = parse_recording_properties({"outputMode": "INDIVIDUAL", "frameRate": 10.0}, base)
    assert (p.name, p.output_mode, p.frame_rate) == ("base", "INDIVIDUAL", 10)
    assert render_recording_properties(p) == {
        "name": "base",
        "hasAudio": True,
        "hasVideo": True,
        "outputMode": "INDIVIDUAL",
        "ignoreFailedStreams": False,
    }
    custom = parse_recording_properties({"recordingLayout": "CUSTOM", "customLayout": "x.html"})
    assert render_recording_properties(custom)["customLayout"] == "x.html"
    assert list(render_recording_properties(RecordingProperties())) == [
        "name",
        "hasAudio",
        "hasVideo",
        "outputMode",
        "recordingLayout",
        "resolution",
        "frameRate",
        "shmSize",
    ]
    audio_only = parse_recording_properties({"hasVideo": False, "mediaNode": {"id": "m"}})
    assert render_recording_properties(audio_only) == {
        "name": "",
        "hasAudio": True,
        "hasVideo": False,
        "outputMode": "COMPOSED",
        "mediaNode": {"id": "m"},
    }


# -- POST /sessions/{id}/connection (§1.7) ---------------------------------------------------
def test_connection_defaults() -> None:
    assert parse_connection_properties(None) == ConnectionProperties()
    assert parse_connection_properties({}) == ConnectionProperties()


def test_connection_node_client_all_nulls() -> None:
    body = dict.fromkeys(
        (
            "type",
            "data",
            "record",
            "role",
            "kurentoOptions",
            "rtspUri",
            "adaptativeBitrate",
            "onlyPlayWithSubscribers",
            "networkCache",
        )
    )
    assert parse_connection_properties(body) == ConnectionProperties()


def test_connection_full_webrtc() -> None:
    p = parse_connection_properties(
        {
            "type": "WEBRTC",
            "data": "alice",
            "record": False,
            "role": "MODERATOR",
            "kurentoOptions": {
                "videoMaxRecvBandwidth": 1000,
                "videoMinRecvBandwidth": 0,
                "allowedFilters": ["GStreamerFilter", "FaceOverlayFilter"],
            },
            "customIceServers": [
                {"url": "turn:127.0.0.1:3478?transport=tcp", "username": "u", "credential": "p"},
                {"url": "stun:[::1]:3478"},
            ],
        }
    )
    assert (p.type, p.data, p.record, p.role) == ("WEBRTC", "alice", False, "MODERATOR")
    assert p.kurento_options == KurentoOptions(
        video_max_recv_bandwidth=1000,
        video_min_recv_bandwidth=0,
        allowed_filters=("GStreamerFilter", "FaceOverlayFilter"),
    )
    assert render_kurento_options(p.kurento_options) == {
        "videoMaxRecvBandwidth": 1000,
        "videoMinRecvBandwidth": 0,
        "allowedFilters": ["GStreamerFilter", "FaceOverlayFilter"],
    }
    assert render_kurento_options(None) is None
    assert [render_ice_server(s) for s in p.custom_ice_servers] == [
        {"url": "turn:127.0.0.1:3478?transport=tcp", "username": "u", "credential": "p"},
        {"url": "stun:[::1]:3478"},
    ]


def test_connection_ipcam() -> None:
    p = parse_connection_properties(
        {"type": "IPCAM", "rtspUri": "rtsp://127.0.0.1:554/live", "role": "NONSENSE"}
    )
    assert (p.type, p.rtsp_uri, p.role) == ("IPCAM", "rtsp://127.0.0.1:554/live", "PUBLISHER")
    assert (p.adaptative_bitrate, p.only_play_with_subscribers, p.network_cache) == (
        True,
        True,
        2000,
    )
    q = parse_connection_properties(
        {
            "type": "IPCAM",
            "rtspUri": "file:///tmp/x.mp4",
            "adaptativeBitrate": False,
            "onlyPlayWithSubscribers": False,
            "networkCache": 500,
        }
    )
    assert (q.adaptative_bitrate, q.only_play_with_subscribers, q.network_cache) == (
        False,
        False,
        500,
    )


def test_turn_static_auth_secret_generates_rest_credentials() -> None:
    user, cred = turn_rest_credentials("s3cret", 1_700_000_000.5, "abcdEFGH")
    assert user == "1700086400:abcdEFGH"
    expected = hmac.new(b"s3cret", user.encode(), hashlib.sha1).digest()
    assert cred == base64.b64encode(expected).decode()
    p = parse_connection_properties(
        {"customIceServers": [{"url": "turns:127.0.0.1:5349", "staticAuthSecret": "k"}]}
    )
    (server,) = p.custom_ice_servers
    assert isinstance(server, IceServer) and server.username and server.credential
    expiry, nonce = server.username.split(":")
    assert expiry.isdigit() and len(nonce) == 8


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "JSON object"),
        ({"type": "SIP"}, "Parameter 'type' SIP is not defined"),
        ({"type": 1}, "type"),
        ({"data": 123}, "Type error in some parameter: 'data'"),
        ({"data": {"a": 1}}, "data"),
        ({"record": "true"}, "record"),
        ({"role": "ADMIN"}, "Parameter role ADMIN is not defined"),
        ({"role": ["PUBLISHER"]}, "role"),
        ({"kurentoOptions": "fast"}, "kurentoOptions"),
        ({"kurentoOptions": {"videoMaxRecvBandwidth": "1000"}}, "videoMaxRecvBandwidth"),
        ({"kurentoOptions": {"videoMinSendBandwidth": 1.5}}, "videoMinSendBandwidth"),
        ({"kurentoOptions": {"videoMaxSendBandwidth": -1}}, "videoMaxSendBandwidth"),
        ({"kurentoOptions": {"videoMaxSendBandwidth": 1e300}}, "videoMaxSendBandwidth"),
        ({"kurentoOptions": {"videoMaxSendBandwidth": 2**63}}, "videoMaxSendBandwidth"),
        ({"kurentoOptions": {"allowedFilters": "GStreamerFilter"}}, "allowedFilters"),
        ({"kurentoOptions": {"allowedFilters": [1]}}, "allowedFilters"),
        ({"customIceServers": {"url": "stun:h"}}, "customIceServers"),
        ({"customIceServers": ["stun:h"]}, "customIceServers"),
        ({"customIceServers": [{}]}, "url"),
        ({"customIceServers": [{"url": "http://h"}]}, "stun, stuns, turn or turns"),
        ({"customIceServers": [{"url": "stun"}]}, "stun, stuns, turn or turns"),
        ({"customIceServers": [{"url": "stun:h?transport=udp"}]}, "transport"),
        (
            {
                "customIceServers": [
                    {"url": "turn:h?transport=sctp", "username": "u", "credential": "c"}
                ]
            },
            "transport",
        ),
        ({"customIceServers": [{"url": "stun:bad host"}]}, "host"),
        ({"customIceServers": [{"url": "stun:"}]}, "host"),
        ({"customIceServers": [{"url": "stun:[::1"}]}, "host"),
        ({"customIceServers": [{"url": "stun:h:0"}]}, "port"),
        ({"customIceServers": [{"url": "stun:h:65536"}]}, "port"),
        ({"customIceServers": [{"url": "stun:h:"}]}, "port"),
        ({"customIceServers": [{"url": "stun:h:x1"}]}, "port"),
        ({"customIceServers": [{"url": "stun:h:\u00b2"}]}, "port"),
        ({"customIceServers": [{"url": "stun:h", "username": "u"}]}, "STUN"),
        ({"customIceServers": [{"url": "stun:h", "staticAuthSecret": "s"}]}, "STUN"),
        ({"customIceServers": [{"url": "turn:h", "username": "u"}]}, "TURN"),
        ({"customIceServers": [{"url": "turn:h"}]}, "TURN"),
        (
            {
                "customIceServers": [
                    {"url": "turn:h", "username": "u", "credential": "c", "staticAuthSecret": "s"}
                ]
            },
            "not both",
        ),
        ({"customIceServers": [{"url": "turn:h", "username": 1, "credential": "c"}]}, "username"),
        ({"type": "IPCAM"}, "rtspUri"),
        ({"type": "IPCAM", "rtspUri": ""}, "rtspUri"),
        ({"type": "IPCAM", "rtspUri": 5}, "rtspUri"),
        ({"type": "IPCAM", "rtspUri": "ftp://h/x"}, "rtspUri"),
        (
            {"type": "IPCAM", "rtspUri": "rtsp://h/x", "adaptativeBitrate": "no"},
            "adaptativeBitrate",
        ),
        (
            {"type": "IPCAM", "rtspUri": "rtsp://h/x", "onlyPlayWithSubscribers": 0},
            "onlyPlayWithSubscribers",
        ),
        ({"type": "IPCAM", "rtspUri": "rtsp://h/x", "networkCache": "2000"}, "networkCache"),
        ({"type": "IPCAM", "rtspUri": "rtsp://h/x", "networkCache": 1e300}, "networkCache"),
    ],
)
def test_connection_400s(body: Any, fragment: str) -> None:
    bad(parse_connection_properties, body, fragment)


# -- POST /tokens (§1.8) and POST /signal (§1.5 #11) ------------------------------------------
def test_token_request() -> None:
    sid, props = parse_token_request(
        {"session": "s1", "role": "SUBSCRIBER", "data": "d", "record": False, "type": "IPCAM"}
    )
    assert sid == "s1"
    # record and type are not part of the legacy body: ignored
    assert (props.role, props.data, props.record, props.type) == ("SUBSCRIBER", "d", True, "WEBRTC")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (None, "JSON object"),
        ({}, "session"),
        ({"session": ""}, "session"),
        ({"session": 7}, "session"),
        ({"session": "s", "role": "KING"}, "role"),
        ({"session": "s", "kurentoOptions": []}, "kurentoOptions"),
    ],
)
def test_token_400s(body: Any, fragment: str) -> None:
    if body is None:
        # no body at all is the same as {}: session missing
        bad(parse_token_request, body, "session")
    else:
        bad(parse_token_request, body, fragment)


def test_signal() -> None:
    s = parse_signal(
        {"session": "s1", "to": ["con_a", "con_b"], "type": "signal:chat", "data": "hi"}
    )
    assert (s.session, s.to, s.type, s.data) == ("s1", ("con_a", "con_b"), "signal:chat", "hi")
    s = parse_signal({"session": "s1", "to": []})
    assert (s.to, s.type, s.data) == (None, "", "")  # an empty "to" broadcasts


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (None, "JSON object"),
        ([], "JSON object"),
        ({}, "session"),
        ({"session": 1}, "session"),
        ({"session": "s", "to": "con_a"}, "to"),
        ({"session": "s", "to": [1]}, "to"),
        ({"session": "s", "type": 5}, "type"),
        ({"session": "s", "data": {"x": 1}}, "data"),
    ],
)
def test_signal_400s(body: Any, fragment: str) -> None:
    bad(parse_signal, body, fragment)
