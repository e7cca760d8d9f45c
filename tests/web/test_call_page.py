"""The call page at ``/`` in real headless Chromium against a real ``vidhub serve``.

Two browsers join the same room through the deep link, see and hear each other, mute, and
leave; a Python ``Participant`` in the same room shows up as a tile. Every address is loopback.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import requests
from aiortc import AudioStreamTrack, VideoStreamTrack

from tests.support.proc import MS, ServerProcess
from tests.web.pages import Pages
from vidhub.client import Participant

WAIT_S = 20_000 * MS


def tile_of(name: str) -> str:
    """JS: the remote tile whose label is ``name`` (or null)."""
    return (
        "[...document.querySelectorAll('.tile:not(.local)')]"
        f".find((t) => t.querySelector('.name').textContent === {json.dumps(name)}) || null"
    )


def playing(name: str) -> str:
    """JS: ``{width, time}`` once ``name``'s video has real frames, else null."""
    return (
        f"(() => {{ const t = {tile_of(name)}; const v = t && t.querySelector('video');"
        " return v && v.videoWidth > 0 && v.readyState >= 2"
        " ? {width: v.videoWidth, time: v.currentTime} : null; })()"
    )


async def wait_playing(pages: Pages, page: str, name: str) -> None:
    """``name``'s video plays in ``page``: frames with a size, and its clock advances."""
    first = await pages.wait(page, playing(name), WAIT_S, f"{name}'s video in {page}")
    assert first["width"] > 0
    await pages.wait(
        page,
        f"(() => {{ const p = {playing(name)}; return p && p.time > {first['time']} + 0.2; }})()",
        WAIT_S,
        f"{name}'s video to advance in {page}",
    )


def rest_token(srv: ServerProcess, room: str) -> str:
    requests.post(f"{srv.api}/sessions", json={"customSessionId": room}, auth=srv.auth, timeout=5)
    r = requests.post(f"{srv.api}/sessions/{room}/connection", json={}, auth=srv.auth, timeout=5)
    r.raise_for_status()
    token: str = r.json()["token"]
    return token


async def test_two_pages_call_mute_participant_tile_and_leave(
    vidhub: ServerProcess, pages: Pages, shots: Path
) -> None:
    await asyncio.gather(
        pages.open("alice", f"{vidhub.url}/?room=r1&name=alice"),
        pages.open("bob", f"{vidhub.url}/?room=r1&name=bob"),
    )
    # each sees the other's video playing, under the other's name
    await asyncio.gather(wait_playing(pages, "alice", "bob"), wait_playing(pages, "bob", "alice"))
    assert await pages.eval("alice", "document.querySelector('.tile.local .name').textContent") == (
        "alice (you)"
    )
    # every tile gets a connection-quality indicator from WebRTC stats
    await pages.wait(
        "alice",
        "[...document.querySelectorAll('.tile .quality')].every((q) => q.dataset.level === '3')",
        WAIT_S,
        "quality indicators",
    )
    await pages.screenshot("alice", shots / "call-two-participants.png")

    # mute on alice: bob's tile of alice shows it (streamPropertyChanged)
    await pages.click("alice", "#mic")
    assert await pages.eval(
        "alice", "document.querySelector('#mic').getAttribute('aria-pressed')"
    ) == ("false")
    await pages.wait(
        "bob", f"!({tile_of('alice')}).querySelector('.mic-off').hidden", WAIT_S, "mute"
    )
    await pages.click("alice", "#mic")
    await pages.wait(
        "bob", f"({tile_of('alice')}).querySelector('.mic-off').hidden", WAIT_S, "unmute"
    )

    # screen share replaces alice's camera for bob (Chromium's fake screen is 1280x720, sent at
    # full size: a shared screen keeps its resolution), and back
    video_width = f"({tile_of('alice')}).querySelector('video').videoWidth"
    await pages.click("alice", "#share")
    await pages.wait("bob", f"{video_width} === 1280", WAIT_S, "alice's screen")
    assert await pages.eval(
        "alice", "document.querySelector('#share').getAttribute('aria-pressed')"
    ) == ("true")
    await pages.click("alice", "#share")
    # (the camera's size is not fixed: Chromium scales a camera down when the CPU is busy)
    await pages.wait("bob", f"{video_width} < 1280", WAIT_S, "alice's camera again")

    # a Python Participant publishing in the same room appears as a tile with its name
    bot = Participant(
        await asyncio.to_thread(rest_token, vidhub, "r1"),
        metadata=json.dumps({"clientData": "bot"}),
        host_addresses=["127.0.0.1"],
    )
    await bot.join()
    try:
        await bot.publish(audio=AudioStreamTrack(), video=VideoStreamTrack())
        await asyncio.gather(wait_playing(pages, "alice", "bot"), wait_playing(pages, "bob", "bot"))
    finally:
        await bot.leave()
    await pages.wait("alice", f"({tile_of('bot')}) === null", WAIT_S, "bot's tile to go")

    # leave: bob's tile disappears for alice, and bob is back at the join form
    await pages.click("bob", "#leave")
    await pages.wait("alice", f"({tile_of('bob')}) === null", WAIT_S, "bob's tile to go")
    assert await pages.eval("bob", "!document.querySelector('#join-form').hidden")
    assert (
        await pages.eval("bob", "document.querySelector('#notice').textContent")
        == "You left the call."
    )
    for page in ("alice", "bob"):
        assert await pages.errors(page) == []
