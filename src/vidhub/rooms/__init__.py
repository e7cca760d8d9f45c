"""The room domain: live sessions on this node, their participants and media routers.

One layer between :mod:`vidhub.manager` and the edge (:mod:`vidhub.server`): a
:class:`Rooms` applies OpenVidu's participant rules, drives a :class:`MediaRouter` per
session and reaches each participant through a :class:`ParticipantSink` (the signalling
layer's RPC session implements it). It knows nothing of HTTP or WebSockets.
"""

from __future__ import annotations

from vidhub.rooms.media import MediaRouter, RouterFactory, sfu_router_factory
from vidhub.rooms.room import LiveParticipant, ParticipantSink, Room
from vidhub.rooms.rooms import SOCKET_CLOSE_DELAY_S, AfterReply, Rooms, token_id_of

__all__ = [
    "SOCKET_CLOSE_DELAY_S",
    "AfterReply",
    "LiveParticipant",
    "MediaRouter",
    "ParticipantSink",
    "Room",
    "Rooms",
    "RouterFactory",
    "sfu_router_factory",
    "token_id_of",
]
