"""Bounded hypothesis runs over the event hub parsers: round trips, documented errors only,
and the expression parser checked against ftrack_api's own (pyparsing) as an oracle."""

from __future__ import annotations

import contextlib
import string
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import examples
from vidhub.hub import Hub
from vidhub.protocol.expression import EvaluationError, ExpressionError, compile_expression
from vidhub.protocol.ftrack_event import EventError, event_from_wire, event_to_wire
from vidhub.protocol.socketio09 import (
    Code,
    Packet,
    PacketError,
    SocketIoProtocol,
    decode,
    encode,
)

ftrack_expression = pytest.importorskip("ftrack_api.event.expression")

FAST = settings(max_examples=examples(200))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def packets(draw: st.DrawFn) -> Packet:
    pid = draw(st.none() | st.integers(0, 10**12))
    return Packet(
        code=draw(st.sampled_from(list(Code))),
        id=pid,
        ack_with_data=pid is not None and draw(st.booleans()),
        endpoint=draw(st.text(alphabet=string.ascii_letters + "/", max_size=5)),
        data=draw(st.none() | st.text(max_size=30)),
    )


@FAST
@given(packets())
def test_packet_round_trip(pkt: Packet) -> None:
    assert decode(encode(pkt)) == pkt


@FAST
@given(st.text(max_size=40) | st.sampled_from(["5:1+::", "6:::1+", "2:", "5:::{"]))
def test_arbitrary_frames_raise_only_packet_error(frame: str) -> None:
    for proto in (SocketIoProtocol(client=True), SocketIoProtocol(client=False)):
        with contextlib.suppress(PacketError):
            proto.receive_text(frame)


@FAST
@given(json_values)
def test_envelope_parse_raises_only_event_error(obj: Any) -> None:
    try:
        event = event_from_wire(obj)
    except EventError:
        return
    assert event_from_wire(event_to_wire(event)) == event


@FAST
@given(st.lists(json_values, max_size=2))
def test_hub_handle_never_raises(args: list[Any]) -> None:
    class Box:
        def send(self, frame: str) -> bool:
            return True

        def close(self, reason: str) -> None:
            pass

    hub = Hub()
    session = hub.open("s", "u", Box())
    hub.handle(
        session,
        [
            {
                "topic": "ftrack.meta.subscribe",
                "data": {"subscriber": {"id": "all"}, "subscription": "topic=*"},
            }
        ],
    )
    result = hub.handle(session, args)
    assert isinstance(result.success, bool)


# ------------------------------------------------------------------ expressions

FIELDS = st.sampled_from(["topic", "data.a", "data.b", "data.n", "data.l", "data.d.k", "id", "x"])
OPS = st.sampled_from(["=", "!=", "<", ">", "<=", ">="])
VALUES = st.sampled_from(
    ["a", "b", "a*", "*", "1", "10", "-1", "and", "or", "not", '""', '"a b"', "'q'", "x.y"]
)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(
        st.sampled_from(["cond", "cond", "and", "or", "not", "group"] if depth < 3 else ["cond"])
    )
    if kind == "cond":
        sp = draw(st.sampled_from(["", " "]))
        return f"{draw(FIELDS)}{sp}{draw(OPS)}{sp}{draw(VALUES)}"
    if kind == "not":
        return f"{draw(st.sampled_from(['not', 'NOT', 'Not']))} {draw(expressions(depth + 1))}"
    if kind == "group":
        return f"({draw(expressions(depth + 1))})"
    word = draw(st.sampled_from([kind, kind.upper()]))
    return f"{draw(expressions(depth + 1))} {word} {draw(expressions(depth + 1))}"


CANDIDATES = [
    {"topic": "a", "id": "1", "data": {"a": "a", "b": 1, "n": "10", "l": ["a"], "d": {"k": "b"}}},
    {"topic": "and", "id": "x", "data": {"a": None, "b": "a b", "n": True, "l": [], "d": "s"}},
    {"topic": "x.y", "x": {"y": 1}, "data": {"a": "q", "b": "*", "d": {"k": "a*"}}},
]


