"""The `vidhub` command line as a user runs it."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.proc import ServerProcess, free_port


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidhub", *args], capture_output=True, text=True, timeout=30
    )


def test_version() -> None:
    out = _run("--version")
    assert out.returncode == 0
    assert "vidhub" in out.stdout and "2.32" in out.stdout


def test_serve_help_explains_every_option() -> None:
    out = _run("serve", "--help")
    assert out.returncode == 0
    for flag in (
        "--host",
        "--port",
        "--secret",
        "--data-dir",
        "--log-level",
        "--certfile",
        "--keyfile",
        "--media-workers",
        "VIDHUB_MEDIA_WORKERS",
        "OPENVIDU_SECRET",
        "SERVER_PORT",
    ):
        assert flag in out.stdout


def test_refuses_default_secret_on_public_address() -> None:
    out = _run("serve", "--host", "0.0.0.0", "--port", "1")
    assert out.returncode == 2
    assert "default secret" in out.stderr


def test_serve_health_and_auth(server: ServerProcess) -> None:
    assert requests.get(server.url + "/health", timeout=5).status_code == 200
    r = requests.get(server.api + "/sessions", timeout=5)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    r = requests.get(server.api + "/sessions", auth=("OPENVIDUAPP", "wrong"), timeout=5)
    assert r.status_code == 401
    r = requests.get(server.api + "/sessions", auth=server.auth, timeout=5)
    assert r.status_code == 200 and r.json() == {"numberOfElements": 0, "content": []}


def test_secret_never_logged(server: ServerProcess) -> None:
    requests.post(server.api + "/sessions", auth=server.auth, json={}, timeout=5)
    server.stop()
    assert server.secret not in server.log()


def test_unreachable_redis_is_a_clear_startup_error(tmp_path: Path) -> None:
    port = free_port()
    out = _run(
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
        "--store",
        "redis",
        "--redis-url",
        f"redis://127.0.0.1:{free_port()}/0",
    )
    assert out.returncode == 2
    assert "cannot reach Redis" in out.stderr
    assert "Traceback" not in out.stderr


def test_port_in_use_is_a_clear_startup_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = _run("serve", "--port", str(port), "--data-dir", str(tmp_path), "--store", "memory")
    assert out.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr
    assert "Traceback" not in out.stderr
