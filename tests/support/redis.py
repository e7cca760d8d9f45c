"""A real ``redis-server`` on a free loopback port, for the Redis engine's tests.

Nothing is persisted (``--save "" --appendonly no``; ``persistent=True`` turns the append-only
file on, so data survives a restart) and the server runs in a temporary
directory; the process is stopped by its PID. Without a ``redis-server`` on ``PATH`` the
tests that need one are skipped with the reason, except under ``CI=true``, where a missing
dependency is a failure (``make test-deps`` installs Debian's ``redis-server``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.proc import free_port, stop_process

__all__ = ["RedisServer", "redis_server_binary", "running_redis"]


def redis_server_binary() -> str:
    """Path of ``redis-server``; skips the test without one (fails it under ``CI=true``)."""
    path = shutil.which("redis-server")
    if path is None:
        reason = "redis-server not found on PATH (make test-deps installs Debian redis-server)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


class RedisServer:
    """One ``redis-server`` process bound to 127.0.0.1 on a free port."""

    def __init__(self, workdir: Path, binary: str, *, persistent: bool = False) -> None:
        self.workdir = workdir
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        #: ``appendonly yes``: the data survives a :meth:`restart`
        self.persistent = persistent

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``; other databases: :meth:`db_url`."""
        return self.db_url(0)

    def db_url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--dir",
                str(self.workdir),
            ],
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        """Poll with ``PING`` until ``+PONG``; fail early if the process exits."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._pong():
                return
            try:
                # a process we do not control: waiting on its exit doubles as the poll interval
                self.proc.wait(0.02)
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {self.log()}")
        self.stop()
        raise TimeoutError(f"redis-server on port {self.port} not ready after {timeout}s")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM by PID and wait (SIGKILL after 10 s)."""
        stop_process(self.proc)
        self.proc = None

    def restart(self, timeout: float = 10.0) -> None:
        """Stop and start again on the same port (what clients see as a Redis restart)."""
        self.stop()
        self.start(timeout)

    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_redis(workdir: Path, *, persistent: bool = False) -> Iterator[RedisServer]:
    """A started :class:`RedisServer` for the ``with`` block (skips without the binary)."""
    srv = RedisServer(workdir, redis_server_binary(), persistent=persistent).start()
    try:
        yield srv
    finally:
        srv.stop()
