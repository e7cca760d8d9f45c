"""Logging set-up and a redaction filter so secrets and tokens never reach a log line."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactingFilter", "configure", "get_logger"]

_TOKEN_RE = re.compile(r"tok_[A-Za-z0-9]{6,}")
_BASIC_RE = re.compile(r"(?i)(basic\s+)[A-Za-z0-9+/=]+")


class RedactingFilter(logging.Filter):
    """Masks token ids, Basic credentials and configured secrets in every record."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        super().__init__()
        self._secrets = [s for s in (secrets or []) if s]

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        red = _TOKEN_RE.sub("tok_***", msg)
        red = _BASIC_RE.sub(r"\1***", red)
        for s in self._secrets:
            red = red.replace(s, "***")
        if red != msg:
            record.msg = red
            record.args = None
        return True


def configure(level: str = "info", secrets: list[str] | None = None) -> None:
    """Configure the root logger once, with redaction on every handler."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def get_logger(name: str) -> logging.Logger:
    """A module logger under the ``vidhub`` namespace."""
    return logging.getLogger(name)
