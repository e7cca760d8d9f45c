"""The operator dashboard at ``/dashboard`` in real headless Chromium.

Python participants make a live session with media; the operator signs in with the secret,
sees the session and its people, watches the plots move and the hub events arrive, and
evicts someone.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import requests
from aiortc import AudioStreamTrack, VideoStreamTrack

from tests.support.proc import MS, ServerProcess
from tests.web.pages import Pages
from vidhub.client import Participant

WAIT_S = 20_000 * MS


def token(srv: ServerProcess, room: str) -> str:
    requests.post(f"{srv.api}/sessions", json={"customSessionId": room}, auth=srv.auth, timeout=5)
    r = requests.post(f"{srv.api}/sessions/{room}/connection", json={}, auth=srv.auth, timeout=5)
    r.raise_for_status()
    tok: str = r.json()["token"]
    return tok


async def bot(srv: ServerProcess, room: str, name: str) -> Participant:
    p = Participant(
        await asyncio.to_thread(token, srv, room),
        metadata=json.dumps({"clientData": name}),
        host_addresses=["127.0.0.1"],
    )
    await p.join()
    return p


@pytest.fixture
async def call(vidhub: ServerProcess) -> AsyncIterator[tuple[Participant, Participant]]:
    """ann and ben in room d1: both publish, ben receives ann."""
    ann = await bot(vidhub, "d1", "ann")
    ben = await bot(vidhub, "d1", "ben")
    try:
        await ann.publish(audio=AudioStreamTrack(), video=VideoStreamTrack())
        await ben.publish(audio=AudioStreamTrack(), video=VideoStreamTrack())
        assert ann.stream is not None
        sub = await ben.subscribe(ann.stream.id)
        await asyncio.wait_for(sub.video.recv(), WAIT_S)
        yield ann, ben
    finally:
        await ben.leave()
        await ann.leave()


async def sign_in(pages: Pages, page: str, secret: str) -> None:
    await pages.fill(page, "#secret", secret)
    await pages.press(page, "Enter")


def row_of(name: str) -> str:
    return (
        "[...document.querySelectorAll('#sessions tr[data-connection-id]')]"
        f".find((r) => r.querySelector('.name').textContent === {json.dumps(name)}) || null"
    )


async def test_dashboard_sign_in_lists_plots_events_and_evict(
    vidhub: ServerProcess, pages: Pages, shots: Path, call: tuple[Participant, Participant]
) -> None:
    ann, _ben = call
    assert ann.stream is not None
    await pages.open("op", f"{vidhub.url}/dashboard", width=1280, height=900)

    # a wrong secret is refused with a message; the right one signs in
    await sign_in(pages, "op", "not-the-secret")
    await pages.wait("op", "document.querySelector('.message')", WAIT_S, "the refusal")
    assert await pages.eval("op", "document.querySelector('.message').textContent") == (
        "Wrong secret."
    )
    # the browser logs the refused sign-in's 401 as a failed load: the only error allowed
    assert await pages.errors("op") == [
        "Failed to load resource: the server responded with a status of 401 (Unauthorized)"
    ]
    await sign_in(pages, "op", vidhub.secret)
    await pages.wait("op", "document.querySelector('#sessions')", WAIT_S, "the dashboard")
    assert await pages.eval("op", "location.pathname + location.search") == "/dashboard"
    assert await pages.eval("op", "document.cookie") == ""  # HttpOnly
    assert await pages.eval("op", "localStorage.length + sessionStorage.length") == 0

    # the live session and its participants, with what they send and receive
    await pages.wait("op", f"({row_of('ben')})", WAIT_S, "ben in the list")
    assert await pages.eval(
        "op", "[...document.querySelectorAll('.session-card')].map((c) => c.dataset.sessionId)"
    ) == ["d1"]
    media = await pages.eval("op", f"({row_of('ben')}).querySelector('.media').textContent")
    assert media == "sends camera + mic; receives ann"

    # each stream's plots move: points accumulate and the bitrate is real
    card = f"document.querySelector('[data-stream-id={json.dumps(ann.stream.id)}]"
    bitrate = card + " canvas.bitrate')"
    await pages.wait("op", f"{bitrate} && +{bitrate}.dataset.points >= 2", WAIT_S, "plots")
    before = await pages.eval("op", f"[+{bitrate}.dataset.points, {bitrate}.toDataURL()]")
    await pages.wait("op", f"+{bitrate}.dataset.points > {before[0]}", WAIT_S, "a new point")
    assert await pages.eval("op", f"{bitrate}.toDataURL()") != before[1]
    assert await pages.eval("op", f"+{bitrate}.dataset.last") > 10  # kbps of a live video
    # frames per second and the round-trip time to ben, as the server measures them
    fps, rtt, loss = (card + f" canvas.{kind}')" for kind in ("fps", "rtt", "loss"))
    await pages.wait("op", f"+{fps}.dataset.last > 5", WAIT_S, "frames per second")
    await pages.wait("op", f"{rtt}.dataset.last !== ''", WAIT_S, "a round-trip time")
    assert 0 <= await pages.eval("op", f"+{rtt}.dataset.last") < 1000
    assert await pages.eval("op", f"+{loss}.dataset.last") == 0  # loopback loses nothing
    await pages.wait("op", "+document.querySelector('#plot-cpu').dataset.points >= 2", WAIT_S)

    # hub events as they happen, through the hub's expression filter
    await pages.fill("op", "#filter", "topic=vidhub.participant.*")
    await pages.press("op", "Enter")
    await pages.wait(
        "op", "document.querySelector('#filter-status').textContent.startsWith('Showing')", WAIT_S
    )
    cat = await bot(vidhub, "d1", "cat")
    joined = (
        "[...document.querySelectorAll('#events li')].some((li) =>"
        " li.dataset.topic === 'vidhub.participant.joined'"
        f" && li.title.includes({json.dumps(cat.connection_id)}))"
    )
    await pages.wait("op", joined, WAIT_S, "cat's join in the feed")
    await pages.wait("op", f"({row_of('cat')})", WAIT_S, "cat in the list")
    if os.environ.get("VIDHUB_SCREENSHOT_DIR"):
        # the picture for docs/: let the plots fill up a little first
        await pages.wait("op", f"+{bitrate}.dataset.points >= 40", 90, "forty points")
    await pages.screenshot("op", shots / "dashboard.png")

    # evict: cat is removed from the call, as by REST
    await pages.click("op", '[aria-label="Evict cat"]')
    await asyncio.wait_for(cat.closed.wait(), WAIT_S)
    left = (
        "[...document.querySelectorAll('#events li')].some((li) =>"
        " li.dataset.topic === 'vidhub.participant.left'"
        " && li.title.includes('forceDisconnectByServer'))"
    )
    await pages.wait("op", left, WAIT_S, "cat's departure in the feed")
    await pages.wait("op", f"({row_of('cat')}) === null", WAIT_S, "cat gone from the list")
    r = await asyncio.to_thread(
        requests.get,
        f"{vidhub.api}/sessions/d1/connection/{cat.connection_id}",
        auth=vidhub.auth,
        timeout=5,
    )
    assert r.status_code == 404

    # an invalid filter is explained, not applied
    await pages.fill("op", "#filter", "topic=(")
    await pages.press("op", "Enter")
    await pages.wait(
        "op",
        "document.querySelector('#filter-status').textContent.startsWith('Not a valid')",
        WAIT_S,
    )
    assert len(await pages.errors("op")) == 1

    # log out: back to the sign-in form, and the old cookie is worthless
    await pages.click("op", "form[action='/dashboard/logout'] button")
    await pages.wait("op", "document.querySelector('#secret')", WAIT_S, "the sign-in form")


def test_login_cookie_rate_limit_and_actions_need_sign_in(vidhub: ServerProcess) -> None:
    base = vidhub.url
    # actions and the feed need the cookie
    assert (
        requests.post(f"{base}/dashboard/api/close", json={"session": "x"}, timeout=5).status_code
        == 401
    )
    assert requests.get(f"{base}/dashboard/ws", timeout=5).status_code == 401

    with requests.Session() as s:
        r = s.post(
            f"{base}/dashboard/login",
            data={"secret": vidhub.secret},
            allow_redirects=False,
            timeout=5,
        )
        assert r.status_code == 303 and r.headers["Location"] == "/dashboard"
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
        assert vidhub.secret not in cookie
        # signed in: a bad action is a clear client error, never a 500
        assert (
            s.post(f"{base}/dashboard/api/close", json={"session": "nope"}, timeout=5).status_code
            == 404
        )
        assert s.post(f"{base}/dashboard/api/close", data=b"{", timeout=5).status_code == 400
        assert (
            s.post(f"{base}/dashboard/api/evict", json={"session": 3}, timeout=5).status_code == 400
        )
        assert s.post(f"{base}/dashboard/api/nothing", json={}, timeout=5).status_code == 404
        # another site's page cannot act with the operator's cookie
        evil = s.post(
            f"{base}/dashboard/api/close",
            json={"session": "nope"},
            headers={"Origin": "http://evil.example"},
            timeout=5,
        )
        assert evil.status_code == 403
        s.post(f"{base}/dashboard/logout", allow_redirects=False, timeout=5)
        assert (
            s.post(f"{base}/dashboard/api/close", json={"session": "x"}, timeout=5).status_code
            == 401
        )

    # wrong secrets: refused, then rate-limited whatever is posted
    for _ in range(5):
        r = requests.post(f"{base}/dashboard/login", data={"secret": "guess"}, timeout=5)
        assert r.status_code == 401 and "Wrong secret." in r.text
    r = requests.post(
        f"{base}/dashboard/login", data={"secret": vidhub.secret}, allow_redirects=False, timeout=5
    )
    assert r.status_code == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 61
    assert "Too many wrong secrets" in r.text


async def test_dashboard_actions_reach_the_call(
    vidhub: ServerProcess, call: tuple[Participant, Participant]
) -> None:
    """Signal, unpublish and close from the dashboard act on the live call, as REST does."""
    ann, ben = call
    assert ann.stream is not None
    http = requests.Session()

    def post(name: str, body: dict[str, object]) -> int:
        return http.post(f"{vidhub.url}/dashboard/api/{name}", json=body, timeout=5).status_code

    await asyncio.to_thread(
        http.post, f"{vidhub.url}/dashboard/login", data={"secret": vidhub.secret}, timeout=5
    )
    signal = asyncio.ensure_future(ben.wait_event("sendMessage", wait_s=WAIT_S))
    body = {"session": "d1", "type": "signal:operator", "data": "hello all"}
    assert await asyncio.to_thread(post, "signal", body) == 200
    assert (await signal).data["data"] == "hello all"

    gone = asyncio.ensure_future(ben.wait_event("participantUnpublished", wait_s=WAIT_S))
    assert (
        await asyncio.to_thread(post, "unpublish", {"session": "d1", "stream": ann.stream.id})
        == 200
    )
    assert (await gone).data["reason"] == "forceUnpublishByServer"

    assert await asyncio.to_thread(post, "close", {"session": "d1"}) == 200
    await asyncio.wait_for(asyncio.gather(ann.closed.wait(), ben.closed.wait()), WAIT_S)
    r = await asyncio.to_thread(
        requests.get, f"{vidhub.api}/sessions/d1", auth=vidhub.auth, timeout=5
    )
    assert r.status_code == 404
    http.close()
