"""Identifier formats (openvidu.md §1.2) and their randomness."""

from __future__ import annotations

import re
from collections import Counter

from vidhub import ids


def test_formats() -> None:
    assert re.fullmatch(r"ses_[A-Z][0-9A-Za-z]{9}", ids.session_id())
    assert re.fullmatch(r"con_[A-Z][0-9A-Za-z]{9}", ids.connection_id())
    assert re.fullmatch(r"tok_[A-Z][0-9A-Za-z]{15}", ids.token_id())
    assert re.fullmatch(
        r"str_CAM_[A-Z][0-9A-Za-z]{3}_con_x", ids.stream_id("CAMERA", True, "con_x")
    )
    assert ids.stream_id("SCREEN", True, "con_x").startswith("str_SCR_")
    assert ids.stream_id("CAMERA", False, "con_x").startswith("str_MIC_")


def test_tokens_do_not_repeat_and_use_the_whole_alphabet() -> None:
    tokens = {ids.token_id() for _ in range(5000)}
    assert len(tokens) == 5000
    counts = Counter(ch for t in tokens for ch in t[5:])
    assert len(counts) == 62
    # 75 000 draws over 62 symbols: each near 1210; a biased mapping would skew some by ~15 %
    assert min(counts.values()) > 1000 and max(counts.values()) < 1420


def test_the_connection_of_a_stream_is_parsed_in_one_place() -> None:
    from vidhub.ids import connection_of_stream
    from vidhub.protocol import openvidu_rpc as rpc

    cid = ids.connection_id()
    sid = ids.stream_id("CAMERA", True, cid)
    assert connection_of_stream(sid) == cid
    # openvidu-browser 2.x may prefix the sender with the subscriber's own connection id
    assert connection_of_stream(f"con_Other_{sid}") == cid
    assert connection_of_stream("no-connection-here") is None
    assert rpc.ReceiveVideoFromParams(sender=sid).publisher_connection_id == cid
    assert rpc.UnsubscribeParams(cid).publisher_connection_id == cid
