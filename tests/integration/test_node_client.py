"""The real openvidu-node-client 2.32.2 against a running ``vidhub serve`` (openvidu.md §1).

A Node script (``node/rest_scenario.js``) drives one scenario through the client's public API
and prints what it observed; the assertions here are what a Node application relies on.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiortc import AudioStreamTrack

from tests.integration.peers import NODE_MODULES, node_client_or_skip
from tests.support.proc import MS, ServerProcess
from vidhub.client import Participant

pytestmark = pytest.mark.peers

SCRIPT = Path(__file__).with_name("node") / "rest_scenario.js"
ACTIVE_SCRIPT = Path(__file__).with_name("node") / "active_scenario.js"
WAIT = 10_000 * MS
TOKEN_RE = re.compile(
    r"^ws://127\.0\.0\.1:\d+\?sessionId=nodeSession&token=tok_[A-Z][0-9A-Za-z]{15}$"
)


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run the scenario once against a fresh server; every test reads its observations."""
    node = node_client_or_skip()
    server = ServerProcess(tmp_path_factory.mktemp("node") / "data").start()
    try:
        yield _run(node, server)
    finally:
        server.stop()


def _run(node: str, server: ServerProcess) -> dict[str, Any]:
    run = subprocess.run(
        [node, str(SCRIPT), server.url, server.secret, str(NODE_MODULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    line = next(ln for ln in run.stdout.splitlines() if ln.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT "))
    return result


def test_sessions(observed: dict[str, Any]) -> None:
    assert re.fullmatch(r"ses_[A-Z][0-9A-Za-z]{9}", observed["generated"]["sessionId"])
    assert observed["generated"]["mediaMode"] == "ROUTED"
    assert observed["generated"]["recordingMode"] == "MANUAL"
    assert observed["custom"] == {"sessionId": "nodeSession", "customSessionId": "nodeSession"}
    # a duplicate custom id is a 409 that node-client turns into a fetch of the same session
    assert observed["again"]["same"] is True
    assert observed["badCustom"] == "400"
    assert observed["activeSessions"] == sorted(["nodeSession", observed["generated"]["sessionId"]])
    assert observed["fetchChanged"] is True


def test_connections(observed: dict[str, Any]) -> None:
    c1 = observed["c1"]
    assert TOKEN_RE.match(c1["token"])
    assert c1["status"] == "pending"
    assert c1["type"] == "WEBRTC"
    assert (c1["role"], c1["record"], c1["data"], c1["serverData"]) == (
        "MODERATOR",
        False,
        "alice",
        "alice",
    )
    assert c1["kurentoOptions"] == {
        "videoMaxRecvBandwidth": 500,
        "allowedFilters": ["GStreamerFilter"],
    }
    assert c1["activeAt"] is None
    c2 = observed["c2"]
    assert (c2["role"], c2["record"], c2["data"], c2["kurentoOptions"]) == (
        "PUBLISHER",
        True,
        "",
        None,
    )
    assert observed["badRole"] == "400"
    # Session.fetch asks for pending connections: all three tokens, none active
    ids = [c["connectionId"] for c in observed["sessionConnections"]]
    assert ids[:2] == [c1["connectionId"], c2["connectionId"]]
    assert len(ids) == 3
    assert observed["activeConnections"] == 0


def test_legacy_token(observed: dict[str, Any]) -> None:
    assert TOKEN_RE.match(observed["legacyToken"])
    legacy = next(
        c for c in observed["sessionConnections"] if c["token"] == observed["legacyToken"]
    )
    assert (legacy["role"], legacy["serverData"]) == ("SUBSCRIBER", "legacy")


def test_update_connection(observed: dict[str, Any]) -> None:
    assert (observed["updated"]["role"], observed["updated"]["record"]) == ("SUBSCRIBER", True)
    assert observed["afterUpdate"]["role"] == "SUBSCRIBER"
    assert observed["afterUpdate"]["record"] is True
    assert observed["afterUpdate"]["token"] == observed["c1"]["token"]
    assert observed["updateUnknown"] == "404"


def test_delete_connection(observed: dict[str, Any]) -> None:
    assert observed["deleteConn"] == "ok"
    assert observed["c2"]["connectionId"] not in observed["afterDelete"]
    assert observed["c1"]["connectionId"] in observed["afterDelete"]
    assert observed["deleteConnAgain"] == "404"


def test_recordings_disabled(observed: dict[str, Any]) -> None:
    assert observed["recording"] == "501"
    assert observed["listRecordings"] == "501"


def test_close_and_errors(observed: dict[str, Any]) -> None:
    assert observed["close"] == "ok"
    assert observed["closeAgain"] == "404"
    assert observed["createOnClosed"] == "404"
    assert observed["fetchClosed"] == "404"
    assert observed["afterClose"] == [observed["generated"]["sessionId"]]
    assert observed["wrongSecret"] == "401"


async def test_active_participant(tmp_path: Path) -> None:
    """A Participant bot joins and publishes; node-client inspects, updates, force-unpublishes
    and evicts it."""
    node = node_client_or_skip()
    server = ServerProcess(tmp_path / "data").start()
    try:
        with requests.Session() as http:
            http.auth = server.auth
            r = http.post(
                server.api + "/sessions", json={"customSessionId": "nodeLive"}, timeout=10
            )
            assert r.status_code == 200
            r = http.post(
                server.api + "/sessions/nodeLive/connection", json={"role": "PUBLISHER"}, timeout=10
            )
            token = r.json()["token"]
        bot = Participant(token, metadata="bot-meta", platform="node-test-bot")
        await bot.join()
        try:
            stream = await bot.publish(audio=AudioStreamTrack())
            evicted = asyncio.ensure_future(bot.wait_event("participantEvicted", wait_s=WAIT))
            proc = await asyncio.create_subprocess_exec(
                node,
                str(ACTIVE_SCRIPT),
                server.url,
                server.secret,
                str(NODE_MODULES),
                "nodeLive",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode == 0, stderr.decode()[-4000:]
            line = next(ln for ln in stdout.decode().splitlines() if ln.startswith("RESULT "))
            out = json.loads(line.removeprefix("RESULT "))
            assert (await evicted).data["reason"] == "forceDisconnectByServer"
        finally:
            await bot.leave()
    finally:
        server.stop()

    assert out["found"] is True
    (active,) = out["active"]
    assert active["connectionId"] == bot.connection_id
    assert (active["status"], active["platform"], active["clientData"]) == (
        "active",
        "node-test-bot",
        "bot-meta",
    )
    assert active["location"] == "unknown" and active["ip"] and active["activeAt"]
    assert active["publishers"] == [
        {"streamId": stream.id, "hasAudio": True, "hasVideo": False, "audioActive": True}
    ]
    assert out["updated"] == "ok" and out["afterUpdate"]["role"] == "SUBSCRIBER"
    assert out["unpublish"] == "ok" and out["afterUnpublish"]["publishers"] == []
    assert out["unpublishAgain"] == "404"
    assert out["disconnect"] == "ok"
    assert out["disconnectAgain"] in ("400", "404")  # the session closed with its last participant
    assert out["afterDisconnect"] is False
