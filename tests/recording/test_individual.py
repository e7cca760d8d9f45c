"""INDIVIDUAL recordings through REST against an in-process vidhub with the real SFU.

A Python Participant publishes aiortc's synthetic camera (VP8 640x480, 30 fps) and audio;
the recording is started, stopped and downloaded through the OpenVidu REST API and its file
URL, and the files are opened with PyAV.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.recording.media import (
    WallClockAudio,
    WallClockVideo,
    probe,
    read_zip,
    wait_media_flowing,
)
from tests.support.proc import MS
from vidhub.client import Participant
from vidhub.config import Config
from vidhub.core.events import ServerEvent
from vidhub.server.app import make_app
from vidhub.server.keys import EVENTS
from vidhub.store import MemoryStore

API = "/openvidu/api"
WAIT = 10_000 * MS
#: Seconds of media each test records.
RECORD_S = 2.0
INDIVIDUAL = {"outputMode": "INDIVIDUAL"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    cfg = Config(
        store="memory",
        garbage_interval_s=0,
        recording=True,
        recording_path=str(tmp_path / "recordings"),
        recording_autostop_timeout_s=1,
    )
    app = make_app(cfg, store=MemoryStore())
    cred = base64.b64encode(b"OPENVIDUAPP:MY_SECRET").decode()
    async with TestClient(
        TestServer(app, host="127.0.0.1"), headers={"Authorization": f"Basic {cred}"}
    ) as c:
        yield c


async def _token(api: TestClient[Any, Any], session: str, **session_props: Any) -> str:
    r = await api.post(f"{API}/sessions", json={"customSessionId": session, **session_props})
    assert r.status in (200, 409)
    r = await api.post(f"{API}/sessions/{session}/connection", json={"data": "server-side"})
    token: str = (await r.json())["token"]
    return token


async def _publisher(api: TestClient[Any, Any], session: str, **props: Any) -> Participant:
    bot = Participant(await _token(api, session, **props), metadata="alice")
    await bot.join()
    await bot.publish(audio=WallClockAudio(), video=WallClockVideo())
    await wait_media_flowing(bot, WAIT)
    return bot


async def _download(api: TestClient[Any, Any], url: str) -> bytes:
    path = url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    r = await api.get("/" + path)
    assert r.status == 200, r.status
    return await r.read()


async def test_individual_recording_through_rest(api: TestClient[Any, Any]) -> None:
    bot = await _publisher(api, "R1")
    assert bot.stream is not None
    stream_id = bot.stream.id
    try:
        started_note = asyncio.ensure_future(bot.wait_event("recordingStarted", wait_s=WAIT))
        r = await api.post(
            f"{API}/recordings/start",
            json={"session": "R1", "outputMode": "INDIVIDUAL", "name": "take1"},
        )
        assert r.status == 200, await r.text()
        rec = await r.json()
        assert (rec["id"], rec["name"], rec["outputMode"], rec["status"]) == (
            "R1",
            "take1",
            "INDIVIDUAL",
            "started",
        )
        assert rec["url"] is None and "resolution" not in rec
        assert (await started_note).data == {"id": "R1", "name": "take1"}
        # a publisher joining now is told in joinRoom; a subscriber is not (default
        # OPENVIDU_RECORDING_NOTIFICATION=publisher_moderator)
        late = Participant(await _token(api, "R1"))
        joined = await late.join()
        await late.leave()
        assert (joined.recording_id, joined.recording_name) == ("R1", "take1")
        r = await api.post(f"{API}/sessions/R1/connection", json={"role": "SUBSCRIBER"})
        viewer = Participant((await r.json())["token"])
        joined = await viewer.join()
        await viewer.leave()
        assert joined.recording_id is None
        assert (await (await api.get(f"{API}/sessions/R1")).json())["recording"] is True
        # a second start on the same session: 409
        r2 = await api.post(f"{API}/recordings/start", json={"session": "R1"})
        assert r2.status == 409
        # deleting a recording in progress: 409
        assert (await api.delete(f"{API}/recordings/R1")).status == 409
        await asyncio.sleep(RECORD_S)  # the length of the recording under test
        stopped_note = asyncio.ensure_future(bot.wait_event("recordingStopped", wait_s=WAIT))
        r = await api.post(f"{API}/recordings/stop/R1")
        assert r.status == 200
        rec = await r.json()
        note = (await stopped_note).data
        assert note == {"id": "R1", "name": "take1", "reason": "recordingStoppedByServer"}
    finally:
        await bot.leave()
    assert rec["status"] == "ready"
    assert abs(rec["duration"] - RECORD_S) < 0.5 * RECORD_S
    assert rec["url"].endswith("/openvidu/recordings/R1/take1.zip")
    assert (await api.post(f"{API}/recordings/stop/R1")).status == 409
    data = await _download(api, rec["url"])
    assert len(data) == rec["size"]
    meta, files = read_zip(data)
    assert (meta["id"], meta["name"], meta["sessionId"]) == ("R1", "take1", "R1")
    (entry,) = meta["files"]
    assert entry["connectionId"] == bot.connection_id
    assert entry["streamId"] == stream_id
    assert (entry["clientData"], entry["serverData"]) == ("alice", "server-side")
    assert (entry["hasAudio"], entry["hasVideo"], entry["typeOfVideo"]) == (True, True, "CAMERA")
    assert 0 <= entry["startTimeOffset"] < entry["endTimeOffset"]
    name = f"{entry['streamId']}.webm"
    assert list(files) == [name] and entry["size"] == len(files[name])
    info = probe(files[name])
    assert (info.video_codec, info.audio_codec) == ("vp8", "opus")
    assert (info.width, info.height) == (640, 480)
    span = (entry["endTimeOffset"] - entry["startTimeOffset"]) / 1000
    assert abs(info.duration - span) <= 0.1 * span + 0.1, (info, span)
    # the synthetic camera skips frames when this busy machine starves it (never bursts)
    assert info.video_packets >= 0.5 * 30 * info.duration
    assert info.decoded_frames == info.video_packets
    assert info.audio_packets >= 0.5 * 50 * info.duration
    # listed, then deleted
    listing = await (await api.get(f"{API}/recordings")).json()
    assert listing["count"] == 1 and listing["items"][0]["id"] == "R1"
    assert (await api.delete(f"{API}/recordings/R1")).status == 204
    assert (await api.get(f"{API}/recordings/R1")).status == 404
    assert (await api.delete(f"{API}/recordings/R1")).status == 404


async def test_start_errors_follow_openvidu(api: TestClient[Any, Any]) -> None:
    start = f"{API}/recordings/start"
    assert (await api.post(start, json={})).status == 400
    assert (await api.post(start, json={"session": 5})).status == 400
    assert (await api.post(start, json={"session": "nope"})).status == 404
    await api.post(f"{API}/sessions", json={"customSessionId": "E1"})
    assert (await api.post(start, json={"session": "E1"})).status == 406  # nobody connected
    bot = Participant(await _token(api, "E1"))
    await bot.join()
    try:
        for bad in (
            {"resolution": "99x100"},
            {"frameRate": 0},
            {"shmSize": 1},
            {"hasAudio": False, "hasVideo": False},
        ):
            r = await api.post(start, json={"session": "E1", **bad})
            assert r.status == 422, bad
            assert (await r.json())["status"] == 422
        assert (await api.post(start, json={"session": "E1", "outputMode": "X"})).status == 400
        assert (await api.post(start, json={"session": "E1", "name": "a b"})).status == 400
    finally:
        await bot.leave()
    assert (await api.post(f"{API}/recordings/stop/nope")).status == 404
    assert (await api.get(f"{API}/recordings/nope")).status == 404


async def test_files_need_credentials_unless_public(api: TestClient[Any, Any]) -> None:
    r = await api.get("/openvidu/recordings/x/x.zip", headers={"Authorization": "Basic eDp5"})
    assert r.status == 401
    assert (await api.get("/openvidu/recordings/x/x.zip")).status == 404
    assert (await api.get("/openvidu/recordings/x/..%2F..%2Fetc")).status == 404


class Events:
    """recordingStatusChanged and sessionDestroyed events, waited on by condition."""

    def __init__(self, api: TestClient[Any, Any]) -> None:
        self.seen: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        api.server.app[EVENTS].subscribe(self._on)

    def _on(self, ev: ServerEvent) -> None:
        if ev.name in ("recordingStatusChanged", "sessionDestroyed"):
            self.seen.append(ev.to_webhook_json())
            self._changed.set()

    async def until(self, event: str, **match: Any) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                for e in self.seen:
                    if e["event"] == event and all(e.get(k) == v for k, v in match.items()):
                        return e
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(wait(), WAIT)


async def test_always_mode_starts_on_publish_and_autostop_closes_the_empty_session(
    api: TestClient[Any, Any],
) -> None:
    events = Events(api)
    bot = await _publisher(
        api,
        "A1",
        recordingMode="ALWAYS",
        defaultRecordingProperties={"outputMode": "INDIVIDUAL", "name": "auto"},
    )
    started = await events.until("recordingStatusChanged", status="started")
    assert (started["id"], started["name"], started["outputMode"]) == ("A1", "auto", "INDIVIDUAL")
    assert "reason" not in started
    await asyncio.sleep(1.0)  # some media to record
    await bot.leave()
    # the session outlives its last participant for the autostop countdown (1 s here)
    assert (await api.get(f"{API}/sessions/A1")).status == 200
    stopped = await events.until("recordingStatusChanged", status="stopped")
    assert stopped["reason"] == "automaticStop"
    ready = await events.until("recordingStatusChanged", status="ready")
    assert ready["size"] > 0 and ready["duration"] > 1.0
    destroyed = await events.until("sessionDestroyed")
    assert destroyed["reason"] == "automaticStop"
    statuses = [e["status"] for e in events.seen if e["event"] == "recordingStatusChanged"]
    assert statuses == ["started", "stopped", "ready"]
    rec = await (await api.get(f"{API}/recordings/A1")).json()
    assert rec["status"] == "ready" and rec["url"].endswith("/openvidu/recordings/A1/auto.zip")
    meta, files = read_zip(await _download(api, rec["url"]))
    assert len(meta["files"]) == 1 and len(files) == 1


async def test_deleting_the_session_stops_its_recording(api: TestClient[Any, Any]) -> None:
    events = Events(api)
    bot = await _publisher(api, "D1")
    try:
        r = await api.post(
            f"{API}/recordings/start", json={"session": "D1", "outputMode": "INDIVIDUAL"}
        )
        assert r.status == 200
        assert (await api.delete(f"{API}/sessions/D1")).status == 204
        stopped = await events.until("recordingStatusChanged", status="stopped")
        assert stopped["reason"] == "sessionClosedByServer"
        await events.until("recordingStatusChanged", status="ready")
    finally:
        await bot.leave()
    # a new recording of a re-created session gets the next id
    bot = await _publisher(api, "D1")
    try:
        r = await api.post(
            f"{API}/recordings/start", json={"session": "D1", "outputMode": "INDIVIDUAL"}
        )
        assert (await r.json())["id"] == "D1~1"
        assert (await api.post(f"{API}/recordings/stop/D1~1")).status == 200
    finally:
        await bot.leave()


class PausingCamera(WallClockVideo):
    """320x240 for 1 s, nothing for 1 s (like publishVideo(false) in a browser that stops
    sending), then 640x480: a pause and a resolution change (a new keyframe)."""

    async def recv(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._t0 is not None and 1.0 <= loop.time() - self._t0 < 2.0:
            await asyncio.sleep(2.0 - (loop.time() - self._t0))  # the pause under test
        if self._t0 is not None and loop.time() - self._t0 >= 2.0:
            self.size = (640, 480)
        return await super().recv()


def _frames(data: bytes) -> list[tuple[float, int]]:
    """(presentation time, width) of every decoded video frame."""
    with av.open(io.BytesIO(data)) as c:
        return [(float(f.time), f.width) for f in c.decode(video=0)]


async def test_pause_and_resolution_change_keep_real_time(api: TestClient[Any, Any]) -> None:
    bot = Participant(await _token(api, "P1"))
    await bot.join()
    try:
        await bot.publish(audio=WallClockAudio(), video=PausingCamera(320, 240))
        await wait_media_flowing(bot, WAIT)
        r = await api.post(f"{API}/recordings/start", json={"session": "P1", **INDIVIDUAL})
        assert r.status == 200
        await asyncio.sleep(3.0)  # before, during and after the pause
        rec = await (await api.post(f"{API}/recordings/stop/P1")).json()
    finally:
        await bot.leave()
    meta, files = read_zip(await _download(api, rec["url"]))
    (data,) = files.values()
    frames = _frames(data)
    widths = [w for _, w in frames]
    assert widths[0] == 320 and widths[-1] == 640 and sorted(set(widths)) == [320, 640]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(frames)]
    assert max(gaps) >= 0.7  # the pause stays a pause in the file
    assert all(g > 0 for g in gaps)
    span = (meta["files"][0]["endTimeOffset"] - meta["files"][0]["startTimeOffset"]) / 1000
    assert abs(probe(data).duration - span) <= 0.1 * span + 0.2
