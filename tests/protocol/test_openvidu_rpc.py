"""OpenVidu RPC params, results and notifications: the exact wire fields."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidhub.protocol import jsoncodec
from vidhub.protocol import openvidu_rpc as rpc


def test_join_params_require_token_and_session_with_openvidu_message() -> None:
    with pytest.raises(rpc.RpcError) as info:
        rpc.JoinRoomParams.parse({"session": "s"})
    assert info.value.rpc_code == -1
    assert info.value.message.startswith(
        "java.lang.RuntimeException:Request element 'token' is missing in RPC method 'joinRoom'"
    )
    p = rpc.JoinRoomParams.parse({"token": "t", "session": "s", "sdkVersion": "2.32.1"})
    assert (p.platform, p.metadata, p.secret, p.sdk_version) == ("unknown", "", "", "2.32.1")
    assert rpc.JoinRoomParams.parse(p.to_params()) == p


def test_wrong_param_types_are_rpc_errors() -> None:
    with pytest.raises(rpc.RpcError):
        rpc.PublishVideoParams.parse({"sdpOffer": 1, "hasAudio": True, "hasVideo": True})
    with pytest.raises(rpc.RpcError):
        rpc.PublishVideoParams.parse({"sdpOffer": "o", "hasAudio": "yes", "hasVideo": True})


def test_publish_params_round_trip_and_defaults() -> None:
    p = rpc.PublishVideoParams("o", True, True, video_dimensions='{"width":1,"height":2}')
    wire = p.to_params()
    assert wire["typeOfVideo"] == "CAMERA" and wire["frameRate"] == -1
    assert rpc.PublishVideoParams.parse(wire).video_dimensions == '{"width":1,"height":2}'
    audio_only = rpc.PublishVideoParams("o", True, False).to_params()
    assert "typeOfVideo" not in audio_only


def test_stream_connection_is_the_last_con_part() -> None:
    assert rpc.connection_of_stream("str_CAM_AbCd_con_Xyz") == "con_Xyz"
    assert rpc.ReceiveVideoFromParams("str_MIC_Ab1_con_A", "o").publisher_connection_id == "con_A"
    assert rpc.UnsubscribeParams("con_B").publisher_connection_id == "con_B"
    with pytest.raises(rpc.RpcError):
        rpc.ReceiveVideoFromParams.parse({"sender": "x"})


def test_send_message_builds_and_decodes_like_the_browser() -> None:
    p = rpc.SendMessageParams.build(["con_A"], "hi", "chat")
    assert jsoncodec.loads(p.message) == {"to": ["con_A"], "data": "hi", "type": "signal:chat"}
    assert p.signal() == rpc.SignalMessage(("con_A",), "hi", "signal:chat")
    with pytest.raises(rpc.RpcError) as info:
        rpc.SendMessageParams("not json").signal()
    assert info.value.rpc_code == 600
    with pytest.raises(rpc.RpcError) as info:
        rpc.SendMessageParams('{"to":[null]}').signal()
    assert info.value.rpc_code == 601


def test_metadata_joins_client_and_server_data() -> None:
    assert rpc.join_metadata("c", "s") == "c%/%s"
    assert rpc.join_metadata("", "s") == "s"
    assert rpc.join_metadata("c", "") == "c"


def test_remote_participant_has_no_role_and_streams_only_when_publishing() -> None:
    bare = rpc.RemoteParticipant("con_A", 1, "m")
    assert bare.to_json() == {"id": "con_A", "createdAt": 1, "metadata": "m"}
    s = rpc.StreamInfo("str_CAM_A_con_A", 2, video_dimensions='{"width":640,"height":480}')
    full = rpc.RemoteParticipant("con_A", 1, "m", (s,)).to_json()
    assert "role" not in full
    assert isinstance(full["streams"][0]["videoDimensions"], str)
    assert rpc.RemoteParticipant.from_json(full) == rpc.RemoteParticipant("con_A", 1, "m", (s,))
    assert rpc.participant_joined(bare) == {"id": "con_A", "createdAt": 1, "metadata": "m"}


def test_join_result_fields() -> None:
    r = rpc.JoinRoomResult("con_A", 5, "", (), "S", "PUBLISHER").to_json()
    for key in (
        "id",
        "createdAt",
        "metadata",
        "value",
        "session",
        "role",
        "version",
        "mediaServer",
        "videoSimulcast",
        "record",
        "customIceServers",
    ):
        assert key in r
    assert r["version"] == "2.32.1" and r["mediaServer"] == "kurento"
    assert rpc.JoinRoomResult.from_json(r).role == "PUBLISHER"


def test_stream_property_changed_new_value_is_json_text() -> None:
    n = rpc.stream_property_changed("c", "s", "videoActive", False, "publishVideo")
    assert n["newValue"] == "false"
    n = rpc.stream_property_changed("c", "s", "videoDimensions", '{"width":1}', "r")
    assert jsoncodec.loads(jsoncodec.loads(n["newValue"])) == {"width": 1}
    assert rpc.stream_property_changed("c", "s", "filter", {}, "r")["newValue"] == {}


def test_send_message_notification_omits_from_for_server_signals() -> None:
    assert rpc.send_message("d", "t", None) == {"data": "d", "type": "t"}
    assert rpc.send_message("d", "t", "con_A")["from"] == "con_A"


_values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.just(float("inf"))
    | st.text(max_size=8)
    | st.lists(st.text(max_size=3), max_size=2)
    | st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2)
)
_KEYS = [
    "token",
    "session",
    "platform",
    "metadata",
    "secret",
    "recorder",
    "stt",
    "sdkVersion",
    "sdpOffer",
    "sdpAnswer",
    "hasAudio",
    "hasVideo",
    "doLoopback",
    "audioActive",
    "videoActive",
    "typeOfVideo",
    "frameRate",
    "videoDimensions",
    "filter",
    "sender",
    "endpointName",
    "candidate",
    "sdpMid",
    "sdpMLineIndex",
    "streamId",
    "property",
    "newValue",
    "reason",
    "message",
    "connectionId",
    "width",
    "height",
    "stream",
    "sdpString",
    "sessionId",
    "reconnect",
]
_PARSERS = [
    rpc.JoinRoomParams.parse,
    rpc.PublishVideoParams.parse,
    rpc.ReceiveVideoFromParams.parse,
    rpc.UnsubscribeParams.parse,
    rpc.IceCandidateParams.parse,
    rpc.StreamPropertyChangedParams.parse,
    rpc.SendMessageParams.parse,
    rpc.ForceDisconnectParams.parse,
    rpc.ForceUnpublishParams.parse,
    rpc.ConnectParams.parse,
    rpc.VideoDataParams.parse,
    rpc.ReconnectStreamParams.parse,
]


@given(st.dictionaries(st.sampled_from(_KEYS), _values, max_size=12))
def test_fuzz_params_parsers_raise_only_rpc_errors(params: dict[str, Any]) -> None:
    for parse in _PARSERS:
        try:
            parse(params)
        except rpc.RpcError as exc:
            assert isinstance(exc.rpc_code, int)


@given(st.text(max_size=40))
def test_fuzz_signal_messages_raise_only_rpc_errors(text: str) -> None:
    with contextlib.suppress(rpc.RpcError):
        rpc.SendMessageParams(text).signal()
