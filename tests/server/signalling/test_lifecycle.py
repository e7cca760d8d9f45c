"""Signals, leaving, evictions and socket resumption (fake media router)."""

from __future__ import annotations

import asyncio

from tests.server.signalling.conftest import WAIT, Harness, RpcPeer
from tests.server.signalling.test_media import PUB
from vidhub.protocol import jsoncodec


def _msg(to: list[str], data: str, type_: str = "signal:chat") -> dict[str, str]:
    return {"message": jsoncodec.dumps({"to": to, "data": data, "type": type_})}


async def test_signal_broadcast_includes_sender_and_targeted_reaches_only_target(
    sig: Harness,
) -> None:
    a, ra = await sig.joined()
    b, rb = await sig.joined()
    c, _ = await sig.joined()
    await a.call("sendMessage", _msg([], "hi"))
    for p in (a, b, c):
        assert await p.next("sendMessage") == {
            "data": "hi",
            "type": "signal:chat",
            "from": ra["id"],
        }
    await a.call("sendMessage", _msg([rb["id"]], "psst"))
    assert (await b.next("sendMessage"))["data"] == "psst"
    assert (await a.error("sendMessage", _msg(["con_Nobody"], "x")))["code"] == 601
    assert (await a.error("sendMessage", {"message": "[1]"}))["code"] == 600
    sent = [e.fields for e in sig.events if e.name == "signalSent"]
    assert sent[0]["type"] == "chat" and sent[0]["from"] == ra["id"]
    # REST signal: no "from", type verbatim
    r = await sig.client.post(
        "/openvidu/api/signal", json={"session": "S1", "to": [ra["id"]], "type": "t", "data": "d"}
    )
    assert r.status == 200
    assert await a.next("sendMessage") == {"data": "d", "type": "t"}


async def test_leave_room_tells_others_and_last_leave_destroys_session(sig: Harness) -> None:
    a, _ra = await sig.joined()
    b, rb = await sig.joined()
    await a.call("publishVideo", PUB)
    await b.call("leaveRoom")
    assert await a.next("participantLeft") == {"connectionId": rb["id"], "reason": "disconnect"}
    await a.call("leaveRoom")
    r = await sig.client.get("/openvidu/api/sessions/S1")
    assert r.status == 404
    assert sig.routers[0].closed
    names = sig.names()
    assert names[-3:] == ["webrtcConnectionDestroyed", "participantLeft", "sessionDestroyed"]


async def test_force_disconnect_order_and_roles(sig: Harness) -> None:
    m, _rm = await sig.joined(role="MODERATOR")
    a, _ra = await sig.joined()
    b, rb = await sig.joined()
    assert (await a.error("forceDisconnect", {"connectionId": rb["id"]}))["code"] == 401
    assert (await m.error("forceDisconnect", {"connectionId": "con_Nobody"}))["code"] == 102
    for p in (m, a):
        p.pending_methods()
    await b.call("publishVideo", PUB)
    await m.next("participantPublished")
    await a.next("participantPublished")
    await m.call("forceDisconnect", {"connectionId": rb["id"]})
    left = {"connectionId": rb["id"], "reason": "forceDisconnectByUser"}
    assert await a.next() == left
    assert await a.next() == left  # participantEvicted carries the same fields
    assert await b.next("participantEvicted") == left
    r = await sig.client.get(f"/openvidu/api/sessions/S1/connection/{rb['id']}")
    assert r.status == 404
    left_ev = [e.fields for e in sig.events if e.name == "participantLeft"]
    assert left_ev[-1]["reason"] == "forceDisconnectByUser"


async def test_force_unpublish_by_moderator(sig: Harness) -> None:
    m, _ = await sig.joined(role="MODERATOR")
    a, ra = await sig.joined()
    stream_id = (await a.call("publishVideo", PUB))["id"]
    assert (await a.error("forceUnpublish", {"streamId": stream_id}))["code"] == 401
    await m.call("forceUnpublish", {"streamId": stream_id})
    n = {"connectionId": ra["id"], "reason": "forceUnpublishByUser"}
    assert await a.next("participantUnpublished") == n
    assert await m.next("participantUnpublished") == n


