"""The I/O-free core of the OpenVidu SDK: URLs, bodies, error tables, state, operations."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from vidhub.client import openvidu_bodies as b
from vidhub.client import openvidu_errors as e
from vidhub.client import openvidu_model as m


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://127.0.0.1:4443", "http://127.0.0.1:4443/openvidu/api/"),
        ("http://127.0.0.1:4443/", "http://127.0.0.1:4443/openvidu/api/"),
        ("http://127.0.0.1:4443/openvidu", "http://127.0.0.1:4443/openvidu/api/"),
        ("http://127.0.0.1:4443/openvidu/api", "http://127.0.0.1:4443/openvidu/api/"),
        ("https://h/openvidu/api/", "https://h/openvidu/api/"),
        ("https://h/video/", "https://h/video/openvidu/api/"),
        ("https://h:8443/x?y=1#z", "https://h:8443/x/openvidu/api/"),
    ],
)
def test_api_base(url: str, base: str) -> None:
    assert b.api_base(url) == base


@pytest.mark.parametrize("url", ["ws://h:4443", "h:4443", "", "file:///x"])
def test_api_base_rejects(url: str) -> None:
    with pytest.raises(ValueError):
        b.api_base(url)


def test_bodies_as_pyopenvidu_sends_them() -> None:
    assert b.session_body(None, None) == {}
    assert b.session_body("s", "RELAYED") == {"mediaMode": "RELAYED", "customSessionId": "s"}
    with pytest.raises(ValueError):
        b.session_body(None, "routed")
    assert b.webrtc_body("PUBLISHER", None, {"videoMaxRecvBandwidth": None}) == {
        "type": "WEBRTC",
        "role": "PUBLISHER",
    }
    assert b.webrtc_body("SUBSCRIBER", "d", {"allowedFilters": ["F"]}, record=False) == {
        "type": "WEBRTC",
        "role": "SUBSCRIBER",
        "data": "d",
        "record": False,
        "kurentoOptions": {"allowedFilters": ["F"]},
    }
    with pytest.raises(ValueError):
        b.webrtc_body("ADMIN", None, {})
    assert b.ipcam_body("rtsp://h/x", None, False, None, 100) == {
        "type": "IPCAM",
        "rtspUri": "rtsp://h/x",
        "adaptativeBitrate": False,
        "networkCache": 100,
    }
    assert b.signal_body("s", None, None, []) == {"session": "s"}
    assert b.signal_body("s", "t", "d", ["c"]) == {
        "session": "s",
        "to": ["c"],
        "type": "t",
        "data": "d",
    }
    assert b.seg("a/b c") == "a%2Fb%20c"


class Target:
    is_valid = True


def test_check_raises_and_invalidates() -> None:
    e.check(200, e.SIGNAL)
    e.check(401, e.SIGNAL)  # not in the table: left to the transport
    t = Target()
    with pytest.raises(ValueError):
        e.check(400, e.SIGNAL, t)
    assert t.is_valid
    with pytest.raises(e.OpenViduConnectionDoesNotExistsError):
        e.check(406, e.SIGNAL, t)
    assert not t.is_valid
    with pytest.raises(e.OpenViduStreamError, match="IPCAM"):
        e.check(405, e.UNPUBLISH)


def test_exception_tree() -> None:
    assert issubclass(e.OpenViduStreamDoesNotExistsError, e.OpenViduStreamError)
    assert issubclass(e.OpenViduStreamError, e.OpenViduConnectionError)
    assert issubclass(e.OpenViduConnectionError, e.OpenViduSessionError)
    assert issubclass(e.OpenViduSessionExistsError, e.OpenViduSessionError)
    assert issubclass(e.OpenViduSessionError, e.OpenViduError)
    assert issubclass(e.OpenViduError, Exception)


ACTIVE: dict[str, Any] = {
    "id": "con_A",
    "object": "connection",
    "status": "active",
    "connectionId": "con_A",
    "sessionId": "s",
    "createdAt": 1_700_000_000_000,
    "activeAt": 1_700_000_001_000,
    "platform": "Chrome",
    "token": "ws://h?sessionId=s&token=tok_X",
    "type": "WEBRTC",
    "record": True,
    "role": "PUBLISHER",
    "kurentoOptions": None,
    "serverData": "srv",
    "clientData": "cli",
    "publishers": [
        {
            "createdAt": 1_700_000_002_000,
            "streamId": "str_CAM_Aaaa_con_A",
            "mediaOptions": {"hasAudio": True},
        }
    ],
    "subscribers": [{"createdAt": 1_700_000_003_000, "streamId": "str_MIC_Bbbb_con_B"}],
}


def conn_state(data: dict[str, Any]) -> m.ConnectionState:
    return m.ConnectionState(None, data)


def test_connection_state() -> None:
    c = conn_state(ACTIVE)
    assert (c.id, c.type, c.role, c.token, c.server_data, c.client_data) == (
        "con_A",
        "WEBRTC",
        "PUBLISHER",
        ACTIVE["token"],
        "srv",
        "cli",
    )
    assert c.created_at == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert c.active_at is not None and c.active_at.tzinfo is UTC
    assert [p.stream_id for p in c.publishers] == ["str_CAM_Aaaa_con_A"]
    assert c.publishers[0].media_options == {"hasAudio": True}
    assert [s.stream_id for s in c.subscribers] == ["str_MIC_Bbbb_con_B"]
    assert (c.publisher_count, c.subscriber_count) == (1, 1)
    pending = conn_state(ACTIVE | {"activeAt": None, "publishers": None, "subscribers": None})
    assert pending.active_at is None and pending.publishers == [] and pending.subscribers == []
    ipcam = conn_state(
        ACTIVE
        | {
            "type": "IPCAM",
            "rtspUri": "rtsp://h/x",
            "adaptativeBitrate": True,
            "onlyPlayWithSubscribers": False,
            "networkCache": 2000,
        }
    )
    assert (ipcam.rtsp_uri, ipcam.adaptive_bitrate, ipcam.only_play_with_subscribers) == (
        "rtsp://h/x",
        True,
        False,
    )
    with pytest.raises(RuntimeError):
        conn_state(ACTIVE | {"type": "SIP"})
    with pytest.raises(KeyError):
        conn_state({k: v for k, v in ACTIVE.items() if k != "activeAt"})


class FakeReply:
    """A finished response as a transport hands it to an operation."""

    def __init__(self, status: int, body: Any = None) -> None:
        self.status_code = status
        self.content = json.dumps(body).encode() if body is not None else b""

    def json(self) -> Any:
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise RuntimeError(f"transport error {self.status_code}")


def drive(op: m.Op[Any], *replies: FakeReply) -> tuple[list[m.Request], Any]:
    """Run an operation against canned replies, as a transport would; the requests it made."""
    sent: list[m.Request] = []
    answers = iter(replies)
    try:
        sent.append(next(op))
        while True:
            sent.append(op.send(next(answers)))
    except StopIteration as done:
        return sent, done.value


SESSION: dict[str, Any] = {
    "id": "s",
    "createdAt": 1_700_000_000_000,
    "recording": False,
    "mediaMode": "ROUTED",
    "connections": {"numberOfElements": 0, "content": []},
}


class Session(m.SessionState[m.ConnectionState, m.ConnectionState]):
    _webrtc_class = m.ConnectionState
    _ipcam_class = m.ConnectionState


class Server(m.OpenViduState[Session, m.ConnectionState]):
    _session_class = Session


def test_operations_build_requests_and_update_state() -> None:
    ov = Server(None)
    sent, session = drive(
        ov._create_session("s", properties={"customSessionId": "x", "forcedVideoCodec": "VP8"}),
        FakeReply(200, SESSION),
    )
    assert sent == [
        m.Request("POST", "sessions", {"customSessionId": "s", "forcedVideoCodec": "VP8"})
    ]
    assert ov.get_session("s") is session and ov.session_count == 1

    sent, conn = drive(
        session._create_webrtc_connection("SUBSCRIBER", "d", 1),
        FakeReply(200, ACTIVE | {"sessionId": "s"}),
    )
    assert sent == [
        m.Request(
            "POST",
            "sessions/s/connection",
            {
                "type": "WEBRTC",
                "role": "SUBSCRIBER",
                "data": "d",
                "kurentoOptions": {"videoMaxRecvBandwidth": 1},
            },
        )
    ]
    assert session.connections == [conn]

    # one DELETE per publisher, in order; a 404 on the first stops the operation
    sent, _ = drive(conn._force_unpublish_all_streams(), FakeReply(204))
    assert sent == [m.Request("DELETE", "sessions/s/stream/str_CAM_Aaaa_con_A")]
    with pytest.raises(e.OpenViduStreamDoesNotExistsError):
        drive(conn._force_unpublish_all_streams(), FakeReply(404))


def test_errors_carry_the_server_answer_and_invalidate() -> None:
    session = Session(None, SESSION)
    with pytest.raises(e.OpenViduSessionDoesNotExistsError) as info:
        drive(
            session._create({"type": "WEBRTC"}, m.ConnectionState),
            FakeReply(404, {"message": "gone"}),
        )
    answer = info.value.__cause__
    assert isinstance(answer, e.ServerAnswer) and (answer.status, answer.message) == (404, "gone")
    assert not session.is_valid
    with pytest.raises(e.OpenViduSessionDoesNotExistsError):  # refused locally, nothing sent
        drive(session._signal(None, None, None))
    ov = Server(None)
    with pytest.raises(RuntimeError, match="transport error 401") as raised:  # not in the table
        drive(ov._fetch(), FakeReply(401, {"message": "who?"}))
    assert isinstance(raised.value.__cause__, e.ServerAnswer)
    assert raised.value.__cause__.message == "who?"
    with pytest.raises(e.OpenViduError):
        drive(ov._create_connection("s", {"type": "IPCAM"}), FakeReply(500, {}))
