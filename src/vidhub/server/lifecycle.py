"""Lifecycle events into the event hub: every :class:`ServerEvent` becomes a hub event.

Topic scheme (documented in README.md, "Events and webhooks"):

====================================  ==============================
topic                                 OpenVidu event (``data.event``)
====================================  ==============================
``vidhub.session.created``            ``sessionCreated``
``vidhub.session.destroyed``          ``sessionDestroyed``
``vidhub.participant.joined``         ``participantJoined``
``vidhub.participant.left``           ``participantLeft``
``vidhub.webrtc.created``             ``webrtcConnectionCreated``
``vidhub.webrtc.destroyed``           ``webrtcConnectionDestroyed``
``vidhub.signal.sent``                ``signalSent``
``vidhub.recording.status_changed``   ``recordingStatusChanged``
``vidhub.filter.dispatched``          ``filterEventDispatched``
====================================  ==============================

``data`` is exactly the OpenVidu webhook body: the event's fields (``sessionId``,
``uniqueSessionId``, ``timestamp``, ...) followed by ``"event": <OpenVidu name>``, so a hub
subscription such as ``topic=vidhub.* and data.sessionId=abc`` sees everything about one
session. An event name outside the table (a future one) is published as
``vidhub.event.<name>``.

Publishing goes through the :class:`~vidhub.core.events.ServerEventPublisher` stored under
``HUB``; while no hub is mounted the events are simply not published.
"""

from __future__ import annotations

from types import MappingProxyType

from aiohttp import web

from vidhub.core.events import ServerEvent
from vidhub.server.keys import EVENTS, HUB

__all__ = ["TOPICS", "setup_lifecycle", "topic_for"]

#: OpenVidu event name -> hub topic.
TOPICS = MappingProxyType(
    {
        "sessionCreated": "vidhub.session.created",
        "sessionDestroyed": "vidhub.session.destroyed",
        "participantJoined": "vidhub.participant.joined",
        "participantLeft": "vidhub.participant.left",
        "webrtcConnectionCreated": "vidhub.webrtc.created",
        "webrtcConnectionDestroyed": "vidhub.webrtc.destroyed",
        "signalSent": "vidhub.signal.sent",
        "recordingStatusChanged": "vidhub.recording.status_changed",
        "filterEventDispatched": "vidhub.filter.dispatched",
    }
)


def topic_for(event_name: str) -> str:
    """The hub topic of an OpenVidu event name (see the module docstring)."""
    return TOPICS.get(event_name) or f"vidhub.event.{event_name}"


def setup_lifecycle(app: web.Application) -> None:
    """Publish every lifecycle event on ``app[EVENTS]`` to ``app[HUB]`` when a hub is mounted.

    The hub is looked up per event, so the order in which features are set up does not matter.
    A failing publish is logged by the :class:`~vidhub.core.events.EventBus` and never reaches
    the request that caused the event.
    """

    async def publish(event: ServerEvent) -> None:
        if HUB not in app:
            return
        await app[HUB].publish_server_event(topic_for(event.name), event.to_webhook_json())

    app[EVENTS].subscribe(publish)