async def test_rest_delete_connection_evicts_live_participant(sig: Harness) -> None:
    a, ra = await sig.joined()
    b, rb = await sig.joined()
    r = await sig.client.delete(f"/openvidu/api/sessions/S1/connection/{rb['id']}")
    assert r.status == 204
    left = {"connectionId": rb["id"], "reason": "forceDisconnectByServer"}
    assert await a.next("participantLeft") == left
    assert await b.next("participantEvicted") == left
    r = await sig.client.get("/openvidu/api/sessions/S1")
    assert [c["id"] for c in (await r.json())["connections"]["content"]] == [ra["id"]]


async def test_rest_delete_stream_force_unpublishes(sig: Harness) -> None:
    a, ra = await sig.joined()
    b, _ = await sig.joined()
    stream_id = (await a.call("publishVideo", PUB))["id"]
    r = await sig.client.delete(f"/openvidu/api/sessions/S1/stream/{stream_id}")
    assert r.status == 204
    n = {"connectionId": ra["id"], "reason": "forceUnpublishByServer"}
    assert await a.next("participantUnpublished") == n
    assert await b.next("participantUnpublished") == n
    r = await sig.client.delete(f"/openvidu/api/sessions/S1/stream/{stream_id}")
    assert r.status == 404


async def test_rest_delete_session_evicts_everyone(sig: Harness) -> None:
    a, _ra = await sig.joined()
    b, _rb = await sig.joined()
    r = await sig.client.delete("/openvidu/api/sessions/S1")
    assert r.status == 204
    assert (await a.next("participantEvicted"))["reason"] == "sessionClosedByServer"
    assert (await b.next("participantEvicted"))["reason"] == "sessionClosedByServer"
    assert sig.routers[0].closed


async def _drop(p: RpcPeer) -> None:
    await p.ws.close()
    await asyncio.wait_for(p.closed.wait(), WAIT)


async def test_dropped_socket_resumes_with_connect_and_gets_missed_frames(sig: Harness) -> None:
    a, _ra = await sig.joined()
    b, rb = await sig.joined()
    await _drop(b)
    await a.call("sendMessage", _msg([rb["id"]], "while-away"))
    b2 = await sig.peer()
    resp = await b2.call("connect", {"sessionId": rb["sessionId"], "reconnect": True})
    assert resp["value"] == "reconnection successful"
    assert (await b2.next("sendMessage"))["data"] == "while-away"
    # still the same participant: it can publish and the other side sees it
    await b2.call("publishVideo", PUB)
    assert (await a.next("participantPublished"))["id"] == rb["id"]


async def test_unresumed_socket_is_evicted_with_network_disconnect(sig: Harness) -> None:
    sig.signalling.reconnect_window_s = 0.3  # nobody resumes: let the window pass soon
    a, _ra = await sig.joined()
    b, rb = await sig.joined()
    await _drop(b)
    assert await a.next("participantLeft") == {
        "connectionId": rb["id"],
        "reason": "networkDisconnect",
    }
    b2 = await sig.peer()
    err = await b2.error("connect", {"sessionId": rb["sessionId"], "reconnect": True})
    assert err == {"code": 40007, "message": "reconnection error"}


async def test_resume_that_races_ahead_of_the_old_close_keeps_the_new_socket(
    sig: Harness,
) -> None:
    a, _ra = await sig.joined()
    b, rb = await sig.joined()
    b2 = await sig.peer()
    await b2.call("connect", {"sessionId": rb["sessionId"], "reconnect": True})
    await _drop(b)  # the old socket's close arrives after the resume
    await a.call("sendMessage", _msg([rb["id"]], "after"))
    assert (await b2.next("sendMessage"))["data"] == "after"
