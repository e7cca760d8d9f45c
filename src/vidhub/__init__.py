"""vidhub: a self-hosted video-session server and real-time event hub."""

from __future__ import annotations

__all__ = ["OPENVIDU_VERSION", "__version__"]

__version__ = "0.1.0"

#: The OpenVidu version we are wire-compatible with; reported by REST and joinRoom.
OPENVIDU_VERSION = "2.32.1"
