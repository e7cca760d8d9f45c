"""State survives restarts: a 200 from the REST API means the change is on disk.

``vidhub serve`` (SQLite, the default store) is stopped gracefully (SIGTERM) or killed
(``kill -9``) right after the last acknowledged request, restarted on the same data directory,
and must report exactly what it had acknowledged. Token single-use is covered at the store level
(tests/backends/test_store.py), since consuming a token needs signalling.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.proc import ServerProcess


@pytest.fixture
def srv(tmp_path: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path / "data").start()
    try:
        yield s
    finally:
        s.stop()


def api(s: ServerProcess) -> requests.Session:
    http = requests.Session()
    http.auth = s.auth
    return http


def snapshot(s: ServerProcess) -> dict[str, Any]:
    """Every session with its pending and active connections, keyed by id."""
    with api(s) as http:
        r = http.get(s.api + "/sessions", params={"pendingConnections": "true"}, timeout=10)
        r.raise_for_status()
        return {
            sess["id"]: {
                "createdAt": sess["createdAt"],
                "customSessionId": sess["customSessionId"],
                "mediaMode": sess["mediaMode"],
                "connections": {
                    c["id"]: (c["token"], c["role"], c["record"], c["serverData"], c["status"])
                    for c in sess["connections"]["content"]
                },
            }
            for sess in r.json()["content"]
        }


def populate(s: ServerProcess, n: int) -> dict[str, Any]:
    """Create n sessions (every other one custom) with two connections each."""
    with api(s) as http:
        for i in range(n):
            body = {"customSessionId": f"persist{i}"} if i % 2 else {"mediaMode": "RELAYED"}
            r = http.post(s.api + "/sessions", json=body, timeout=10)
            assert r.status_code == 200
            sid = r.json()["id"]
            for role in ("PUBLISHER", "SUBSCRIBER"):
                c = http.post(
                    f"{s.api}/sessions/{sid}/connection",
                    json={"role": role, "data": f"{sid}-{role}", "record": role == "PUBLISHER"},
                    timeout=10,
                )
                assert c.status_code == 200
    return snapshot(s)


def test_graceful_restart_keeps_sessions_and_tokens(srv: ServerProcess) -> None:
    before = populate(srv, 6)
    assert len(before) == 6
    srv.restart()
    assert snapshot(srv) == before


def test_kill9_right_after_the_last_200(srv: ServerProcess) -> None:
    n = 40
    before = populate(srv, n)  # the last request's 200 is the last thing before the kill
    srv.kill9()
    srv.start()
    after = snapshot(srv)
    assert after == before
    assert sum(len(v["connections"]) for v in after.values()) == 2 * n


def test_kill9_keeps_deletes_and_updates(srv: ServerProcess) -> None:
    before = populate(srv, 4)
    victim_session = "persist1"
    other = "persist3"
    victim_conn, kept_conn = list(before[other]["connections"])
    with api(srv) as http:
        assert http.delete(f"{srv.api}/sessions/{victim_session}", timeout=10).status_code == 204
        r = http.delete(f"{srv.api}/sessions/{other}/connection/{victim_conn}", timeout=10)
        assert r.status_code == 204
        r = http.patch(
            f"{srv.api}/sessions/{other}/connection/{kept_conn}",
            json={"role": "MODERATOR", "record": False},
            timeout=10,
        )
        assert r.status_code == 200
    srv.kill9()
    srv.start()
    after = snapshot(srv)
    assert victim_session not in after
    assert list(after[other]["connections"]) == [kept_conn]
    token, role, record, data, status = after[other]["connections"][kept_conn]
    assert (role, record, data, status) == ("MODERATOR", False, f"{other}-SUBSCRIBER", "pending")
    assert token == before[other]["connections"][kept_conn][0]
    # a custom id taken before the crash is still taken after it
    with api(srv) as http:
        r = http.post(srv.api + "/sessions", json={"customSessionId": other}, timeout=10)
        assert r.status_code == 409
        r = http.post(srv.api + "/sessions", json={"customSessionId": victim_session}, timeout=10)
        assert r.status_code == 200
