"""Run a real ``vidhub serve`` (or any server) as a child process for integration tests."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

__all__ = [
    "MS",
    "ServerProcess",
    "free_port",
    "pid_alive",
    "pids_gone_within",
    "rest",
    "stop_process",
    "wait_http",
]

#: One millisecond, scaled by VIDHUB_TEST_TIME_SCALE for slow machines.
MS = 0.001 * float(os.environ.get("VIDHUB_TEST_TIME_SCALE", "1"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def pids_gone_within(pids: list[int], seconds: float) -> bool:
    """Whether every pid exits within ``seconds``, for processes that are not our children.

    Waits on each process's pidfd, which becomes readable when the process exits (a zombie
    counts as gone): an event with a deadline, not a poll of ``/proc``.
    """
    deadline = time.monotonic() + seconds
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue  # already gone and reaped
        try:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(fd)
        if not ready:
            return False
    return True


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``url`` until it answers 200; fail early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before becoming ready")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException as exc:
            last = exc
        # polling a process we do not control: no event to wait on
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


def stop_process(proc: subprocess.Popen[bytes] | None, grace_s: float = 10.0) -> None:
    """SIGTERM a child we started (by PID) and wait; SIGKILL if it outlives ``grace_s``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class ServerProcess:
    """``vidhub serve`` on a free loopback port with its own data directory."""

    def __init__(
        self,
        data_dir: Path,
        secret: str = "MY_SECRET",
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.secret = secret
        self.port = free_port()
        self.extra_env = extra_env or {}
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api(self) -> str:
        return f"{self.url}/openvidu/api"

    @property
    def auth(self) -> tuple[str, str]:
        return ("OPENVIDUAPP", self.secret)

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENVIDU_", "VIDHUB_"))}
        # media in the main process unless a test asks for workers (flag or environment)
        env["VIDHUB_MEDIA_WORKERS"] = "0"
        env.update(self.extra_env)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vidhub",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--secret",
                self.secret,
                "--data-dir",
                str(self.data_dir),
                *self.extra_args,
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_http(self.url + "/health", proc=self.proc)
        return self

    def stop(self) -> None:
        """Graceful stop (SIGTERM), waiting for exit."""
        stop_process(self.proc)
        self.proc = None

    def kill9(self) -> None:
        """SIGKILL, as a crash would."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def rest(server: ServerProcess, method: str, path: str, **kw: Any) -> requests.Response:
    """One OpenVidu REST call (``path`` below ``/openvidu/api``) to ``server``, with its auth."""
    return requests.request(method, server.api + path, auth=server.auth, timeout=10, **kw)
