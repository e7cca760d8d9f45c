"""JSON encode/decode in one place (orjson: several times faster than the stdlib)."""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["JSONDecodeError", "dumps", "dumps_bytes", "loads"]

JSONDecodeError = orjson.JSONDecodeError


def loads(data: bytes | str) -> Any:
    """Parse JSON text; raises :class:`JSONDecodeError` (a ``ValueError``)."""
    return orjson.loads(data)


def dumps_bytes(obj: Any) -> bytes:
    """Serialise to compact UTF-8 JSON bytes (key order preserved)."""
    return orjson.dumps(obj)


def dumps(obj: Any) -> str:
    """Serialise to a compact JSON ``str``."""
    return orjson.dumps(obj).decode()
