"""Locating third-party peers for conformance tests; in CI a missing peer fails, never skips."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import NoReturn

import pytest

__all__ = ["NODE_MODULES", "node_client_or_skip", "unavailable"]

NODE_MODULES = Path(__file__).resolve().parents[1] / "peers" / "node_modules"


def unavailable(why: str) -> NoReturn:
    """Skip locally; fail under ``CI=true``, where every peer must be installed.

    Works at import time too (the whole module is then skipped or failed).
    """
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"conformance peer missing in CI: {why}", pytrace=False)
    pytest.skip(why, allow_module_level=True)


def node_client_or_skip() -> str:
    """The ``node`` executable, with openvidu-node-client installed under tests/peers."""
    node = shutil.which("node")
    if node is None:
        unavailable("node is not installed (make test-deps)")
    if not (NODE_MODULES / "openvidu-node-client" / "package.json").exists():
        unavailable("openvidu-node-client is not installed (make test-deps)")
    return node
