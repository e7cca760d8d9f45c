"""``vidhub serve --media-workers N`` as an operator runs it: /health load, shutdown, kill -9."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.proc import ServerProcess, pid_alive, pids_gone_within


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(
        tmp_path / "data",
        extra_env={"VIDHUB_ICE_HOST_ADDRESSES": "127.0.0.1"},
        extra_args=["--media-workers", "2", "--store", "memory"],
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


def _workers(srv: ServerProcess) -> list[dict[str, object]]:
    body = requests.get(srv.url + "/health", timeout=5).json()
    workers: list[dict[str, object]] = body["mediaWorkers"]
    return workers


def test_health_shows_each_worker_and_shutdown_stops_them(served: ServerProcess) -> None:
    workers = _workers(served)
    assert [w["index"] for w in workers] == [0, 1]
    assert all(w["state"] == "up" and w["sessions"] == 0 for w in workers)
    pids = [int(str(w["pid"])) for w in workers]
    assert all(pid_alive(p) for p in pids)
    metrics = requests.get(served.url + "/metrics", auth=served.auth, timeout=5).text
    assert 'vidhub_media_worker_sessions{worker="1"} 0' in metrics
    served.stop()
    assert pids_gone_within(pids, 1.0)  # the main process waited for them
    log = served.log()
    assert "2 media workers up" in log
    assert "Traceback" not in log


def test_kill_9_of_the_main_process_leaves_no_worker(served: ServerProcess) -> None:
    pids = [int(str(w["pid"])) for w in _workers(served)]
    served.kill9()
    assert pids_gone_within(pids, 10.0)


def test_in_process_media_has_no_workers(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path / "data", extra_args=["--media-workers", "0"]).start()
    try:
        assert "mediaWorkers" not in requests.get(srv.url + "/health", timeout=5).json()
    finally:
        srv.stop()
