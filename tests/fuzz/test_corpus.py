"""Replays ``corpus/crashers.json`` (past crashers and reported attacks) through each parser at
the trust boundary: every input must give a value or the parser's documented error."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from vidhub.config import Config, ConfigError
from vidhub.errors import BadRequest, VidhubError
from vidhub.hub import Hub
from vidhub.protocol import jsoncodec, jsonrpc
from vidhub.protocol import openvidu_rpc as rpc
from vidhub.protocol.expression import ExpressionError, compile_expression
from vidhub.protocol.openvidu_rest import parse_connection_properties, parse_session_properties
from vidhub.protocol.sdp import SdpError, parse_media_sections
from vidhub.protocol.socketio09 import PacketError, SocketIoProtocol

CORPUS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "corpus" / "crashers.json").read_text()
)

RPC_PARSERS = {
    "joinRoom": rpc.JoinRoomParams.parse,
    "publishVideo": rpc.PublishVideoParams.parse,
    "receiveVideoFrom": rpc.ReceiveVideoFromParams.parse,
    "unsubscribeFromVideo": rpc.UnsubscribeParams.parse,
    "onIceCandidate": rpc.IceCandidateParams.parse,
    "streamPropertyChanged": rpc.StreamPropertyChangedParams.parse,
    "sendMessage": rpc.SendMessageParams.parse,
    "forceDisconnect": rpc.ForceDisconnectParams.parse,
    "forceUnpublish": rpc.ForceUnpublishParams.parse,
    "connect": rpc.ConnectParams.parse,
    "videoData": rpc.VideoDataParams.parse,
    "reconnectStream": rpc.ReconnectStreamParams.parse,
}


@pytest.mark.parametrize("frame", CORPUS["jsonrpc"])
def test_jsonrpc_frames(frame: str) -> None:
    try:
        msg = jsonrpc.parse_message(frame)
    except jsonrpc.FrameError:
        return
    if isinstance(msg, jsonrpc.Request):
        for parse in RPC_PARSERS.values():  # whichever method it claims, every parser copes
            with contextlib.suppress(VidhubError):
                parse(msg.params)


@pytest.mark.parametrize("frame", CORPUS["socketio"])
def test_socketio_frames(frame: str) -> None:
    hub = Hub()
    try:
        events = SocketIoProtocol(client=False).receive_text(frame)
    except PacketError:
        return
    for event in events:
        args = getattr(event, "args", None)
        if isinstance(args, list):
            assert hub.handle(hub.open("s", "u", _NullOutbox()), args) is not None


class _NullOutbox:
    def send(self, frame: str) -> bool:
        return True

    def close(self, reason: str) -> None:
        pass


@pytest.mark.parametrize("text", CORPUS["expression"])
def test_expressions(text: str) -> None:
    with contextlib.suppress(ExpressionError):
        compile_expression(text)


@pytest.mark.parametrize("body", CORPUS["rest_session"] + CORPUS["rest_connection"])
def test_rest_bodies(body: str) -> None:
    try:
        obj = jsoncodec.loads(body)
    except ValueError:
        return
    for parse in (parse_session_properties, parse_connection_properties):
        with contextlib.suppress(BadRequest):
            parse(obj)


@pytest.mark.parametrize("sdp", CORPUS["sdp"])
def test_sdp(sdp: str) -> None:
    with contextlib.suppress(SdpError):
        parse_media_sections(sdp)


@pytest.mark.parametrize("env", CORPUS["webhook_env"])
def test_webhook_config(env: dict[str, str]) -> None:
    with contextlib.suppress(ConfigError):
        Config.from_env(env)
