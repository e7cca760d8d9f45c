"""joinRoom, framing and keep-alive over the real /openvidu socket (fake media router)."""

from __future__ import annotations

import asyncio

from tests.server.signalling.conftest import WAIT, Harness
from vidhub.protocol import jsoncodec


async def test_join_result_has_every_field_the_browser_reads(sig: Harness) -> None:
    _p, res = await sig.joined(metadata='{"clientData":"alice"}', data="srv")
    assert res["id"].startswith("con_")
    assert res["session"] == "S1"
    assert res["role"] == "PUBLISHER"
    assert res["version"] == "2.32.1"
    assert res["mediaServer"] == "kurento"
    assert res["videoSimulcast"] is False
    assert res["value"] == []
    assert res["customIceServers"] == []
    assert res["metadata"] == '{"clientData":"alice"}%/%srv'
    assert isinstance(res["createdAt"], int)
    assert isinstance(res["sessionId"], str) and res["sessionId"]
    assert {"finalUserId", "record", "coturnIp", "coturnPort"} <= set(res)


async def test_second_joiner_sees_first_and_first_is_told(sig: Harness) -> None:
    a, ra = await sig.joined(metadata="alice")
    _b, rb = await sig.joined(metadata="bob")
    assert rb["value"] == [{"id": ra["id"], "createdAt": ra["createdAt"], "metadata": "alice"}]
    joined = await a.next("participantJoined")
    assert joined == {"id": rb["id"], "createdAt": rb["createdAt"], "metadata": "bob"}
    assert "role" not in joined


async def test_token_is_single_use_and_errors_have_openvidu_codes(sig: Harness) -> None:
    tok = await sig.token()
    p = await sig.peer()
    params = {"token": tok, "session": "S1", "platform": "x", "metadata": "", "secret": ""}
    await p.call("joinRoom", params)
    q = await sig.peer()
    err = await q.error("joinRoom", params)
    assert err["code"] == 401
    assert "is not valid" in err["message"]
    err = await q.error("joinRoom", dict(params, session="nope"))
    assert err["code"] == 202
    err = await q.error("joinRoom", {"session": "S1"})
    assert err["code"] == -1
    assert "'token' is missing" in err["message"]


async def test_methods_before_join_get_803_and_unknown_methods_an_error(sig: Harness) -> None:
    p = await sig.peer()
    err = await p.error("publishVideo", {"sdpOffer": "x", "hasAudio": True, "hasVideo": True})
    assert err["code"] == 803
    err = await p.error("noSuchMethod")
    assert err["code"] == -32601


async def test_ping_works_before_join_and_answers_pong(sig: Harness) -> None:
    p = await sig.peer()
    resp = await p.raw("ping", {"interval": 5000})
    assert resp["result"] == {"value": "pong"}
    assert resp["jsonrpc"] == "2.0"


async def test_bad_frames_get_an_error_and_the_socket_keeps_serving(sig: Harness) -> None:
    p = await sig.peer()
    await p.ws.send_str("not json")
    await p.ws.send_str('{"jsonrpc":"1.0","method":"ping","id":7}')
    await p.ws.send_str("[1,2]")
    errors = [await asyncio.wait_for(p.orphans.get(), WAIT) for _ in range(3)]
    assert [e["error"]["code"] for e in errors] == [-32700, -32600, -32600]
    assert errors[1]["id"] == 7
    resp = await p.raw("ping")
    assert resp["result"]["value"] == "pong"
    assert not p.closed.is_set()


async def test_oversized_message_closes_only_that_socket(sig: Harness) -> None:
    sig_app = sig.client.server.app
    from vidhub.server.signalling import SIGNALLING

    limit = sig_app[SIGNALLING].max_message_bytes
    a = await sig.peer()
    b = await sig.peer()
    await a.ws.send_str("x" * (limit + 10))
    await a.closed.wait()
    assert (await b.raw("ping"))["result"]["value"] == "pong"


async def test_echo_and_video_data_and_filters(sig: Harness) -> None:
    p, _ = await sig.joined()
    assert await p.call("echo") == {"sessionId": (await p.call("echo"))["sessionId"]}
    vd = {"width": 640, "height": 480, "videoActive": True, "audioActive": True}
    await p.call("videoData", vd)
    err = await p.error("applyFilter", {"streamId": "s", "type": "GStreamerFilter"})
    assert err["code"] == 406


async def test_socket_that_stops_pinging_is_closed(sig: Harness) -> None:
    p = await sig.peer()
    await p.raw("ping", {"interval": 50})
    await asyncio.wait_for(p.closed.wait(), WAIT)
    assert p.ws.close_code == 1001


async def test_a_request_flood_gets_every_request_answered_or_refused(sig: Harness) -> None:
    from vidhub.server.signalling.endpoint import MAX_QUEUED_REQUESTS

    p, _ = await sig.joined()
    frames = [
        jsoncodec.dumps({"jsonrpc": "2.0", "method": "echo", "id": 1000 + i})
        for i in range(MAX_QUEUED_REQUESTS * 2)
    ]
    for f in frames:
        await p.ws.send_str(f)
    answers = [await asyncio.wait_for(p.orphans.get(), WAIT) for _ in frames]
    assert all("result" in a or a["error"]["code"] == 999 for a in answers)
    assert (await p.raw("ping"))["result"]["value"] == "pong"


def test_token_id_is_taken_from_the_token_url_or_used_as_is() -> None:
    from vidhub.rooms import token_id_of

    assert token_id_of("ws://h:1?sessionId=S&token=tok_AbC") == "tok_AbC"
    assert token_id_of("tok_XyZ") == "tok_XyZ"
    assert token_id_of("garbage") == "garbage"


async def test_concurrent_joiners_all_learn_about_each_other(sig: Harness) -> None:
    _first, first = await sig.joined()
    results = await asyncio.gather(*(sig.joined() for _ in range(4)))
    everyone = {first["id"]} | {r["id"] for _p, r in results}
    for peer, res in results:
        expected = everyone - {res["id"]}
        known = {v["id"] for v in res["value"]}
        while not expected <= known:  # the rest arrive as participantJoined (bounded by WAIT)
            known.add((await peer.next("participantJoined"))["id"])
        assert known == expected
