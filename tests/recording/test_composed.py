"""COMPOSED recordings through REST: a child process decodes, lays out and encodes."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient
from aiortc import AudioStreamTrack

from tests.recording.media import probe, wait_media_flowing
from tests.recording.test_individual import API, WAIT, Events, _download, _publisher, _token, api
from vidhub.client import Participant

__all__ = ["api"]

RECORD_S = 2.5


async def test_composed_grid_of_two_publishers(api: TestClient) -> None:  # type: ignore[type-arg]
    events = Events(api)
    alice = await _publisher(api, "C1")
    bob = await _publisher(api, "C1")
    try:
        r = await api.post(
            f"{API}/recordings/start",
            json={"session": "C1", "resolution": "640x360", "frameRate": 15, "name": "grid"},
        )
        assert r.status == 200, await r.text()
        rec = await r.json()
        assert (rec["outputMode"], rec["resolution"], rec["frameRate"]) == (
            "COMPOSED",
            "640x360",
            15,
        )
        assert rec["recordingLayout"] == "BEST_FIT" and rec["status"] == "started"
        await asyncio.sleep(RECORD_S)  # the length of the recording under test
        r = await api.post(f"{API}/recordings/stop/C1")
        assert r.status == 200
        rec = await r.json()
    finally:
        await alice.leave()
        await bob.leave()
    assert rec["status"] == "ready", rec
    assert rec["url"].endswith("/openvidu/recordings/C1/grid.mp4")
    data = await _download(api, rec["url"])
    assert len(data) == rec["size"]
    info = probe(data)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (640, 360)
    assert abs(info.duration - rec["duration"]) <= 0.1 * rec["duration"] + 0.1, info
    # A busy machine makes the composer skip output ticks (its own frames, by design: it
    # must never hold the SFU up), so only a floor well under the nominal 15 fps holds here.
    assert info.video_packets == info.decoded_frames >= 0.2 * 15 * rec["duration"]
    statuses = [e["status"] for e in events.seen if e["event"] == "recordingStatusChanged"]
    assert statuses == ["started", "stopped", "ready"]
    ready = next(e for e in events.seen if e.get("status") == "ready")
    assert (ready["resolution"], ready["frameRate"], ready["recordingLayout"]) == (
        "640x360",
        15,
        "BEST_FIT",
    )


async def test_audio_only_composed_mixes_into_one_webm(api: TestClient) -> None:  # type: ignore[type-arg]
    bot = Participant(await _token(api, "C2"))
    await bot.join()
    try:
        await bot.publish(audio=AudioStreamTrack())
        await wait_media_flowing(bot, WAIT)
        r = await api.post(f"{API}/recordings/start", json={"session": "C2", "hasVideo": False})
        assert r.status == 200
        assert "resolution" not in await r.json()
        await asyncio.sleep(1.5)  # the length of the recording under test
        rec = await (await api.post(f"{API}/recordings/stop/C2")).json()
    finally:
        await bot.leave()
    assert rec["status"] == "ready" and rec["url"].endswith("/C2.webm")
    info = probe(await _download(api, rec["url"]))
    assert (info.video_codec, info.audio_codec) == (None, "opus")
    assert abs(info.duration - rec["duration"]) <= 0.15 * rec["duration"] + 0.1
