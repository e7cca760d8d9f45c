"""pyopenvidu 0.2.1 and vidhub's own ``vidhub.client.OpenVidu`` against ``vidhub serve``.

Both clients share one public API, so one scenario runs on each: what passes with the real
pyopenvidu is what the server must do; the same test on our SDK proves it is a drop-in
replacement (openvidu.md §1, seeds 000/001).
"""

from __future__ import annotations

import re
import socket
import uuid
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
import requests

import vidhub.client
from tests.integration.peers import unavailable
from tests.support.proc import ServerProcess

try:
    import pyopenvidu
except ImportError:  # pragma: no cover - a dev dependency
    unavailable("pyopenvidu is not installed (pip install -e '.[dev]')")

pytestmark = pytest.mark.peers

TOKEN_RE = re.compile(r"^ws://127\.0\.0\.1:\d+\?sessionId=[\w-]+&token=tok_[A-Z][0-9A-Za-z]{15}$")


@dataclass
class Flavour:
    """A client library and the base URL it is given."""

    name: str
    lib: ModuleType
    url_of: Any  # (ServerProcess) -> str

    def connect(self, server: ServerProcess, **kw: Any) -> Any:
        return self.lib.OpenVidu(self.url_of(server), server.secret, **kw)


FLAVOURS = [
    # pyopenvidu needs the API URL with its trailing slash (openvidu.md §1.1)
    Flavour("pyopenvidu", pyopenvidu, lambda s: s.api + "/"),
    Flavour("vidhub-root", vidhub.client, lambda s: s.url + "/"),
    Flavour("vidhub-api", vidhub.client, lambda s: s.api),
]


@pytest.fixture(params=FLAVOURS, ids=lambda f: f.name)
def flavour(request: pytest.FixtureRequest) -> Flavour:
    f: Flavour = request.param
    return f


def sid() -> str:
    return "py_" + uuid.uuid4().hex[:12]


def test_create_fetch_and_list(shared_server: ServerProcess, flavour: Flavour) -> None:
    ov = flavour.connect(shared_server)
    custom = sid()
    s = ov.create_session(custom_session_id=custom)
    assert s.id == custom
    assert s.is_valid and s.media_mode == "ROUTED" and s.is_being_recorded is False
    assert s.connections == []
    generated = ov.create_session(media_mode="ROUTED")
    assert re.fullmatch(r"ses_[A-Z][0-9A-Za-z]{9}", generated.id)
    assert ov.get_session(custom) is s

    other = flavour.connect(shared_server)  # a second client sees both after its initial fetch
    ids = {x.id for x in other.sessions}
    assert {custom, generated.id} <= ids
    assert other.session_count == len(other.sessions)
    assert other.fetch() is False  # nothing changed since the initial fetch
    assert other.get_session(custom).created_at == s.created_at


def test_create_session_errors(shared_server: ServerProcess, flavour: Flavour) -> None:
    ov = flavour.connect(shared_server, initial_fetch=False)
    custom = sid()
    ov.create_session(custom_session_id=custom)
    with pytest.raises(flavour.lib.OpenViduSessionExistsError):
        ov.create_session(custom_session_id=custom)
    with pytest.raises(ValueError):
        ov.create_session(custom_session_id="no spaces allowed")  # server 400
    with pytest.raises(ValueError):
        ov.create_session(media_mode="SIDEWAYS")  # client-side check
    with pytest.raises(flavour.lib.OpenViduSessionDoesNotExistsError):
        ov.get_session("never_created")


def test_connections(shared_server: ServerProcess, flavour: Flavour) -> None:
    ov = flavour.connect(shared_server, initial_fetch=False)
    s = ov.create_session(custom_session_id=sid())
    c = s.create_webrtc_connection(
        role="MODERATOR",
        data="alice",
        video_max_recv_bandwidth=600,
        video_min_send_bandwidth=100,
        allowed_filters=["GStreamerFilter"],
    )
    assert TOKEN_RE.match(c.token) and f"sessionId={s.id}&" in c.token
    assert (c.type, c.role, c.server_data, c.session_id) == ("WEBRTC", "MODERATOR", "alice", s.id)
    assert c.kurento_options == {
        "videoMaxRecvBandwidth": 600,
        "videoMinSendBandwidth": 100,
        "allowedFilters": ["GStreamerFilter"],
    }
    assert c.active_at is None and c.platform is None and c.publishers == []
    assert s.connection_count == 1 and s.get_connection(c.id) is c

    plain = s.create_webrtc_connection()
    assert (plain.role, plain.kurento_options, plain.server_data) == ("PUBLISHER", None, "")
    assert plain.token != c.token

    assert c.fetch() is False  # GET /connection/{id} of a pending connection
    # GET /sessions/{id} lists active connections only: both are pending, so the server's
    # view is unchanged since creation (and the locally added ones stay, as in pyopenvidu)
    assert s.fetch() is False
    assert [x.id for x in s.connections] == [c.id, plain.id]

    with pytest.raises(ValueError):
        s.create_webrtc_connection(role="KING")  # client-side
    with pytest.raises(ValueError):
        s.create_webrtc_connection(video_max_recv_bandwidth=-5)  # server 400


