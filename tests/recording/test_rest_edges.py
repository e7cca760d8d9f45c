"""Recording REST edges that need no media: public file access, an unusable recording path,
recording off."""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from vidhub.client import Participant
from vidhub.config import Config
from vidhub.server.app import make_app
from vidhub.store import MemoryStore

API = "/openvidu/api"
CRED = base64.b64encode(b"OPENVIDUAPP:MY_SECRET").decode()


@asynccontextmanager
async def vidhub(**cfg: Any) -> AsyncIterator[TestClient[Any, Any]]:
    app = make_app(Config(store="memory", garbage_interval_s=0, **cfg), store=MemoryStore())
    async with TestClient(
        TestServer(app, host="127.0.0.1"), headers={"Authorization": f"Basic {CRED}"}
    ) as c:
        yield c


async def _joined(api: TestClient[Any, Any], session: str) -> Participant:
    """A participant that joins without publishing (the session is active, no media)."""
    await api.post(f"{API}/sessions", json={"customSessionId": session})
    r = await api.post(f"{API}/sessions/{session}/connection", json={})
    bot = Participant((await r.json())["token"])
    await bot.join()
    return bot


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


async def test_public_access_serves_files_without_credentials(tmp_path: Path) -> None:
    async with vidhub(
        recording=True, recording_path=str(tmp_path), recording_public_access=True
    ) as api:
        bot = await _joined(api, "PUB")
        try:
            body = {"session": "PUB", "outputMode": "INDIVIDUAL"}
            assert (await api.post(f"{API}/recordings/start", json=body)).status == 200
            rec = await (await api.post(f"{API}/recordings/stop/PUB")).json()
        finally:
            await bot.leave()
        assert rec["status"] == "ready"
        r = await api.get(_path(rec["url"]), headers={"Authorization": "Basic bm9ib2R5Og=="})
        assert r.status == 200 and len(await r.read()) == rec["size"]
        # the REST API itself still needs the secret
        r = await api.get(f"{API}/recordings", headers={"Authorization": "Basic bm9ib2R5Og=="})
        assert r.status == 401


async def test_unusable_recording_path_fails_the_recording_with_a_logged_reason(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the recordings folder should be")
    async with vidhub(recording=True, recording_path=str(blocker)) as api:
        bot = await _joined(api, "DISK")
        try:
            with caplog.at_level(logging.ERROR, logger="vidhub.recording"):
                r = await api.post(f"{API}/recordings/start", json={"session": "DISK"})
            assert r.status == 500
            assert (await r.text()).startswith("Error starting recording:")
            rec = await (await api.get(f"{API}/recordings/DISK")).json()
            assert rec["status"] == "failed" and rec["url"] is None
            assert "recording DISK failed" in caplog.text
            # the server keeps serving
            assert (await api.get(f"{API}/sessions/DISK")).status == 200
        finally:
            await bot.leave()


@pytest.mark.parametrize(
    "call",
    [
        lambda api: api.post(f"{API}/recordings/start", json={"session": "x"}),
        lambda api: api.get(f"{API}/recordings"),
        lambda api: api.delete(f"{API}/recordings/x"),
    ],
)
async def test_recording_off_is_501(call: Callable[[TestClient[Any, Any]], Any]) -> None:
    async with vidhub() as api:
        r = await call(api)
        assert r.status == 501 and await r.read() == b""


async def test_config_shows_the_recording_settings(tmp_path: Path) -> None:
    async with vidhub(
        recording=True, recording_path=str(tmp_path), recording_autostop_timeout_s=30
    ) as api:
        cfg = await (await api.get(f"{API}/config")).json()
        assert cfg["OPENVIDU_RECORDING"] is True
        assert cfg["OPENVIDU_RECORDING_PATH"] == str(tmp_path)
        assert cfg["OPENVIDU_RECORDING_PUBLIC_ACCESS"] is False
        assert cfg["OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT"] == 30
        assert cfg["OPENVIDU_RECORDING_NOTIFICATION"] == "publisher_moderator"
        r = await api.get(f"{API}/config/openvidu-recording-path")
        assert await r.text() == str(tmp_path)
        assert await (await api.get(f"{API}/config/openvidu-recording")).text() == "true"


def test_recording_settings_from_the_environment(tmp_path: Path) -> None:
    cfg = Config.from_env(
        {
            "OPENVIDU_RECORDING": "true",
            "OPENVIDU_RECORDING_PUBLIC_ACCESS": "true",
            "OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT": "0",
            "VIDHUB_DATA_DIR": str(tmp_path),
        }
    )
    assert cfg.recording and cfg.recording_public_access
    assert cfg.recording_autostop_timeout_s == 0
    assert cfg.effective_recording_path == tmp_path / "recordings"
    with pytest.raises(ValueError, match="OPENVIDU_RECORDING_NOTIFICATION"):
        Config.from_env({"OPENVIDU_RECORDING_NOTIFICATION": "everyone"})


def test_notification_setting_names_the_roles_told() -> None:
    from vidhub.recording.ports import notified_roles

    assert notified_roles("none") == frozenset()
    assert notified_roles("moderator") == {"MODERATOR"}
    assert notified_roles("publisher_moderator") == {"PUBLISHER", "MODERATOR"}
    assert notified_roles("all") == {"SUBSCRIBER", "PUBLISHER", "MODERATOR"}
