"""Event hub: expression subscriptions and delivery (ftrack event server protocol)."""

from vidhub.hub.hub import RESERVED_TOPICS as RESERVED_TOPICS
from vidhub.hub.hub import AckResult as AckResult
from vidhub.hub.hub import Hub as Hub
from vidhub.hub.hub import HubLimits as HubLimits
from vidhub.hub.session import HubSession as HubSession
from vidhub.hub.session import Outbox as Outbox
