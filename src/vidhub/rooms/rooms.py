"""The rooms of this node, and the operations participants perform on them.

:class:`Rooms` is the room domain, one layer above the session ledger and below the edge:
each RPC handler of the signalling layer calls one method here, which applies OpenVidu's
rules (openvidu.md §3.4), drives the media router, keeps the records right through the
:class:`~vidhub.manager.SessionLedger`, and sends the notifications in OpenVidu's order
through each participant's :class:`~vidhub.rooms.room.ParticipantSink`. It also implements
:class:`vidhub.core.live.LiveGateway`, so REST signals, evictions and force-unpublish reach
live participants. Nothing here knows HTTP or WebSockets.

Leaving has one path, :meth:`Rooms._depart`, whatever the cause: a voluntary ``leaveRoom``,
a dropped socket that never came back (``networkDisconnect``), a moderator's
``forceDisconnect`` or an eviction (REST or session close). It is safe to run twice or after
another cause already removed the participant.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

from vidhub import ids
from vidhub.core.models import MediaOptions, Publisher
from vidhub.errors import SessionNotFound, TokenInvalid
from vidhub.ids import ConnectionId, SessionId
from vidhub.manager import SessionLedger
from vidhub.protocol import openvidu_rpc as rpc
from vidhub.protocol.openvidu_rest import SignalRequest, render_ice_server
from vidhub.rooms.media import MediaRouter, RouterFactory
from vidhub.rooms.room import LiveParticipant, ParticipantSink, Room

__all__ = ["SOCKET_CLOSE_DELAY_S", "AfterReply", "Rooms", "token_id_of"]

log = logging.getLogger(__name__)

#: Work to do once the caller's response has been sent (OpenVidu's notification order).
AfterReply = Callable[[], Awaitable[None]]

#: How long after a leave or eviction the server closes the socket itself (CE: 10 s).
SOCKET_CLOSE_DELAY_S = 10.0
#: Trickled candidates kept per participant before their endpoint exists.
MAX_ICE_ENDPOINTS = 32
MAX_ICE_PER_ENDPOINT = 64


def token_id_of(token: str) -> str:
    """The ``tok_`` part of a token string (the whole token URL or the bare id)."""
    if token.startswith("tok_"):
        return token
    values = parse_qs(urlsplit(token).query).get("token")
    return values[0] if values else token


class Rooms:
    """Live rooms by session id; the LiveGateway of the SessionManager.

    Args:
        ledger: the session records (joins, leaves and media bookkeeping go there).
        router_factory: builds each session's media router (chosen by the composition root).
    """

    def __init__(self, ledger: SessionLedger, router_factory: RouterFactory) -> None:
        self.ledger = ledger
        self._router_factory = router_factory
        self._rooms: dict[str, Room] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: (session id, role) -> (recording id, name) of a recording that role is told
        #: about in joinRoom; set by the recording service when recording is enabled.
        self.recording_of: Callable[[str, str], tuple[str, str] | None] = _no_recording

    def room(self, session_id: str) -> Room | None:
        return self._rooms.get(session_id)

    def session_ids(self) -> list[str]:
        """The sessions with a live room on this node (read-only; for stats)."""
        return list(self._rooms)

    def load(self) -> tuple[int, int]:
        """This node's media load, heartbeated to the cluster for session placement: streams
        published here, and RTP packets forwarded so far (by routers that count them)."""
        publishers = packets = 0
        for room in self._rooms.values():
            publishers += sum(1 for p in room.participants.values() if p.stream is not None)
            stats = getattr(room.router, "stats", None)
            if stats is not None:
                packets += sum(c.packets_out for c in stats().consumers)
        return publishers, packets

    def participant(self, session_id: str, connection_id: str) -> LiveParticipant | None:
        room = self._rooms.get(session_id)
        return room.participants.get(connection_id) if room else None

    def _room_of(self, part: LiveParticipant) -> Room:
        room = self._rooms.get(part.session_id)
        if room is None or part.gone:
            raise self._gone(part)
        return room

    @staticmethod
    def _gone(part: LiveParticipant) -> rpc.RpcError:
        return rpc.RpcError(
            rpc.Code.TRANSPORT, f"Participant {part.connection_id} is no longer connected"
        )

    # -- joinRoom ----------------------------------------------------------------------
    async def join(
        self, sink: ParticipantSink, p: rpc.JoinRoomParams, ip: str | None
    ) -> tuple[LiveParticipant, rpc.JoinRoomResult]:
        """joinRoom: consume the token, tell the others, describe the room.

        ``sink`` is how the new participant is reached from now on.

        Raises:
            SessionNotFound: (202) no such session.
            TokenInvalid: (401) unknown, used or revoked token.
        """
        session_id = SessionId(p.session)
        try:
            await self.ledger.get_session(session_id)
        except SessionNotFound:
            raise SessionNotFound(
                f"Unable to join session. Session {p.session} cannot be found"
            ) from None
        try:
            conn = await self.ledger.join(
                session_id, token_id_of(p.token), ip=ip, platform=p.platform, client_data=p.metadata
            )
        except TokenInvalid:
            raise TokenInvalid(
                f"Unable to join session {p.session}. Token {p.token} is not valid"
            ) from None
        _check_sdk_version(p.sdk_version)
        room = self._rooms.get(session_id)
        if room is None or room.closed:
            room = self._rooms[session_id] = self._new_room(session_id)
        part = LiveParticipant(
            connection_id=conn.id,
            session_id=session_id,
            role=conn.properties.role,
            metadata=rpc.join_metadata(p.metadata, conn.properties.data),
            created_at=conn.active_at or self.ledger.clock.now_ms(),
            sink=sink,
        )
        # snapshot and register before any await, so two concurrent joiners see each other
        existing = list(room.participants.values())
        room.participants[conn.id] = part
        await room.broadcast("participantJoined", rpc.participant_joined(part.remote()), existing)
        result = rpc.JoinRoomResult(
            id=conn.id,
            created_at=part.created_at,
            metadata=part.metadata,
            value=tuple(o.remote() for o in existing),
            session=p.session,
            role=part.role,
            custom_ice_servers=tuple(
                render_ice_server(s) for s in conn.properties.custom_ice_servers
            ),
            record=conn.properties.record,
            coturn_ip=urlsplit(conn.token).hostname or "127.0.0.1",
        )
        recording = self.recording_of(p.session, part.role)
        if recording is not None:
            result = replace(result, recording_id=recording[0], recording_name=recording[1])
        return part, result

    def _new_room(self, session_id: SessionId) -> Room:
        room = Room(session_id, self._router_factory(session_id))
        self._watch(room)
        return room

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.get_running_loop().create_task(_awaited(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _watch(self, room: Room) -> None:
        """Listen to the room's current router: failed endpoints and a lost router."""
        router = room.router

        def closed(reason: str) -> None:
            self._spawn(self._media_lost(room, router, reason))

        def failed(endpoint_id: str) -> None:
            owner = room.owner_of(endpoint_id)
            if owner is None:
                return
            log.warning("media endpoint %s of %s failed", endpoint_id, owner.connection_id)
            task = asyncio.get_running_loop().create_task(
                owner.notify("mediaError", rpc.media_error(f"Media endpoint {endpoint_id} failed"))
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        router.on_endpoint_failed = failed
        router.on_closed = closed

    async def _media_lost(self, room: Room, router: MediaRouter, reason: str) -> None:
        """The router went away by itself (its media worker crashed or hung).

        As OpenVidu does when its media server disconnects: every participant gets a
        ``mediaError``; every subscription and publication ends with ``reason``
        (``webrtcConnectionDestroyed`` events and webhooks), each publication with a
        ``participantUnpublished`` to everyone, its owner included (openvidu-browser then
        ends the Publisher with ``streamDestroyed``). The session gets a new router at once,
        so the clients can publish and subscribe again.
        """
        if room.closed or room.router is not router or self._rooms.get(room.session_id) is not room:
            return
        log.warning("media of session %s lost (%s): ending its streams", room.session_id, reason)
        try:
            room.router = self._router_factory(room.session_id)
            self._watch(room)
        except Exception:  # e.g. shutting down: the old router keeps refusing new legs
            log.exception("no new media router for session %s", room.session_id)
        parts = list(room.participants.values())
        await room.broadcast(
            "mediaError", rpc.media_error(f"Media server disconnected ({reason})"), parts
        )
        for part in parts:
            async with part.lock:
                subscriptions, part.subscriptions = part.subscriptions, {}
                stream, part.stream = part.stream, None
            for stream_id in subscriptions.values():
                await self.ledger.remove_subscriber(
                    room.session_id, part.connection_id, stream_id, reason
                )
            if stream is not None:
                await self.ledger.remove_publisher(
                    room.session_id, part.connection_id, stream.id, reason
                )
                await room.broadcast(
                    "participantUnpublished",
                    rpc.participant_unpublished(part.connection_id, reason),
                    list(room.participants.values()),
                )
        await _quietly(router.close(), "close")

    # -- publishing --------------------------------------------------------------------
    async def publish(
        self, part: LiveParticipant, p: rpc.PublishVideoParams
    ) -> tuple[dict[str, object], AfterReply]:
        """publishVideo: answer the offer; participantPublished goes out after the reply.

        Raises:
            RpcError: 401 for SUBSCRIBER, 106 when already publishing, 302 on a bad offer.
        """
        if part.role == "SUBSCRIBER":
            raise rpc.RpcError(
                rpc.Code.USER_UNAUTHORIZED,
                "Unable to publish video. The user does not have a valid token",
            )
        async with part.lock:
            room = self._room_of(part)
            if part.stream is not None:
                raise rpc.RpcError(
                    rpc.Code.USER_ALREADY_STREAMING,
                    f"User {part.connection_id} is already publishing",
                )
            stream_id = ids.stream_id(p.type_of_video, p.has_video, part.connection_id)
            answer = await self._negotiate(room.router.publish(stream_id, p.sdp_offer))
            if part.gone:  # left while negotiating: do not leak the producer
                await _quietly(room.router.close_producer(stream_id), "close_producer")
                raise self._gone(part)
            now = self.ledger.clock.now_ms()
            stream = rpc.StreamInfo(
                id=stream_id,
                created_at=now,
                has_audio=p.has_audio,
                has_video=p.has_video,
                audio_active=p.has_audio if p.audio_active is None else p.audio_active,
                video_active=p.has_video if p.video_active is None else p.video_active,
                type_of_video=(p.type_of_video or "CAMERA") if p.has_video else None,
                frame_rate=p.frame_rate,
                video_dimensions=p.video_dimensions or "",
            )
            part.stream = stream
            await self._flush_ice(room, part, part.connection_id)
        await self.ledger.add_publisher(
            part.session_id, part.connection_id, Publisher(stream_id, now, _media(stream))
        )

        async def announce() -> None:
            await room.broadcast(
                "participantPublished",
                rpc.participant_published(part.connection_id, [stream]),
                room.others(part.connection_id),
            )

        return {"sdpAnswer": answer, "id": stream_id, "createdAt": now}, announce

    async def unpublish(self, part: LiveParticipant, reason: str, *, tell_owner: bool) -> None:
        """unpublishVideo / forceUnpublish: stop the stream and every subscription to it.

        Raises:
            RpcError: 105 when not publishing.
        """
        room = self._room_of(part)
        async with part.lock:
            stream = part.stream
            if stream is None:
                raise rpc.RpcError(
                    rpc.Code.USER_NOT_STREAMING, f"User {part.connection_id} is not streaming"
                )
            part.stream = None
            await self._drop_subscribers_of(room, part.connection_id, stream.id, reason)
            await _quietly(room.router.close_producer(stream.id), "close_producer")
        await self.ledger.remove_publisher(part.session_id, part.connection_id, stream.id, reason)
        targets = (
            list(room.participants.values()) if tell_owner else room.others(part.connection_id)
        )
        await room.broadcast(
            "participantUnpublished",
            rpc.participant_unpublished(part.connection_id, reason),
            targets,
        )

    async def stream_property_changed(
        self, part: LiveParticipant, p: rpc.StreamPropertyChangedParams
    ) -> None:
        """streamPropertyChanged: store the change and tell the others."""
        room = self._room_of(part)
        stream = part.stream
        if stream is None:
            raise rpc.RpcError(
                rpc.Code.USER_NOT_STREAMING, f"User {part.connection_id} is not streaming"
            )
        changes: dict[str, object] = {}
        if p.property == "audioActive" and isinstance(p.new_value, bool):
            changes["audio_active"] = p.new_value
        elif p.property == "videoActive" and isinstance(p.new_value, bool):
            changes["video_active"] = p.new_value
        elif p.property == "videoDimensions" and isinstance(p.new_value, str):
            changes["video_dimensions"] = p.new_value
        if changes:
            part.stream = _replace_stream(stream, changes)
            await self.ledger.update_media_options(
                part.session_id, part.connection_id, stream.id, **changes
            )
        await room.broadcast(
            "streamPropertyChanged",
            rpc.stream_property_changed(
                part.connection_id, stream.id, p.property, p.new_value, p.reason
            ),
            room.others(part.connection_id),
        )

    # -- subscribing -------------------------------------------------------------------
    async def subscribe(self, part: LiveParticipant, p: rpc.ReceiveVideoFromParams) -> str:
        """receiveVideoFrom with an offer; returns the answer.

        Raises:
            RpcError: 102 unknown publisher, 105 not streaming, 302 on negotiation failure.
        """
        room = self._room_of(part)
        pub_id = p.publisher_connection_id or ConnectionId("")
        owner = room.participants.get(pub_id)
        if owner is None:
            raise rpc.RpcError(
                rpc.Code.USER_NOT_FOUND, f"User '{pub_id}' not found in session '{room.session_id}'"
            )
        if owner.stream is None or owner.stream.id != p.sender:
            raise rpc.RpcError(rpc.Code.USER_NOT_STREAMING, f"User '{pub_id}' is not streaming")
        if p.sdp_offer is None:
            raise rpc.RpcError(
                rpc.Code.MEDIA_SDP, "Server-initiated negotiation is not used with this server"
            )
        async with part.lock:
            old = part.subscriptions.pop(pub_id, None)
            if old is not None:
                await _quietly(room.router.close_consumer(part.consumer_id(old)), "close_consumer")
                await self.ledger.remove_subscriber(
                    part.session_id, part.connection_id, old, "unsubscribe"
                )
            answer = await self._negotiate(
                room.router.subscribe(part.consumer_id(p.sender), p.sender, p.sdp_offer)
            )
            unpublished = owner.gone or owner.stream is None or owner.stream.id != p.sender
            if part.gone or unpublished:
                await _quietly(room.router.close_consumer(part.consumer_id(p.sender)), "close")
                if part.gone:
                    raise self._gone(part)
                raise rpc.RpcError(
                    rpc.Code.USER_NOT_STREAMING, f"User '{pub_id}' stopped streaming"
                )
            part.subscriptions[pub_id] = p.sender
            await self._flush_ice(room, part, pub_id)
        await self.ledger.add_subscriber(part.session_id, part.connection_id, p.sender)
        return answer

    async def unsubscribe(self, part: LiveParticipant, publisher_id: ConnectionId) -> None:
        """unsubscribeFromVideo. Raises RpcError 102 when not subscribed to that sender."""
        room = self._room_of(part)
        async with part.lock:
            stream_id = part.subscriptions.pop(publisher_id, None)
            if stream_id is None:
                raise rpc.RpcError(
                    rpc.Code.USER_NOT_FOUND,
                    f"User '{publisher_id}' not found in session '{room.session_id}'",
                )
            await _quietly(
                room.router.close_consumer(part.consumer_id(stream_id)), "close_consumer"
            )
        await self.ledger.remove_subscriber(
            part.session_id, part.connection_id, stream_id, "unsubscribe"
        )

    async def add_ice_candidate(self, part: LiveParticipant, p: rpc.IceCandidateParams) -> None:
        """onIceCandidate: apply now, or buffer until the endpoint exists; ``""`` is ignored."""
        if not p.candidate:
            return
        room = self._room_of(part)
        endpoint = room.endpoint_of(part, p.endpoint_name)
        if endpoint is None:
            # bounded: a client cannot grow server memory with made-up endpoint names
            if (
                p.endpoint_name not in part.pending_ice
                and len(part.pending_ice) >= MAX_ICE_ENDPOINTS
            ):
                return
            pending = part.pending_ice.setdefault(p.endpoint_name, [])
            if len(pending) < MAX_ICE_PER_ENDPOINT:
                pending.append(p)
            return
        await _quietly(
            room.router.add_ice_candidate(endpoint, p.candidate, p.sdp_mid, p.sdp_mline_index),
            "add_ice_candidate",
        )

    async def _flush_ice(self, room: Room, part: LiveParticipant, endpoint_name: str) -> None:
        endpoint = room.endpoint_of(part, endpoint_name)
        for c in part.pending_ice.pop(endpoint_name, []):
            if endpoint is not None:
                await _quietly(
                    room.router.add_ice_candidate(
                        endpoint, c.candidate, c.sdp_mid, c.sdp_mline_index
                    ),
                    "add_ice_candidate",
                )

    async def _negotiate(self, call: Awaitable[str]) -> str:
        """Run an SDP negotiation; any failure is error 302 (MEDIA_SDP) to the caller."""
        try:
            return await call
        except rpc.RpcError:
            raise
        except Exception as exc:
            log.warning("SDP negotiation failed: %s", exc)
            raise rpc.RpcError(rpc.Code.MEDIA_SDP, f"SDP negotiation failed: {exc}") from exc

    async def _drop_subscribers_of(
        self, room: Room, publisher_id: ConnectionId, stream_id: str, reason: str
    ) -> None:
        for other in room.others(publisher_id):
            if other.subscriptions.get(publisher_id) == stream_id:
                del other.subscriptions[publisher_id]
                await _quietly(
                    room.router.close_consumer(other.consumer_id(stream_id)), "close_consumer"
                )
                await self.ledger.remove_subscriber(
                    room.session_id, other.connection_id, stream_id, reason
                )

    # -- signals -----------------------------------------------------------------------
    def client_signal(self, part: LiveParticipant, p: rpc.SendMessageParams) -> SignalRequest:
        """sendMessage from a client: the signal to deliver (by ``SessionManager.signal``).

        Raises:
            RpcError: 600/601 for a malformed message or a ``to`` not in the room.
        """
        room = self._room_of(part)
        msg = p.signal()
        to = tuple(ConnectionId(t) for t in msg.to)
        bad = [t for t in to if t not in room.participants]
        if bad:
            raise rpc.RpcError(
                rpc.Code.SIGNAL_TO_INVALID,
                f'Signal "to" field invalid format: connections {bad} are not active',
            )
        return SignalRequest(room.session_id, to or None, msg.type, msg.data)

    # -- leaving -----------------------------------------------------------------------
    async def leave(self, part: LiveParticipant, reason: str) -> None:
        """leaveRoom (``disconnect``) or a lost socket (``networkDisconnect``)."""
        room = self._rooms.get(part.session_id)
        if room is not None:
            finish = await self._depart(room, part, reason, evicted=False, record=True)
            await finish()

    async def force_disconnect(
        self, moderator: LiveParticipant, connection_id: ConnectionId
    ) -> AfterReply:
        """forceDisconnect: participantLeft now, participantEvicted after the reply.

        Raises:
            RpcError: 401 unless MODERATOR, 102 for an unknown connection.
        """
        if moderator.role != "MODERATOR":
            raise rpc.RpcError(
                rpc.Code.USER_UNAUTHORIZED,
                "Unable to force disconnect. The user does not have a valid token",
            )
        room = self._room_of(moderator)
        target = room.participants.get(connection_id)
        if target is None:
            raise rpc.RpcError(
                rpc.Code.USER_NOT_FOUND, "Connection not found when calling 'forceDisconnect'"
            )
        return await self._depart(room, target, "forceDisconnectByUser", evicted=True, record=True)

    async def _depart(
        self, room: Room, part: LiveParticipant, reason: str, *, evicted: bool, record: bool
    ) -> AfterReply:
        """The one way out of a room. Detaches the participant and tells the others
        (participantLeft) now; returns the rest to run when the caller is ready:
        participantEvicted to everyone and the transport's close when ``evicted``, the
        ledger's leave when ``record`` (an eviction by REST records the leave itself), and
        the room's close when it is empty. A participant already gone yields a no-op."""
        everyone = list(room.participants.values())
        if not await self._detach(room, part, reason):
            return _nothing
        await room.broadcast(
            "participantLeft",
            rpc.participant_left(part.connection_id, reason),
            list(room.participants.values()),
        )

        async def finish() -> None:
            if evicted:
                await room.broadcast(
                    "participantEvicted",
                    rpc.participant_evicted(part.connection_id, reason),
                    everyone,
                )
                part.sink.close_later(SOCKET_CLOSE_DELAY_S)
            if record:
                await self.ledger.leave(room.session_id, part.connection_id, reason)
            await self._close_if_empty(room)

        return finish

    async def force_unpublish_by(self, moderator: LiveParticipant, stream_id: str) -> None:
        """forceUnpublish. Raises RpcError 401 unless MODERATOR, 105 for an unknown stream."""
        if moderator.role != "MODERATOR":
            raise rpc.RpcError(
                rpc.Code.USER_UNAUTHORIZED,
                "Unable to force unpublish. The user does not have a valid token",
            )
        room = self._room_of(moderator)
        owner = room.find_stream(stream_id)
        if owner is None:
            raise rpc.RpcError(rpc.Code.USER_NOT_STREAMING, f"Stream {stream_id} not found")
        await self.unpublish(owner, "forceUnpublishByUser", tell_owner=True)

    async def _detach(self, room: Room, part: LiveParticipant, reason: str) -> bool:
        """Take a participant out of the room and release its media (not the ledger).
        Returns ``False`` when it was already gone."""
        if part.gone:
            return False
        part.gone = True
        room.participants.pop(part.connection_id, None)
        for stream_id in list(part.subscriptions.values()):
            await _quietly(
                room.router.close_consumer(part.consumer_id(stream_id)), "close_consumer"
            )
        part.subscriptions.clear()
        if part.stream is not None:
            stream, part.stream = part.stream, None
            await self._drop_subscribers_of(room, part.connection_id, stream.id, reason)
            # no participantUnpublished: participantLeft tells browsers the stream is gone
            await _quietly(room.router.close_producer(stream.id), "close_producer")
        return True

    async def _close_if_empty(self, room: Room) -> None:
        if not room.participants and self._rooms.get(room.session_id) is room:
            del self._rooms[room.session_id]
            await room.close()

    async def close(self) -> None:
        """Shutdown: close every router."""
        rooms, self._rooms = list(self._rooms.values()), {}
        for room in rooms:
            await room.close()

    # -- LiveGateway -------------------------------------------------------------------
    async def send_signal(
        self,
        session_id: SessionId,
        to: Sequence[ConnectionId],
        sender: ConnectionId | None,
        type_: str,
        data: str,
    ) -> None:
        room = self._rooms.get(session_id)
        if room is None:
            return
        targets = [room.participants[c] for c in to if c in room.participants]
        await room.broadcast("sendMessage", rpc.send_message(data, type_, sender), targets)

    async def evict(self, session_id: SessionId, connection_id: ConnectionId, reason: str) -> None:
        room = self._rooms.get(session_id)
        part = room.participants.get(connection_id) if room else None
        if room is not None and part is not None:
            finish = await self._depart(room, part, reason, evicted=True, record=False)
            await finish()

    async def force_unpublish(self, session_id: SessionId, stream_id: str, reason: str) -> bool:
        room = self._rooms.get(session_id)
        owner = room.find_stream(stream_id) if room else None
        if owner is None:
            return False
        await self.unpublish(owner, reason, tell_owner=True)
        return True


def _check_sdk_version(sdk: str | None) -> None:
    """Log (never refuse) an openvidu-browser whose version does not match (§3.9)."""
    if not sdk:
        return
    try:
        major, minor = (int(x) for x in sdk.split(".")[:2])
    except ValueError:
        log.warning("client sdkVersion %r is not a version", sdk[:32])
        return
    s_major, s_minor = (int(x) for x in rpc.SERVER_VERSION.split(".")[:2])
    if major != s_major or s_minor - minor not in (0, 1):
        log.error("client %r and server %s versions are incompatible", sdk[:32], rpc.SERVER_VERSION)
    elif s_minor - minor == 1:
        log.warning("client %r is one minor version behind server %s", sdk[:32], rpc.SERVER_VERSION)


async def _nothing() -> None:
    return None


async def _awaited(work: Awaitable[None]) -> None:
    try:
        await work
    except Exception:
        log.exception("handling a lost media router failed")


async def _quietly(call: Awaitable[None], what: str) -> None:
    """Run a media clean-up step; a failure is logged, never propagated to the caller."""
    try:
        await call
    except Exception:
        log.exception("router %s failed", what)


def _media(s: rpc.StreamInfo) -> MediaOptions:
    return MediaOptions(
        has_audio=s.has_audio,
        audio_active=s.audio_active,
        has_video=s.has_video,
        video_active=s.video_active,
        type_of_video=s.type_of_video or "CAMERA",
        frame_rate=s.frame_rate,
        video_dimensions=s.video_dimensions,
    )


def _replace_stream(s: rpc.StreamInfo, changes: dict[str, object]) -> rpc.StreamInfo:
    return replace(s, **changes)  # type: ignore[arg-type]


def _no_recording(session_id: str, role: str) -> tuple[str, str] | None:
    return None
