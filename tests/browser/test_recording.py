"""Recording openvidu-browser in headless Chromium and a Python participant together,
through ``vidhub serve`` (media workers, as by default) and its REST API."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from tests.browser.chromium import Chromium, js
from tests.browser.test_openvidu_browser import WAIT_MS, WAIT_S, Api, _join, api
from tests.recording.media import (
    WallClockAudio,
    WallClockVideo,
    probe,
    read_zip,
    wait_media_flowing,
)
from tests.support.browser import serving
from tests.support.proc import ServerProcess
from vidhub.client import Participant

__all__ = ["api"]

pytestmark = pytest.mark.browser

RECORD_S = 2.5


@pytest.fixture
def vidhub(tmp_path: Path) -> Iterator[ServerProcess]:
    """``vidhub serve`` with recording on (and two media workers, as by default)."""
    with serving(
        tmp_path / "data", {"OPENVIDU_RECORDING": "true"}, ["--media-workers", "2"]
    ) as srv:
        yield srv


async def test_browser_and_python_participant_recorded_individually(
    vidhub: ServerProcess, api: Api, page_url: str, chromium: Chromium
) -> None:
    await _join(chromium, "a", page_url, await api.token("BR"))
    a_stream = await chromium.eval("a", "vh.publish()")
    bot = Participant(await api.token("BR"), metadata="bot", host_addresses=["127.0.0.1"])
    await bot.join()
    try:
        stream = await bot.publish(audio=WallClockAudio(), video=WallClockVideo())
        await wait_media_flowing(bot, WAIT_S)
        # the browser's media flows once the bot sees it
        await chromium.eval("a", f"vh.waitPlaying({js(bot.connection_id)}, {WAIT_MS})", WAIT_S + 5)
        async with api.http.post(
            f"{api.base}/recordings/start", json={"session": "BR", "outputMode": "INDIVIDUAL"}
        ) as r:
            assert r.status == 200, await r.text()
        ev = await chromium.eval("a", f"vh.waitEvent('recordingStarted', {{}}, {WAIT_MS})")
        assert ev["id"] == "BR"
        await asyncio.sleep(RECORD_S)  # the length of the recording under test
        async with api.http.post(f"{api.base}/recordings/stop/BR") as r:
            rec = await r.json()
        ev = await chromium.eval("a", f"vh.waitEvent('recordingStopped', {{}}, {WAIT_MS})")
        assert ev["reason"] == "recordingStoppedByServer"
    finally:
        await bot.leave()
    assert rec["status"] == "ready", rec
    async with api.http.get(rec["url"]) as r:
        assert r.status == 200
        meta, files = read_zip(await r.read())
    by_stream = {f["streamId"]: f for f in meta["files"]}
    assert set(by_stream) == {a_stream, stream.id}
    browser = probe(files[f"{a_stream}.webm"])
    python = probe(files[f"{stream.id}.webm"])
    assert (browser.video_codec, browser.audio_codec) == ("vp8", "opus")
    assert (browser.width, browser.height) == (320, 240)  # Chromium's fake camera
    assert (python.width, python.height) == (640, 480)
    for info, entry in ((browser, by_stream[a_stream]), (python, by_stream[stream.id])):
        span = (entry["endTimeOffset"] - entry["startTimeOffset"]) / 1000
        assert abs(info.duration - span) <= 0.1 * span + 0.2, (info, span)
        assert info.decoded_frames == info.video_packets > 10


async def test_browser_and_python_participant_recorded_composed(
    vidhub: ServerProcess, api: Api, page_url: str, chromium: Chromium
) -> None:
    """COMPOSED (OpenVidu's default output mode): one MP4 grid of a browser and a bot."""
    await _join(chromium, "a", page_url, await api.token("BC"))
    await chromium.eval("a", "vh.publish()")
    bot = Participant(await api.token("BC"), metadata="bot", host_addresses=["127.0.0.1"])
    await bot.join()
    try:
        await bot.publish(audio=WallClockAudio(), video=WallClockVideo())
        await wait_media_flowing(bot, WAIT_S)
        await chromium.eval("a", f"vh.waitPlaying({js(bot.connection_id)}, {WAIT_MS})", WAIT_S + 5)
        body = {"session": "BC", "name": "grid", "resolution": "640x360", "frameRate": 15}
        async with api.http.post(f"{api.base}/recordings/start", json=body) as r:
            assert r.status == 200, await r.text()
            started = await r.json()
        assert started["outputMode"] == "COMPOSED" and started["recordingLayout"] == "BEST_FIT"
        await chromium.eval("a", f"vh.waitEvent('recordingStarted', {{}}, {WAIT_MS})")
        await asyncio.sleep(RECORD_S)  # the length of the recording under test
        async with api.http.post(f"{api.base}/recordings/stop/BC") as r:
            rec = await r.json()
    finally:
        await bot.leave()
    assert rec["status"] == "ready", rec
    assert rec["url"].endswith("/BC/grid.mp4")
    async with api.http.get(rec["url"]) as r:
        assert r.status == 200
        data = await r.read()
    assert len(data) == rec["size"]
    info = probe(data)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (640, 360)
    assert abs(info.duration - rec["duration"]) <= 0.1 * rec["duration"] + 0.2, (info, rec)
    assert info.decoded_frames == info.video_packets > 0
    # BEST_FIT puts two publishers side by side: both halves of the last frame show video
    left, right = _half_brightness(data)
    assert left > 20 and right > 20, (left, right)


def _half_brightness(mp4: bytes) -> tuple[float, float]:
    """Mean RGB level of the left and right halves of the file's last video frame."""
    with av.open(io.BytesIO(mp4)) as c:  # the frame's planes live as long as the container
        last = None
        for frame in c.decode(video=0):
            last = frame
        assert last is not None
        rgb = last.reformat(format="rgb24")
        plane = rgb.planes[0]
        rows, stride, half = bytes(plane), plane.line_size, rgb.width // 2
        left = right = 0
        for y in range(rgb.height):
            row = rows[y * stride : y * stride + 3 * rgb.width]
            left += sum(row[: 3 * half])
            right += sum(row[3 * half :])
        return left / (3 * half * rgb.height), right / (3 * (rgb.width - half) * rgb.height)
