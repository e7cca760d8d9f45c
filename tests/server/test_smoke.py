from __future__ import annotations

from typing import Any


async def test_health_and_session_roundtrip(client: Any) -> None:
    r = await client.get("/health")
    assert r.status == 200
    r = await client.post("/openvidu/api/sessions", json={"customSessionId": "s1"})
    assert r.status == 200
    body = await r.json()
    assert body["id"] == body["sessionId"] == "s1"
