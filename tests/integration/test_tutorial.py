"""The tutorial application server against vidhub: the Flask original (an equivalent of
openvidu-basic-python), ``vidhub app-server``, and the built-in ``/api/sessions`` endpoints of
``vidhub serve`` (openvidu.md §0.2-0.3, seed 003).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from tests.integration.tutorial_app import make_app
from tests.support.proc import ServerProcess, free_port, wait_http

TOKEN_RE = r"^ws://127\.0\.0\.1:\d+\?sessionId={sid}&token=tok_[A-Z][0-9A-Za-z]{{15}}$"


@pytest.fixture
def flask_app(shared_server: ServerProcess) -> Iterator[str]:
    """The Flask tutorial on a loopback port, in a thread; yields its base URL."""
    httpd = make_server(
        "127.0.0.1", 0, make_app(shared_server.url + "/", shared_server.secret), threaded=True
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(10)
        httpd.server_close()


def start_app_server(
    tmp: Path, openvidu_url: str, secret: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = open(tmp / f"app-server-{port}.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidhub", "app-server", "--host", "127.0.0.1", "--port", str(port)],
        env={"OPENVIDU_URL": openvidu_url, "OPENVIDU_SECRET": secret, "PATH": "/usr/bin:/bin"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", proc=proc)
    except Exception:
        stop(proc)
        raise
    return proc, url


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def app_server(shared_server: ServerProcess, tmp_path: Path) -> Iterator[str]:
    proc, url = start_app_server(tmp_path, shared_server.url + "/", shared_server.secret)
    try:
        yield url
    finally:
        stop(proc)


@pytest.fixture
def app_server_factory(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(openvidu_url: str, secret: str) -> str:
        proc, url = start_app_server(tmp_path, openvidu_url, secret)
        procs.append(proc)
        return url

    try:
        yield start
    finally:
        for p in procs:
            stop(p)


def tutorial_flow(base: str, shared_server: ServerProcess, custom: str) -> None:
    """What the tutorial's frontend does: init a session, then get a token for it."""
    # a generated session id, with and without a body
    r = requests.post(base + "/api/sessions", json={}, timeout=10)
    assert r.status_code == 200 and re.fullmatch(r"ses_[A-Z][0-9A-Za-z]{9}", r.text)
    r = requests.post(base + "/api/sessions", timeout=10)
    assert r.status_code == 200 and r.text.startswith("ses_")
    # a custom id, then again: the 409 is absorbed and the same id comes back
    for _ in range(2):
        r = requests.post(base + "/api/sessions", json={"customSessionId": custom}, timeout=10)
        assert (r.status_code, r.text) == (200, custom)
    # a token for that session, from an empty body and from connection properties
    r = requests.post(f"{base}/api/sessions/{custom}/connections", json={}, timeout=10)
    assert r.status_code == 200
    assert re.fullmatch(TOKEN_RE.format(sid=custom), r.text), r.text
    r2 = requests.post(
        f"{base}/api/sessions/{custom}/connections",
        json={"role": "SUBSCRIBER", "data": "viewer"},
        timeout=10,
    )
    assert r2.status_code == 200 and r2.text != r.text
    # both tokens are pending connections of the session on the server
    conns = requests.get(
        f"{shared_server.api}/sessions/{custom}/connection", auth=shared_server.auth, timeout=10
    ).json()
    tokens = {c["token"]: c for c in conns["content"]}
    assert set(tokens) >= {r.text, r2.text}
    assert tokens[r2.text]["role"] == "SUBSCRIBER"
    assert tokens[r2.text]["serverData"] == "viewer"


def test_flask_tutorial_against_vidhub(flask_app: str, shared_server: ServerProcess) -> None:
    tutorial_flow(flask_app, shared_server, "tutorialFlask")


def test_app_server_against_vidhub(app_server: str, shared_server: ServerProcess) -> None:
    tutorial_flow(app_server, shared_server, "tutorialAppServer")
    r = requests.options(
        app_server + "/api/sessions",
        headers={"Origin": "http://example.test", "Access-Control-Request-Method": "POST"},
        timeout=10,
    )
    assert r.status_code == 200 and r.headers["Access-Control-Allow-Origin"] == "*"


def test_builtin_app_endpoints(shared_server: ServerProcess) -> None:
    tutorial_flow(shared_server.url, shared_server, "tutorialBuiltin")


@pytest.mark.parametrize("where", ["app-server", "builtin"])
def test_errors_reach_the_caller(
    where: str, shared_server: ServerProcess, app_server_factory: Callable[[str, str], str]
) -> None:
    base = (
        app_server_factory(shared_server.url + "/", shared_server.secret)
        if where == "app-server"
        else shared_server.url
    )
    r = requests.post(base + "/api/sessions/no_such_session/connections", json={}, timeout=10)
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["status"] == 404
    r = requests.post(base + "/api/sessions", json={"customSessionId": "bad id!"}, timeout=10)
    assert r.status_code == 400 and r.json()["status"] == 400
    assert "customSessionId" in r.json()["message"]  # the server's own words, passed on
    r = requests.post(base + "/api/sessions", json=["not", "an", "object"], timeout=10)
    assert r.status_code == 400 and r.json()["status"] == 400
    r = requests.post(base + "/api/sessions/x/connections", json={"role": "KING"}, timeout=10)
    assert r.status_code in (400, 404)  # validation or the missing session: never a 200/500


def test_app_server_upstream_auth_and_outage(
    shared_server: ServerProcess, app_server_factory: Callable[[str, str], str]
) -> None:
    wrong = app_server_factory(shared_server.url + "/", "not-the-secret")
    r = requests.post(wrong + "/api/sessions", json={}, timeout=10)
    assert r.status_code == 401 and r.json()["status"] == 401
    r = requests.post(wrong + "/api/sessions/any/connections", json={}, timeout=10)
    assert r.status_code == 401

    dead = app_server_factory(f"http://127.0.0.1:{free_port()}/", shared_server.secret)
    r = requests.post(dead + "/api/sessions", json={}, timeout=10)
    assert r.status_code == 502 and "unreachable" in r.json()["message"]
