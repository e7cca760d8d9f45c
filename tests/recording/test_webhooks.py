"""recordingStatusChanged webhooks: OpenVidu's fields, in OpenVidu's order and sequence."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from tests.recording.media import WallClockAudio, WallClockVideo, wait_media_flowing
from tests.server.test_webhooks import Receiver, receiver
from tests.support.proc import MS
from vidhub.client import Participant
from vidhub.config import Config, WebhookConfig
from vidhub.server.app import make_app
from vidhub.store import MemoryStore

__all__ = ["receiver"]

API = "/openvidu/api"
WAIT = 10_000 * MS


async def test_status_webhooks_carry_openvidus_fields(receiver: Receiver, tmp_path: Path) -> None:
    url = await receiver.start()
    cfg = Config(
        store="memory",
        garbage_interval_s=0,
        recording=True,
        recording_path=str(tmp_path / "rec"),
        webhook=WebhookConfig(enabled=True, endpoint=url, events=("recordingStatusChanged",)),
    )
    cred = base64.b64encode(b"OPENVIDUAPP:MY_SECRET").decode()
    app = make_app(cfg, store=MemoryStore())
    async with TestClient(
        TestServer(app, host="127.0.0.1"), headers={"Authorization": f"Basic {cred}"}
    ) as api:
        session = await (await api.post(f"{API}/sessions", json={"customSessionId": "W1"})).json()
        r = await api.post(f"{API}/sessions/W1/connection", json={})
        bot = Participant((await r.json())["token"])
        await bot.join()
        try:
            await bot.publish(audio=WallClockAudio(), video=WallClockVideo())
            await wait_media_flowing(bot, WAIT)
            body = {"session": "W1", "outputMode": "INDIVIDUAL", "name": "hooked"}
            rec = await (await api.post(f"{API}/recordings/start", json=body)).json()
            started = (await receiver.next()).json
            await asyncio.sleep(1.0)  # some media
            await api.post(f"{API}/recordings/stop/W1")
            stopped = (await receiver.next()).json
            ready = (await receiver.next()).json
        finally:
            await bot.leave()
    common = ["sessionId", "uniqueSessionId", "timestamp", "startTime"]
    tail = ["id", "name", "outputMode", "hasAudio", "hasVideo", "size", "duration", "status"]
    assert list(started) == [*common, *tail, "event"]
    assert list(stopped) == list(ready) == [*common, "reason", *tail, "event"]
    assert [e["status"] for e in (started, stopped, ready)] == ["started", "stopped", "ready"]
    for e in (started, stopped, ready):
        assert e["event"] == "recordingStatusChanged"
        assert (e["sessionId"], e["id"], e["name"], e["outputMode"]) == (
            "W1",
            "W1",
            "hooked",
            "INDIVIDUAL",
        )
        assert e["uniqueSessionId"] == f"W1_{session['createdAt']}"
        assert e["startTime"] == rec["createdAt"]
    assert stopped["reason"] == ready["reason"] == "recordingStoppedByServer"
    assert started["size"] == 0 and ready["size"] > 0
    assert isinstance(ready["duration"], float) and ready["duration"] >= 1.0
