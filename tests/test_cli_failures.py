"""Friendly start-up failures: one line naming the cause and the file or URL, exit code 2,
nothing overwritten (issue 13: a corrupt SQLite file gave a raw 30-line traceback)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from tests.support.proc import free_port
from tests.support.redis import running_redis


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "vidhub", "serve", "--port", str(free_port()), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def _the_line(out: subprocess.CompletedProcess[str]) -> str:
    """The one ``vidhub:`` line on stderr (log lines before it are allowed)."""
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("vidhub:")]
    assert len(lines) == 1, out.stderr
    return lines[0]


def test_corrupt_database_is_one_line_exit_2_and_left_untouched(tmp_path: Path) -> None:
    db = tmp_path / "vidhub.sqlite3"
    garbage = bytes(range(256)) * 64
    db.write_bytes(garbage)
    line = _the_line(_serve("--data-dir", str(tmp_path)))
    assert str(db) in line
    assert "not a usable SQLite database" in line and "move it aside" in line
    assert db.read_bytes() == garbage
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vidhub.sqlite3"]


def test_unusable_database_path_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "vidhub.sqlite3").mkdir()  # something that is not a file is in the way
    line = _the_line(_serve("--data-dir", str(tmp_path)))
    assert str(tmp_path / "vidhub.sqlite3") in line


def test_data_dir_that_cannot_be_created_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    line = _the_line(_serve("--data-dir", str(blocker / "data")))
    assert str(blocker / "data") in line or str(blocker) in line


def test_bad_tls_files_name_the_file(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    line = _the_line(_serve("--store", "memory", "--certfile", str(cert), "--keyfile", str(key)))
    assert str(cert) in line
    missing = _the_line(
        _serve("--store", "memory", "--certfile", str(tmp_path / "nope.pem"), "--keyfile", str(key))
    )
    assert str(tmp_path / "nope.pem") in missing


def test_port_in_use_is_one_line_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "vidhub", "serve", "--port", str(port), "--store", "memory"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert f"127.0.0.1:{port}" in _the_line(out)


def test_wrong_redis_password_is_one_line_exit_2_without_the_password(tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis") as redis:
        with socket.create_connection(("127.0.0.1", redis.port), timeout=5) as s:
            s.sendall(b"CONFIG SET requirepass right-password\r\n")
            assert s.recv(16).startswith(b"+OK")
        url = f"redis://:wrong-password@127.0.0.1:{redis.port}/0"
        out = _serve("--data-dir", str(tmp_path), "--store", "redis", "--redis-url", url)
    line = _the_line(out)
    assert f"127.0.0.1:{redis.port}" in line
    assert "wrong-password" not in out.stderr
