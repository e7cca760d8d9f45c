"""What the SDK's blocking and asyncio transports share when they turn an operation of a
sans-I/O core into a public method."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["named_after"]

F = TypeVar("F", bound=Callable[..., Any])


def named_after(op: Callable[..., Any], method: F) -> F:
    """``method``, a transport's public wrapper of the operation ``op``, with ``op``'s docs,
    signature (``inspect.signature`` follows ``__wrapped__``) and name less its underscore."""
    functools.update_wrapper(method, op)
    method.__name__ = op.__name__.lstrip("_")
    method.__qualname__ = op.__qualname__.replace("._", ".", 1)
    return method
