"""A full disk while serving: SQLite reports SQLITE_FULL (produced for real by capping the
database's page count); the caller gets 503 + Retry-After instead of a 500, the operator one
log line naming the file, and what was refused is not half-kept in memory."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from vidhub.config import Config
from vidhub.server.app import make_app
from vidhub.store import SqliteStore

AUTH = {"Authorization": "Basic " + base64.b64encode(b"OPENVIDUAPP:MY_SECRET").decode()}


async def test_full_disk_gives_503_one_log_line_and_no_phantom_sessions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "vidhub.sqlite3")
    app = make_app(Config(store="memory", garbage_interval_s=0), store=store)
    async with TestClient(TestServer(app), headers=AUTH) as c:
        db = store._db
        assert db is not None
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        db.execute(f"PRAGMA max_page_count = {pages}")
        statuses: list[Any] = []
        for i in range(200):
            r = await c.post("/openvidu/api/sessions", json={"customSessionId": f"s{i}"})
            statuses.append(r.status)
            if r.status == 503:
                assert r.headers["Retry-After"] == "5"
                assert "retry later" in (await r.json())["message"]
        assert 503 in statuses and set(statuses) <= {200, 503}
        refused = [f"s{i}" for i, s in enumerate(statuses) if s == 503]
        listed = await (await c.get("/openvidu/api/sessions")).json()
        assert not {s["id"] for s in listed["content"]} & set(refused)
        errors = [r for r in caplog.records if "cannot write to the database" in r.getMessage()]
        assert len(errors) == 1 and str(tmp_path / "vidhub.sqlite3") in errors[0].getMessage()
        assert not any(r.exc_info for r in caplog.records if r.levelno >= logging.ERROR)
