"""Publishing, subscribing, ICE buffering and what REST shows (fake media router)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.server.signalling.conftest import Harness, RpcPeer

PUB = {
    "sdpOffer": "offer",
    "hasAudio": True,
    "hasVideo": True,
    "doLoopback": False,
    "audioActive": True,
    "videoActive": True,
    "typeOfVideo": "CAMERA",
    "frameRate": 30,
    "videoDimensions": '{"width":640,"height":480}',
}


async def _publish(p: RpcPeer) -> dict[str, Any]:
    return await p.call("publishVideo", PUB)


async def test_publish_answers_and_announces_with_exact_stream_fields(sig: Harness) -> None:
    a, ra = await sig.joined()
    b, _ = await sig.joined()
    res = await _publish(a)
    stream_id = res["id"]
    assert stream_id.startswith("str_CAM_") and stream_id.endswith("_" + ra["id"])
    assert res["sdpAnswer"] == f"answer-for-{stream_id}"
    pub = await b.next("participantPublished")
    assert pub == {
        "id": ra["id"],
        "streams": [
            {
                "id": stream_id,
                "createdAt": res["createdAt"],
                "hasAudio": True,
                "hasVideo": True,
                "audioActive": True,
                "videoActive": True,
                "typeOfVideo": "CAMERA",
                "frameRate": 30,
                "videoDimensions": '{"width":640,"height":480}',
                "filter": {},
            }
        ],
    }
    # a later joiner gets the stream in value[]
    _c, rc = await sig.joined()
    assert rc["value"][0]["streams"][0]["id"] == stream_id
    assert isinstance(rc["value"][0]["streams"][0]["videoDimensions"], str)


async def test_rest_shows_publishers_and_subscribers_and_events_follow(sig: Harness) -> None:
    a, ra = await sig.joined()
    b, rb = await sig.joined()
    stream_id = (await _publish(a))["id"]
    sub = await b.call("receiveVideoFrom", {"sender": stream_id, "sdpOffer": "o"})
    assert sub["sdpAnswer"] == f"answer-for-{rb['id']}_{stream_id}"
    r = await sig.client.get(f"/openvidu/api/sessions/S1/connection/{ra['id']}")
    conn = await r.json()
    assert conn["publishers"][0]["streamId"] == stream_id
    assert conn["publishers"][0]["mediaOptions"]["videoDimensions"] == '{"width":640,"height":480}'
    r = await sig.client.get(f"/openvidu/api/sessions/S1/connection/{rb['id']}")
    assert [s["streamId"] for s in (await r.json())["subscribers"]] == [stream_id]
    created = [e.fields for e in sig.events if e.name == "webrtcConnectionCreated"]
    assert [c["connection"] for c in created] == ["OUTBOUND", "INBOUND"]
    assert created[1]["receivingFrom"] == ra["id"]

    await b.call("unsubscribeFromVideo", {"sender": ra["id"]})
    r = await sig.client.get(f"/openvidu/api/sessions/S1/connection/{rb['id']}")
    assert (await r.json())["subscribers"] == []
    destroyed = [e.fields for e in sig.events if e.name == "webrtcConnectionDestroyed"]
    assert destroyed[-1]["reason"] == "unsubscribe"


async def test_unpublish_tears_down_subscriptions_and_notifies(sig: Harness) -> None:
    a, ra = await sig.joined()
    b, rb = await sig.joined()
    stream_id = (await _publish(a))["id"]
    await b.call("receiveVideoFrom", {"sender": stream_id, "sdpOffer": "o"})
    await a.call("unpublishVideo")
    assert await b.next("participantUnpublished") == {
        "connectionId": ra["id"],
        "reason": "unpublish",
    }
    router = sig.routers[0]
    assert router.producers == set() and router.consumers == {}
    r = await sig.client.get(f"/openvidu/api/sessions/S1/connection/{rb['id']}")
    assert (await r.json())["subscribers"] == []
    err = await a.error("unpublishVideo")
    assert err["code"] == 105


async def test_publish_rules(sig: Harness) -> None:
    s, _ = await sig.joined(role="SUBSCRIBER")
    err = await s.error("publishVideo", PUB)
    assert err["code"] == 401
    a, _ = await sig.joined()
    await _publish(a)
    assert (await a.error("publishVideo", PUB))["code"] == 106
    b, _ = await sig.joined()
    assert (await b.error("publishVideo", dict(PUB, sdpOffer="bad")))["code"] == 302
    assert (await b.error("publishVideo", {"sdpOffer": "x"}))["code"] == -1


async def test_subscribe_errors(sig: Harness) -> None:
    _a, ra = await sig.joined()
    b, _ = await sig.joined()
    err = await b.error("receiveVideoFrom", {"sender": "str_CAM_XXXX_con_Nobody", "sdpOffer": "o"})
    assert err["code"] == 102
    err = await b.error("receiveVideoFrom", {"sender": f"str_CAM_XXXX_{ra['id']}", "sdpOffer": "o"})
    assert err["code"] == 105


async def test_ice_candidates_before_publish_are_buffered_then_applied(sig: Harness) -> None:
    a, ra = await sig.joined()
    cand = {
        "endpointName": ra["id"],
        "candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    await a.call("onIceCandidate", cand)
    await a.call("onIceCandidate", dict(cand, candidate=""))
    router = sig.routers[0]
    assert router.candidates == []
    stream_id = (await _publish(a))["id"]
    assert router.candidates == [(stream_id, cand["candidate"])]
    await a.call("onIceCandidate", dict(cand, sdpMid=None, sdpMLineIndex=None))
    assert len(router.candidates) == 2


async def test_stream_property_changed_is_stored_and_relayed(sig: Harness) -> None:
    a, ra = await sig.joined()
    b, _ = await sig.joined()
    stream_id = (await _publish(a))["id"]
    await a.call(
        "streamPropertyChanged",
        {
            "streamId": stream_id,
            "property": "videoActive",
            "newValue": False,
            "reason": "publishVideo",
        },
    )
    n = await b.next("streamPropertyChanged")
    assert n == {
        "connectionId": ra["id"],
        "streamId": stream_id,
        "property": "videoActive",
        "newValue": "false",
        "reason": "publishVideo",
    }
    r = await sig.client.get(f"/openvidu/api/sessions/S1/connection/{ra['id']}")
    assert (await r.json())["publishers"][0]["mediaOptions"]["videoActive"] is False
    dims = '{"width":320,"height":240}'
    await a.call(
        "streamPropertyChanged",
        {
            "streamId": stream_id,
            "property": "videoDimensions",
            "newValue": dims,
            "reason": "screenResized",
        },
    )
    n = await b.next("streamPropertyChanged")
    assert n["newValue"] == '"{\\"width\\":320,\\"height\\":240}"'


async def test_media_endpoint_failure_is_reported_to_its_owner(sig: Harness) -> None:
    a, _ = await sig.joined()
    stream_id = (await _publish(a))["id"]
    callback = sig.routers[0].on_endpoint_failed
    assert callback is not None
    callback(stream_id)
    assert "failed" in (await a.next("mediaError"))["error"]


async def test_router_rejections_are_media_sdp_errors(sig: Harness) -> None:
    from vidhub.errors import BadRequest

    a, _ = await sig.joined()

    async def reject(producer_id: str, offer_sdp: str) -> str:
        raise BadRequest("SDP offer has no audio or video")

    sig.routers[0].publish = reject  # type: ignore[method-assign]
    err = await a.error("publishVideo", PUB)
    assert err["code"] == 302
    assert "no audio or video" in err["message"]


async def test_eviction_during_publish_negotiation_leaks_no_producer(sig: Harness) -> None:
    _keep, _ = await sig.joined()
    a, ra = await sig.joined()
    router = sig.routers[0]
    router.gate = asyncio.Event()
    pending = asyncio.ensure_future(a.raw("publishVideo", PUB))
    await router.entered.wait()
    r = await sig.client.delete(f"/openvidu/api/sessions/S1/connection/{ra['id']}")
    assert r.status == 204
    router.gate.set()
    assert (await pending)["error"]["code"] == 803
    assert router.producers == set()


async def test_unpublish_during_subscribe_negotiation_answers_105(sig: Harness) -> None:
    a, _ra = await sig.joined()
    b, _ = await sig.joined()
    stream_id = (await _publish(a))["id"]
    router = sig.routers[0]
    router.entered.clear()
    router.gate = asyncio.Event()
    pending = asyncio.ensure_future(
        b.raw("receiveVideoFrom", {"sender": stream_id, "sdpOffer": "o"})
    )
    await router.entered.wait()
    await a.call("unpublishVideo")
    router.gate.set()
    assert (await pending)["error"]["code"] == 105
    assert router.consumers == {}


async def test_a_lost_media_router_ends_every_stream_with_media_server_disconnect(
    sig: Harness,
) -> None:
    """A media worker crashed: OpenVidu's mediaServerDisconnect for every stream, then the
    session gets a fresh router and the clients can publish again."""
    a, ra = await sig.joined()
    b, rb = await sig.joined()
    sa = (await _publish(a))["id"]
    sb = (await _publish(b))["id"]
    await a.call("receiveVideoFrom", {"sender": sb, "sdpOffer": "o"})
    await b.call("receiveVideoFrom", {"sender": sa, "sdpOffer": "o"})
    lost = sig.routers[0]
    assert lost.on_closed is not None
    lost.on_closed("mediaServerDisconnect")

    for peer in (a, b):
        assert "mediaServerDisconnect" in (await peer.next("mediaError"))["error"]
        gone = [await peer.next("participantUnpublished") for _ in range(2)]
        # the owner hears of its own stream too: openvidu-browser ends its Publisher
        assert sorted(g["connectionId"] for g in gone) == sorted([ra["id"], rb["id"]])
        assert {g["reason"] for g in gone} == {"mediaServerDisconnect"}
    destroyed = [e.fields for e in sig.events if e.name == "webrtcConnectionDestroyed"]
    assert len(destroyed) == 4
    assert {d["reason"] for d in destroyed} == {"mediaServerDisconnect"}
    assert sorted(d["connection"] for d in destroyed) == ["INBOUND"] * 2 + ["OUTBOUND"] * 2
    for cid in (ra["id"], rb["id"]):
        r = await sig.client.get(f"/openvidu/api/sessions/S1/connection/{cid}")
        conn = await r.json()
        assert conn["publishers"] == [] and conn["subscribers"] == []
    assert lost.closed

    # the session carries on with a new router: publishing again works
    again = (await _publish(a))["id"]
    assert len(sig.routers) == 2 and again in sig.routers[1].producers
    assert (await b.next("participantPublished"))["id"] == ra["id"]
    await b.call("receiveVideoFrom", {"sender": again, "sdpOffer": "o"})
    lost.on_closed("mediaServerDisconnect")  # a late second report of the old router: ignored
    assert len(sig.routers) == 2
