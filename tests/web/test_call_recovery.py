"""The call page when things go wrong: no camera or microphone, no server, a refused token,
and a dropped signalling socket."""

from __future__ import annotations

import asyncio
import json

from tests.support.proc import MS, ServerProcess
from tests.web.pages import Pages
from tests.web.test_call_page import rest_token, tile_of, wait_playing

WAIT_S = 20_000 * MS
NOTICE = "document.querySelector('#notice').textContent"


async def test_denied_media_joins_receive_only_and_still_sees_others(
    vidhub: ServerProcess, pages: Pages
) -> None:
    await pages.open("alice", f"{vidhub.url}/?room=r2&name=alice")
    await pages.open("bob", f"{vidhub.url}/?room=r2&name=bob", deny_media=True)
    await pages.wait("bob", f"{NOTICE}.includes('watch and listen only')", WAIT_S, "the notice")
    await wait_playing(pages, "bob", "alice")
    # bob publishes nothing: alice sees his tile with no video, and his controls are off
    await pages.wait("alice", f"({tile_of('bob')})", WAIT_S, "bob's tile")
    assert await pages.eval("alice", f"({tile_of('bob')}).classList.contains('no-video')")
    assert await pages.eval("bob", "document.querySelector('#mic').disabled")
    assert await pages.errors("bob") == []


async def test_dropped_socket_resumes_the_same_call(vidhub: ServerProcess, pages: Pages) -> None:
    await asyncio.gather(
        pages.open("alice", f"{vidhub.url}/?room=r3&name=alice"),
        pages.open("bob", f"{vidhub.url}/?room=r3&name=bob"),
    )
    await wait_playing(pages, "alice", "bob")
    bob_id = await pages.eval("bob", "vidhubCall.room.connectionId")
    await pages.eval("bob", "vidhubCall.room.socket.drop() || true")
    await pages.wait("bob", f"{NOTICE} === 'Reconnected.'", WAIT_S, "the resume")
    assert await pages.eval("bob", "vidhubCall.room.connectionId") == bob_id
    # signalling works again: a mute reaches alice, and nobody saw bob leave
    await pages.click("bob", "#mic")
    await pages.wait("alice", f"!({tile_of('bob')}).querySelector('.mic-off').hidden", WAIT_S)
    await wait_playing(pages, "alice", "bob")


async def test_unreachable_server_and_refused_token_are_explained(
    vidhub: ServerProcess, pages: Pages
) -> None:
    await pages.open("alice", f"{vidhub.url}/")
    # a used token is refused with OpenVidu's 401, which the client reports as such
    token = await asyncio.to_thread(rest_token, vidhub, "r4")
    code = await pages.eval(
        "alice",
        "import('/assets/lib/openvidu.js').then(async (m) => {"
        f" const first = await m.Room.join({json.dumps(token)});"
        f" try {{ await m.Room.join({json.dumps(token)}); return 'joined twice'; }}"
        " catch (e) { await first.leave(); return e.code; } })",
    )
    assert code == 401

    # the server goes away: joining says so plainly
    await asyncio.to_thread(vidhub.stop)
    await pages.fill("alice", "#room", "r5")
    await pages.fill("alice", "#name", "alice")
    await pages.press("alice", "Enter")
    await pages.wait("alice", f"{NOTICE}.startsWith('The server cannot be reached')", WAIT_S)
    assert await pages.eval("alice", "document.querySelector('#notice').getAttribute('role')") == (
        "alert"
    )
    assert await pages.eval("alice", "!document.querySelector('#join').disabled")