def oracle(text: str, candidate: dict[str, Any]) -> str:
    try:
        parsed = ftrack_expression.Parser().parse(text)
    except Exception:
        return "parse error"
    try:
        return str(parsed.match(candidate))
    except Exception:
        return "raises"


def ours(text: str, candidate: dict[str, Any]) -> str:
    try:
        expr = compile_expression(text)
    except ExpressionError:
        return "parse error"
    try:
        return str(expr.evaluate(candidate))
    except EvaluationError:
        return "raises"


@FAST
@given(expressions(), st.sampled_from(CANDIDATES))
def test_expressions_agree_with_ftrack_api(text: str, candidate: dict[str, Any]) -> None:
    assert ours(text, candidate) == oracle(text, candidate)


@FAST
@given(st.text(alphabet=string.printable + "é", max_size=25))
def test_arbitrary_text_parses_like_ftrack_api(text: str) -> None:
    assert (ours(text, CANDIDATES[0]) == "parse error") == (
        oracle(text, CANDIDATES[0]) == "parse error"
    )


# ------------------------------------------------------------------ routing vs brute force

TOPICS = ["a", "b", "a.b", "x"]
ROUTE_EXPRS = st.sampled_from(
    [
        "topic=a",
        "topic=b",
        "topic=a.b",
        "topic=a or topic=b",
        "topic=a and data.k=1",
        "topic=a*",
        "not topic=a",
        "data.k=1",
        "topic=x or data.k=2",
        "topic=a and topic=b",
        "(topic=a or topic=x) and not data.k=2",
        "data.k>1",
    ]
)
TARGETS = st.sampled_from(
    ["", "id=s0", "id=s1", "app=web", "id=s0 or app=web", "id=s2 and app=web"]
)


class _Box:
    def __init__(self) -> None:
        self.frames: list[str] = []

    def send(self, frame: str) -> bool:
        self.frames.append(frame)
        return True

    def close(self, reason: str) -> None:
        pass


@FAST
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 3), ROUTE_EXPRS, st.booleans()),
        max_size=12,
    ),
    st.lists(
        st.tuples(st.sampled_from(TOPICS), st.sampled_from(["1", "2", 3]), TARGETS),
        min_size=1,
        max_size=6,
    ),
)
def test_indexed_routing_equals_brute_force(
    subs: list[tuple[int, int, str, bool]], events: list[tuple[str, Any, str]]
) -> None:
    hub = Hub()
    boxes = [_Box() for _ in range(4)]
    sessions = [hub.open(f"c{i}", "u", box) for i, box in enumerate(boxes)]
    registry: dict[tuple[int, str], tuple[dict[str, Any], str]] = {}
    for conn, sid, expr, web in subs:
        meta = {"id": f"s{sid}", **({"app": "web"} if web else {})}
        wire = {
            "topic": "ftrack.meta.subscribe",
            "data": {"subscriber": meta, "subscription": expr},
        }
        assert hub.handle(sessions[conn], [wire]).success
        registry[(conn, f"s{sid}")] = (meta, expr)  # same id on a socket replaces
    for n, (topic, k, target) in enumerate(events):
        before = [len(b.frames) for b in boxes]
        event = {"id": f"e{n}", "topic": topic, "data": {"k": k}, "target": target}
        assert hub.handle(sessions[0], [event]).success
        candidate = {**event, "sent": None, "source": {}, "in_reply_to_event": None}
        for conn, box in enumerate(boxes):
            expected = any(
                (not target or compile_expression(target).matches(meta))
                and compile_expression(expr).matches(candidate)
                for (c, _), (meta, expr) in registry.items()
                if c == conn
            )
            assert len(box.frames) - before[conn] == (1 if expected else 0), (conn, event)
