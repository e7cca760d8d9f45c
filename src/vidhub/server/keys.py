"""Typed application keys: all app state lives behind these."""

from __future__ import annotations

from aiohttp import web

from vidhub.clock import Clock
from vidhub.config import Config
from vidhub.core.events import EventBus, ServerEventPublisher
from vidhub.manager import SessionManager
from vidhub.recording.service import RecordingService

__all__ = ["CLOCK", "CONFIG", "EVENTS", "HUB", "MANAGER", "READY", "RECORDINGS"]

CONFIG = web.AppKey("config", Config)
MANAGER = web.AppKey("manager", SessionManager)
EVENTS = web.AppKey("events", EventBus)
READY = web.AppKey("ready", dict)
#: The one clock of the app (``make_app``'s), for every feature that tells time.
CLOCK = web.AppKey("clock", Clock)
#: The event hub, once ``server.eventhub`` has set it up.
HUB = web.AppKey("hub", ServerEventPublisher)
#: The recording service, only when ``OPENVIDU_RECORDING=true``.
RECORDINGS = web.AppKey("recordings", RecordingService)
