"""The ftrack expression language (eventhub.md §6): our own parser, compiled to a matcher.

Grammar (whitespace allowed between tokens)::

    expression := or_expr
    or_expr    := and_expr ( OR and_expr )*
    and_expr   := not_expr ( AND not_expr )*
    not_expr   := NOT not_expr | atom
    atom       := condition | "(" expression ")"
    condition  := FIELD OP VALUE
    FIELD      := [A-Za-z0-9_.]+
    OP         := != | >= | <= | = | > | <
    VALUE      := quoted string (quotes removed, escapes kept verbatim) | [A-Za-z0-9-_,./*@+]+

``and``/``or``/``not`` are case-insensitive keywords only in operator position and only on
word boundaries; elsewhere they are ordinary words (``topic=and`` is a condition).

Semantics mirror the Python client exactly (§6.2): the literal is always a string, a trailing
``*`` with ``=`` means containment (substring, list or dict-key membership), a missing key
is False even for ``!=``, ``and``/``or`` evaluate every child. Where the client raises while
matching (ordering a non-string, ``*`` on a number, ``=""``) :meth:`Expression.evaluate`
raises :class:`EvaluationError`; :meth:`Expression.matches` turns that into False, which is
the server's rule ("any exception means no match").

Parse failures raise :class:`ExpressionError` with the position and what was expected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vidhub.errors import BadRequest

__all__ = [
    "MAX_NESTING",
    "EvaluationError",
    "Expression",
    "ExpressionError",
    "compile_expression",
    "parse",
]

_FIELD_RE = re.compile(r"[A-Za-z0-9_.]+")
_BARE_RE = re.compile(r"[A-Za-z0-9\-_,./*@+]+")
# pyparsing's quotedString: no raw newline or lone backslash inside, doubled quotes and
# backslash escapes accepted, the escapes kept as written.
_QUOTED_RE = re.compile(
    r'"(?:[^"\n\r\\]|""|\\(?:[^x]|x[0-9a-fA-F]+))*"'
    r"|'(?:[^'\n\r\\]|''|\\(?:[^x]|x[0-9a-fA-F]+))*'",
    re.DOTALL,
)
_OP_RE = re.compile(r"!=|>=|<=|=|>|<")
_WS = " \t\n\r"
# pyparsing's default keyword identifier characters (word boundary test)
_IDENT = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")


class ExpressionError(BadRequest):
    """An expression does not parse; the message gives the position and the cause."""


class _TooDeep(ExpressionError):
    """Nesting beyond :data:`MAX_NESTING`: never backtracked over."""


class EvaluationError(Exception):
    """Matching raised where the Python client would (TypeError/IndexError in §6.3)."""


_Node = tuple[Any, ...]  # ("cond", parts, op, literal) | ("and"|"or", [nodes]) | ("not", node)


#: Deepest nesting of parentheses and ``not`` accepted (keeps parsing and matching iterative
#: enough for Python's stack whatever a client sends).
MAX_NESTING = 50


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise _TooDeep(f"expression nested deeper than {MAX_NESTING} levels")

    def fail(self, expected: str) -> ExpressionError:
        snippet = self.text[self.pos : self.pos + 20]
        found = repr(snippet) if snippet else "end of input"
        return ExpressionError(
            f"invalid expression at column {self.pos + 1}: expected {expected}, found {found}"
        )

    def skip(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        self.pos = pos

    def keyword(self, word: str) -> bool:
        """Consume the case-insensitive keyword at pos (after whitespace) if on boundaries."""
        self.skip()
        text, pos, n = self.text, self.pos, len(word)
        if text[pos : pos + n].lower() != word:
            return False
        if pos + n < len(text) and text[pos + n].upper() in _IDENT:
            return False
        if pos > 0 and text[pos - 1].upper() in _IDENT:
            return False
        self.pos = pos + n
        return True

    def parse(self) -> _Node:
        if not self.text.strip():
            raise ExpressionError("empty expression")
        node = self.or_expr()
        self.skip()
        if self.pos != len(self.text):
            raise self.fail("'and', 'or' or end of expression")
        return node

    def or_expr(self) -> _Node:
        children = [self.and_expr()]
        while True:
            save = self.pos
            if not self.keyword("or"):
                break
            try:
                children.append(self.and_expr())
            except _TooDeep:
                raise
            except ExpressionError:
                self.pos = save
                break
        return children[0] if len(children) == 1 else ("or", children)

    def and_expr(self) -> _Node:
        children = [self.not_expr()]
        while True:
            save = self.pos
            if not self.keyword("and"):
                break
            try:
                children.append(self.not_expr())
            except _TooDeep:
                raise
            except ExpressionError:
                self.pos = save
                break
        return children[0] if len(children) == 1 else ("and", children)

    def not_expr(self) -> _Node:
        save = self.pos
        if self.keyword("not"):
            self.enter()
            try:
                return ("not", self.not_expr())
            except _TooDeep:
                raise
            except ExpressionError:
                self.pos = save  # "not" may be a field name: not=1
            finally:
                self.depth -= 1
        return self.atom()

    def atom(self) -> _Node:
        self.skip()
        if self.text.startswith("(", self.pos):
            self.pos += 1
            self.enter()
            node = self.or_expr()
            self.depth -= 1
            self.skip()
            if not self.text.startswith(")", self.pos):
                raise self.fail("')'")
            self.pos += 1
            return node
        return self.condition()

    def match(self, regex: re.Pattern[str], expected: str) -> str:
        self.skip()
        m = regex.match(self.text, self.pos)
        if m is None:
            raise self.fail(expected)
        self.pos = m.end()
        return m.group()

    def condition(self) -> _Node:
        key = self.match(_FIELD_RE, "a field name or '('")
        op = self.match(_OP_RE, "an operator (= != < > <= >=)")
        self.skip()
        m = _QUOTED_RE.match(self.text, self.pos)
        if m is not None:
            self.pos = m.end()
            literal = m.group()[1:-1]
        else:
            literal = self.match(_BARE_RE, "a value")
        return ("cond", key, op, literal)


def parse(text: str) -> _Node:
    """Parse ``text`` into a syntax tree of nested tuples (see :class:`Expression`).

    Raises:
        ExpressionError: empty, whitespace-only or malformed input.
    """
    if not isinstance(text, str):
        raise ExpressionError("an expression must be a string")
    # as the client: surrounding (Unicode) whitespace goes, tabs expand (even inside quotes)
    return _Parser(text.strip().expandtabs()).parse()


_Matcher = Callable[[Mapping[str, Any]], bool]
_MISSING = object()


def _lookup(candidate: Any, parts: tuple[str, ...]) -> Any:
    value = candidate
    for part in parts:
        if not isinstance(value, Mapping):
            return _MISSING
        try:
            value = value[part]
        except (KeyError, TypeError):
            return _MISSING
    return value


def _compare(op: str, literal: str) -> Callable[[Any], bool]:
    if op == "=" and not literal:

        def empty(value: Any) -> bool:
            raise EvaluationError("'=' with an empty literal (IndexError in the client)")

        return empty
    if op == "=" and literal.endswith("*"):
        needle = literal[:-1]

        def contains(value: Any) -> bool:
            if isinstance(value, str | list | dict):
                return needle in value
            raise EvaluationError(f"'in' on {type(value).__name__} (TypeError in the client)")

        return contains
    if op == "=":
        return lambda value: isinstance(value, str) and value == literal
    if op == "!=":
        return lambda value: not isinstance(value, str) or value != literal

    def ordered(value: Any) -> bool:
        if not isinstance(value, str):
            raise EvaluationError(
                f"'{op}' between {type(value).__name__} and str (TypeError in the client)"
            )
        if op == ">":
            return value > literal
        if op == "<":
            return value < literal
        if op == ">=":
            return value >= literal
        return value <= literal

    return ordered


def _compile(node: _Node) -> _Matcher:
    kind = node[0]
    if kind == "cond":
        parts = tuple(node[1].split("."))
        test = _compare(node[2], node[3])
        if len(parts) == 1:
            key = parts[0]

            def cond1(candidate: Mapping[str, Any]) -> bool:
                try:
                    value = candidate[key]
                except (KeyError, TypeError):
                    return False
                return test(value)

            return cond1

        def cond(candidate: Mapping[str, Any]) -> bool:
            value = _lookup(candidate, parts)
            return False if value is _MISSING else test(value)

        return cond
    if kind == "not":
        inner = _compile(node[1])
        return lambda candidate: not inner(candidate)
    children = [_compile(child) for child in node[1]]
    if kind == "and":
        # eager, like the client: every child runs, so an error anywhere surfaces
        return lambda candidate: all([child(candidate) for child in children])
    return lambda candidate: any([child(candidate) for child in children])


def _required(node: _Node, field: str) -> frozenset[str] | None:
    """Exact string values one of which ``field`` must have to match, None if unconstrained."""
    kind = node[0]
    if kind == "cond":
        _, key, op, literal = node
        if key == field and op == "=" and literal and not literal.endswith("*"):
            return frozenset([literal])
        return None
    if kind == "and":
        found = [t for t in (_required(child, field) for child in node[1]) if t is not None]
        if not found:
            return None
        out = found[0]
        for t in found[1:]:
            out = out & t
        return out
    if kind == "or":
        sets = [_required(child, field) for child in node[1]]
        if any(t is None for t in sets):
            return None
        return frozenset().union(*[t for t in sets if t is not None])
    return None


@dataclass(frozen=True, slots=True, eq=False)
class Expression:
    """A parsed, compiled expression. Build with :func:`compile_expression`.

    Attributes:
        text: the source as given.
        topics: the exact event topics it can match (an index key), or None when it can
            match events of any topic.
        ids: the same for the ``id`` key (targets such as ``id=<hub id>``).
    """

    text: str
    topics: frozenset[str] | None
    ids: frozenset[str] | None
    _matcher: _Matcher

    def evaluate(self, candidate: Mapping[str, Any]) -> bool:
        """Match ``candidate`` exactly as the client does.

        Raises:
            EvaluationError: where the client's matcher would raise.
        """
        return self._matcher(candidate)

    def matches(self, candidate: Mapping[str, Any]) -> bool:
        """Match ``candidate``; an evaluation error counts as no match (the server rule)."""
        try:
            return self._matcher(candidate)
        except EvaluationError:
            return False


def compile_expression(text: str) -> Expression:
    """Parse and compile ``text`` once; match many times.

    Raises:
        ExpressionError: the text does not parse.
    """
    tree = parse(text)
    return Expression(text, _required(tree, "topic"), _required(tree, "id"), _compile(tree))