def test_force_disconnect_pending(shared_server: ServerProcess, flavour: Flavour) -> None:
    ov = flavour.connect(shared_server, initial_fetch=False)
    s = ov.create_session(custom_session_id=sid())
    c = s.create_webrtc_connection()
    twin = s.create_webrtc_connection()
    c.force_disconnect()
    assert c.is_valid is False
    with pytest.raises(flavour.lib.OpenViduConnectionDoesNotExistsError):
        c.fetch()
    twin.fetch()  # still there
    s.close()
    with pytest.raises(flavour.lib.OpenViduSessionDoesNotExistsError):
        twin.fetch()  # GET connection of a missing session is a 400
    assert twin.is_valid is False


def test_signal_nobody_connected(shared_server: ServerProcess, flavour: Flavour) -> None:
    ov = flavour.connect(shared_server, initial_fetch=False)
    s = ov.create_session(custom_session_id=sid())
    c = s.create_webrtc_connection()
    with pytest.raises(flavour.lib.OpenViduConnectionDoesNotExistsError):
        c.signal("signal:chat", "hi")  # 406: the connection is not active
    with pytest.raises(flavour.lib.OpenViduConnectionDoesNotExistsError):
        s.signal("signal:chat", "hi")  # 406: nobody is connected
    assert s.is_valid is False  # pyopenvidu's reaction to a 406


def test_close(shared_server: ServerProcess, flavour: Flavour) -> None:
    ov = flavour.connect(shared_server, initial_fetch=False)
    s = ov.create_session(custom_session_id=sid())
    other = flavour.connect(shared_server)
    stale = other.get_session(s.id)
    s.close()
    assert s.is_valid is False
    with pytest.raises(flavour.lib.OpenViduSessionDoesNotExistsError):
        ov.get_session(s.id)
    with pytest.raises(flavour.lib.OpenViduSessionDoesNotExistsError):
        s.create_webrtc_connection()  # fails early: the object is invalid
    with pytest.raises(flavour.lib.OpenViduSessionDoesNotExistsError):
        stale.create_webrtc_connection()  # the server answers 404
    assert stale.is_valid is False
    with pytest.raises(flavour.lib.OpenViduSessionDoesNotExistsError):
        flavour.connect(shared_server).get_session(s.id).close()
    stale2 = other  # refetch removes it
    assert stale2.fetch() is True
    assert s.id not in {x.id for x in stale2.sessions}


def test_ipcam_rejected(shared_server: ServerProcess, flavour: Flavour) -> None:
    ov = flavour.connect(shared_server, initial_fetch=False)
    s = ov.create_session(custom_session_id=sid())
    with pytest.raises(ValueError):  # vidhub has no IP-camera ingest: 400
        s.create_ipcam_connection("rtsp://127.0.0.1:8554/cam")


def test_get_config(shared_server: ServerProcess, flavour: Flavour) -> None:
    cfg = flavour.connect(shared_server, initial_fetch=False).get_config()
    assert cfg["VERSION"].startswith("2.32.")
    assert cfg["OPENVIDU_PUBLICURL"] == shared_server.url
    assert cfg["OPENVIDU_RECORDING"] is False


def test_wrong_secret(shared_server: ServerProcess, flavour: Flavour) -> None:
    with pytest.raises(requests.HTTPError) as info:
        flavour.lib.OpenVidu(flavour.url_of(shared_server), "wrong")
    assert info.value.response is not None and info.value.response.status_code == 401


def test_timeout_is_requests_timeout(flavour: Flavour) -> None:
    """A server that accepts but never answers: the client raises requests' Timeout as is."""
    with socket.socket() as lsock:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(8)
        port = lsock.getsockname()[1]
        fake = ServerProcess.__new__(ServerProcess)
        fake.port, fake.secret = port, "MY_SECRET"
        ov = flavour.connect(fake, initial_fetch=False, timeout=0.2)
        with pytest.raises(requests.exceptions.Timeout):
            ov.create_session()
