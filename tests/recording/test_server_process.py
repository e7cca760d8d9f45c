"""Recordings on a real ``vidhub serve``: the real openvidu-node-client, downloads over HTTP,
and what a SIGTERM or a SIGKILL in the middle of a recording leaves behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.peers import NODE_MODULES, node_client_or_skip
from tests.recording.media import (
    WallClockAudio,
    WallClockVideo,
    probe,
    read_zip,
    wait_media_flowing,
)
from tests.support.proc import MS, ServerProcess
from vidhub.client import Participant

WAIT = 10_000 * MS
RECORD_MS = 2000
#: A 2 s shed budget (as the browser tests): the aiortc peers, the node client and the
#: server share this machine's cores, and a late loop must not turn REST calls into 503s.
ENV = {
    "OPENVIDU_RECORDING": "true",
    "OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT": "0",
    "VIDHUB_SHED_BUDGET_MS": "2000",
}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "data", extra_env=ENV)
    await asyncio.to_thread(srv.start)
    try:
        yield srv
    finally:
        await asyncio.to_thread(srv.stop)


def _rest(server: ServerProcess, method: str, path: str, **kw: Any) -> requests.Response:
    return requests.request(method, server.api + path, auth=server.auth, timeout=10, **kw)


async def _publisher(server: ServerProcess, session: str) -> Participant:
    def token() -> str:
        _rest(server, "POST", "/sessions", json={"customSessionId": session})
        r = _rest(server, "POST", f"/sessions/{session}/connection", json={})
        return str(r.json()["token"])

    bot = Participant(
        await asyncio.to_thread(token), metadata="nodeBot", host_addresses=["127.0.0.1"]
    )
    await bot.join()
    await bot.publish(audio=WallClockAudio(), video=WallClockVideo())
    await wait_media_flowing(bot, WAIT)
    return bot


def _download(server: ServerProcess, url: str, auth: bool = True) -> requests.Response:
    return requests.get(url, auth=server.auth if auth else None, timeout=10)


async def test_node_client_records_and_the_file_url_serves_it(server: ServerProcess) -> None:
    node = node_client_or_skip()
    bot = await _publisher(server, "nodeRecSession")
    try:
        proc = await asyncio.create_subprocess_exec(
            node,
            str(Path(__file__).parents[1] / "integration" / "node" / "recording_scenario.js"),
            server.url,
            server.secret,
            str(NODE_MODULES),
            "nodeRecSession",
            str(RECORD_MS),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        await bot.leave()
    assert proc.returncode == 0, stderr.decode()[-4000:]
    line = next(ln for ln in stdout.decode().splitlines() if ln.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert out["startUnknown"] == "404"
    assert out["started"]["status"] == "started" and out["started"]["id"] == "nodeRecSession"
    assert out["started"]["outputMode"] == "INDIVIDUAL" and out["started"]["name"] == "nodeRec"
    assert out["startAgain"] == "409"
    assert out["deleteWhileStarted"] == "409"
    assert out["stopUnknown"] == "404"
    assert out["stopAgain"] == "409"
    stopped = out["stopped"]
    assert stopped["status"] == "ready" and stopped == out["got"]
    assert sorted(out["listed"]) == ["nodeRecSession", "nodeRecSession~1"]
    assert stopped["url"] == f"{server.url}/openvidu/recordings/nodeRecSession/nodeRec.zip"
    assert _download(server, stopped["url"], auth=False).status_code == 401
    r = _download(server, stopped["url"])
    assert r.status_code == 200 and len(r.content) == stopped["size"]
    meta, files = read_zip(r.content)
    (entry,) = meta["files"]
    assert entry["clientData"] == "nodeBot"
    info = probe(files[f"{entry['streamId']}.webm"])
    assert (info.video_codec, info.audio_codec, info.width, info.height) == (
        "vp8",
        "opus",
        640,
        480,
    )
    assert abs(info.duration - RECORD_MS / 1000) <= 0.1 * RECORD_MS / 1000 + 0.2
    assert info.decoded_frames >= 0.5 * 30 * info.duration  # a starved camera skips frames

    grid = out["composed"]
    assert out["composedStarted"]["outputMode"] == "COMPOSED"
    assert grid["status"] == "ready" and grid["url"].endswith("/nodeRecSession~1/nodeGrid.mp4")
    r = _download(server, grid["url"])
    assert r.status_code == 200 and len(r.content) == grid["size"]
    info = probe(r.content)
    assert (info.video_codec, info.audio_codec, info.width, info.height) == (
        "h264",
        "aac",
        640,
        360,
    )
    assert abs(info.duration - grid["duration"]) <= 0.1 * grid["duration"] + 0.2
    assert info.decoded_frames > 0


async def _record_then(
    server: ServerProcess, session: str, stop: str, mode: str = "INDIVIDUAL"
) -> dict[str, Any]:
    """Record ``session`` for a moment, stop the server (``term`` or ``kill``), restart it,
    and return the recording as the restarted server reports it."""
    bot = await _publisher(server, session)
    body: dict[str, Any] = {"session": session, "outputMode": mode}
    if mode == "COMPOSED":
        body.update(resolution="640x360", frameRate=15)
    r = await asyncio.to_thread(_rest, server, "POST", "/recordings/start", json=body)
    assert r.status_code == 200, r.text
    await asyncio.sleep(1.5)  # media reaches the disk in the meantime
    await asyncio.to_thread(server.stop if stop == "term" else server.kill9)
    await bot.leave()
    await asyncio.to_thread(server.start)
    r = await asyncio.to_thread(_rest, server, "GET", f"/recordings/{session}")
    assert r.status_code == 200
    rec: dict[str, Any] = r.json()
    return rec


async def test_sigterm_finishes_the_recording(server: ServerProcess) -> None:
    rec = await _record_then(server, "termSession", "term")
    assert rec["status"] == "ready"
    _, files = read_zip(_download(server, rec["url"]).content)
    (name,) = files
    assert probe(files[name]).decoded_frames > 10


async def test_sigkill_leaves_a_playable_or_failed_recording_never_a_broken_ready_one(
    server: ServerProcess,
) -> None:
    rec = await _record_then(server, "killSession", "kill")
    assert rec["status"] in ("ready", "failed")
    if rec["status"] == "failed":
        assert rec["url"] is None
        return
    meta, files = read_zip(_download(server, rec["url"]).content)
    assert len(meta["files"]) == len(files) == 1
    info = probe(next(iter(files.values())))
    assert info.video_codec == "vp8" and info.decoded_frames > 10
    assert rec["duration"] > 0.5 and rec["size"] > 0


async def test_sigkill_during_a_composed_recording_never_leaves_a_broken_ready_one(
    server: ServerProcess,
) -> None:
    rec = await _record_then(server, "killGrid", "kill", "COMPOSED")
    assert rec["status"] in ("ready", "failed")
    if rec["status"] == "failed":
        assert rec["url"] is None
        return
    r = _download(server, rec["url"])
    assert r.status_code == 200, (r.status_code, rec)
    info = probe(r.content)
    assert info.video_codec == "h264" and info.decoded_frames > 0
