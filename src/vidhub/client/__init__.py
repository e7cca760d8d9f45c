"""The vidhub Python SDK: OpenVidu, EventHub, Websocket, Participant. Speaks only the wire."""

from vidhub.client.eventhub import EventHub as EventHub
from vidhub.client.eventhub_async import AsyncEventHub as AsyncEventHub
from vidhub.client.eventhub_types import Event as Event
from vidhub.client.openvidu import OpenVidu as OpenVidu
from vidhub.client.openvidu_async import AsyncOpenVidu as AsyncOpenVidu
from vidhub.client.openvidu_errors import (
    OpenViduConnectionDoesNotExistsError as OpenViduConnectionDoesNotExistsError,
)
from vidhub.client.openvidu_errors import OpenViduError as OpenViduError
from vidhub.client.openvidu_errors import (
    OpenViduSessionDoesNotExistsError as OpenViduSessionDoesNotExistsError,
)
from vidhub.client.openvidu_errors import OpenViduSessionExistsError as OpenViduSessionExistsError
from vidhub.client.openvidu_errors import (
    OpenViduStreamDoesNotExistsError as OpenViduStreamDoesNotExistsError,
)
from vidhub.client.participant import Participant as Participant
from vidhub.client.participant import ParticipantError as ParticipantError
from vidhub.client.participant import ParticipantEvent as ParticipantEvent
from vidhub.client.subscriptions import SubscriptionClosed as SubscriptionClosed
from vidhub.client.webhooks import WebhookSignatureError as WebhookSignatureError
from vidhub.client.webhooks import verify_webhook as verify_webhook
from vidhub.client.websocket import Websocket as Websocket
