"""Event hub: expression subscriptions and delivery (ftrack event server protocol).

:class:`Hub` routes ftrack events between sessions (eventhub.md §5); the HTTP/WebSocket
edge lives in ``vidhub.server.eventhub`` and only hands it decoded packets and outboxes.
"""

from vidhub.hub.bridge import HubBridge
from vidhub.hub.hub import RESERVED_TOPICS, AckResult, Hub, HubLimits
from vidhub.hub.session import HubSession, Outbox

__all__ = [
    "RESERVED_TOPICS",
    "AckResult",
    "Hub",
    "HubBridge",
    "HubLimits",
    "HubSession",
    "Outbox",
]
