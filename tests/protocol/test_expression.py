"""The expression language: the §6.3 conformance table, row by row, plus parse errors."""

from __future__ import annotations

from typing import Any

import pytest

from vidhub.protocol.expression import (
    MAX_NESTING,
    EvaluationError,
    ExpressionError,
    compile_expression,
)

E: dict[str, Any] = {
    "id": "e1",
    "topic": "ftrack.update",
    "sent": None,
    "target": "",
    "in_reply_to_event": "E1",
    "source": {
        "id": "abc",
        "user": {"username": "john@x.com"},
        "applicationId": "ftrack.client.web",
    },
    "data": {
        "count": 5,
        "s5": "5",
        "name": "shot010",
        "tags": ["a", "b"],
        "nested": {"k": "v"},
        "flag": True,
        "none": None,
        "spaced": "hello world",
        "q": 'say "hi"',
        "n": "-1",
        "x": "or",
    },
}
RAISES = "raises"
PARSE = "parse error"

TABLE: list[tuple[int, str, object]] = [
    (1, "topic=ftrack.update", True),
    (2, "topic = ftrack.update", True),
    (3, "TOPIC=ftrack.update", False),
    (4, "topic=FTRACK.UPDATE", False),
    (5, "topic=ftrack.*", True),
    (6, "topic=update*", True),
    (7, "topic=*update", False),
    (8, "topic=*", True),
    (9, 'topic="ftrack.update"', True),
    (9, "topic='ftrack.update'", True),
    (10, "data.count=5", False),
    (11, "data.count!=5", True),
    (12, "data.count>4", RAISES),
    (13, "data.count=5*", RAISES),
    (14, "data.s5>=5", True),
    (14, "data.s5<6", True),
    (15, "data.s5>10", True),
    (16, "data.n>-2", False),
    (17, "data.name=hot*", True),
    (18, "data.missing=x", False),
    (19, "data.missing!=x", False),
    (20, "not data.missing=x", True),
    (21, "data.nested.k=v", True),
    (22, "data.nested=v", False),
    (23, "data.name.x=1", False),
    (24, "data.tags=a*", True),
    (25, "data.tags=a", False),
    (26, "data.tags.0=a", False),
    (27, "data.flag=True", False),
    (27, "data.flag=true", False),
    (28, "data.none=x", False),
    (29, "data.none=x*", RAISES),
    (30, 'data.spaced="hello world"', True),
    (31, "data.spaced=hello world", PARSE),
    (32, 'data.q="say \\"hi\\""', False),
    (33, "source.user.username=john@x.com", True),
    (34, "topic=ftrack.update and data.name=shot010", True),
    (35, "topic=ftrack.update AND data.name=x", False),
    (36, "topic=x OR topic=y", False),
    (37, "NOT topic=ftrack.update", False),
    (38, "not not topic=ftrack.update", True),
    (39, "topic=a or topic=ftrack.update and data.name=x", False),
    (40, "(topic=a or topic=ftrack.update) and data.name=x", False),
    (41, "topic=a and topic=b or topic=ftrack.update", True),
    (42, "topic=ftrack.update and not (data.name=x or data.name=y)", True),
    (43, "in_reply_to_event=E1", True),
    (44, "inReplyToEvent=E1", False),
    (45, 'data.x=""', RAISES),
    (46, "topic=a andtopic=b", PARSE),
]


@pytest.mark.parametrize(("row", "text", "expected"), TABLE, ids=[f"{r}:{t}" for r, t, _ in TABLE])
def test_conformance_table(row: int, text: str, expected: object) -> None:
    if expected == PARSE:
        with pytest.raises(ExpressionError):
            compile_expression(text)
        return
    expr = compile_expression(text)
    if expected == RAISES:
        with pytest.raises(EvaluationError):
            expr.evaluate(E)
        assert expr.matches(E) is False  # the server's rule
    else:
        assert expr.evaluate(E) is expected
        assert expr.matches(E) is expected


def test_row_47_keywords_as_values() -> None:
    expr = compile_expression("topic=and and(data.x=or)")
    assert expr.evaluate({"topic": "and", "data": {"x": "or"}}) is True


def test_row_48_targets_match_metadata() -> None:
    assert compile_expression("id=abc").evaluate({"id": "abc", "applicationId": "x"}) is True


def test_eager_evaluation_surfaces_errors_in_any_branch() -> None:
    expr = compile_expression("topic=ftrack.update or data.count>1")
    with pytest.raises(EvaluationError):
        expr.evaluate(E)
    assert expr.matches(E) is False


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "topic",
        "topic==x",
        "topic=a:b",
        "x=a b",
        "a=1 and",
        "a=1 nor b=2",
        "data.key-with-dash=1",
        "id=",
        "a=1)",
        "a=b=c",
        "(a=1",
        "data.x=vé",
    ],
)
def test_parse_errors_have_a_clear_message(text: str) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    assert "expression" in info.value.message


def test_keywords_need_boundaries_and_can_be_fields() -> None:
    assert compile_expression("nottopic=x").evaluate({"nottopic": "x"}) is True
    assert compile_expression("not=1").evaluate({"not": "1"}) is True
    assert compile_expression("a=1\tAnD\nb=2").evaluate({"a": "1", "b": "2"}) is True


@pytest.mark.parametrize(
    ("text", "topics", "ids"),
    [
        ("topic=a", {"a"}, None),
        ("topic=a and data.x=1", {"a"}, None),
        ("topic=a or topic=b", {"a", "b"}, None),
        ("topic=a or data.x=1", None, None),
        ("topic=a*", None, None),
        ("not topic=a", None, None),
        ("topic!=a", None, None),
        ("id=h1", None, {"h1"}),
        ("id=h1 and applicationId=x", None, {"h1"}),
    ],
)
def test_index_keys(text: str, topics: set[str] | None, ids: set[str] | None) -> None:
    expr = compile_expression(text)
    assert expr.topics == (frozenset(topics) if topics is not None else None)
    assert expr.ids == (frozenset(ids) if ids is not None else None)


@pytest.mark.parametrize(
    "text",
    [
        "(" * 5000 + "a=1" + ")" * 5000,
        "not " * 5000 + "a=1",
        "a=1 and " + "(not " * 3000 + "b=2" + ")" * 3000,
    ],
)
def test_deep_nesting_is_a_parse_error_not_a_crash(text: str) -> None:
    with pytest.raises(ExpressionError, match="nested deeper"):
        compile_expression(text)


def test_nesting_up_to_the_limit_works() -> None:
    text = "(" * MAX_NESTING + "a=1" + ")" * MAX_NESTING
    assert compile_expression(text).evaluate({"a": "1"}) is True
    nots = MAX_NESTING - 1
    expected = nots % 2 == 0  # each "not" inverts the True of a=1
    assert compile_expression("not " * nots + "a=1").evaluate({"a": "1"}) is expected
