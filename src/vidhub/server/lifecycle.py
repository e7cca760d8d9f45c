"""Lifecycle events into the event hub: every :class:`~vidhub.core.events.LifecycleEvent` becomes
a hub event.

Topic scheme (documented in README.md, "Events and webhooks"):

each OpenVidu event has one topic, defined with the event names in
:data:`vidhub.protocol.openvidu_events.HUB_TOPICS` (``sessionCreated`` is
``vidhub.session.created``, ``webrtcConnectionDestroyed`` is ``vidhub.webrtc.destroyed``, ...).

``data`` is exactly the OpenVidu webhook body: the event's fields (``sessionId``,
``uniqueSessionId``, ``timestamp``, ...) followed by ``"event": <OpenVidu name>``, so a hub
subscription such as ``topic=vidhub.* and data.sessionId=abc`` sees everything about one
session. An event name outside the table (a future one) is published as
``vidhub.event.<name>``.

Publishing goes through the :class:`~vidhub.core.events.ServerEventPublisher` stored under
``HUB``; while no hub is mounted the events are simply not published.
"""

from __future__ import annotations

from aiohttp import web

from vidhub.core.events import LifecycleEvent
from vidhub.protocol.openvidu_events import HUB_TOPICS, hub_topic
from vidhub.server.keys import EVENTS, HUB

__all__ = ["TOPICS", "setup_lifecycle", "topic_for"]

#: OpenVidu event name -> hub topic.
TOPICS = HUB_TOPICS
topic_for = hub_topic


def setup_lifecycle(app: web.Application) -> None:
    """Publish every lifecycle event on ``app[EVENTS]`` to ``app[HUB]`` when a hub is mounted.

    The hub is looked up per event, so the order in which features are set up does not matter.
    A failing publish is logged by the :class:`~vidhub.core.events.EventBus` and never reaches
    the request that caused the event.
    """

    async def publish(event: LifecycleEvent) -> None:
        if HUB not in app:
            return
        await app[HUB].publish_server_event(hub_topic(event.name), event.to_webhook_json())

    app[EVENTS].subscribe(publish)
