"""OpenVidu RPC method handlers (openvidu.md §3.3-3.4): parse params, call Rooms, render.

Each handler takes the socket's :class:`CallContext` and the request params and returns the
result object, optionally with work to run after the reply is sent. Errors are raised as
:class:`~vidhub.errors.VidhubError` subclasses and turned into JSON-RPC errors by
:func:`dispatch`, once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vidhub.errors import VidhubError
from vidhub.ids import ConnectionId
from vidhub.manager import SessionManager
from vidhub.protocol import jsonrpc
from vidhub.protocol import openvidu_rpc as rpc
from vidhub.rooms import SOCKET_CLOSE_DELAY_S, AfterReply, LiveParticipant, Rooms
from vidhub.server.signalling.rpcsession import RpcSession

__all__ = ["CallContext", "dispatch"]

log = logging.getLogger(__name__)

Result = dict[str, Any] | tuple[dict[str, Any], AfterReply]
Handler = Callable[["CallContext", dict[str, Any]], Awaitable[Result]]

METHOD_NOT_FOUND = -32601


@dataclass
class CallContext:
    """What a handler may use: the rooms, the manager, the caller's RPC session and address."""

    rooms: Rooms
    manager: SessionManager
    session: RpcSession
    ip: str | None

    @property
    def participant(self) -> LiveParticipant:
        """The joined participant. Raises RpcError 803 before joinRoom."""
        part = self.session.joined
        if part is None:
            raise rpc.RpcError(
                rpc.Code.TRANSPORT,
                f"No connection found for participant with privateId {self.session.id}. "
                "Method 'Session.connect()' must be the first operation called in any session",
            )
        return part


async def _join_room(ctx: CallContext, params: dict[str, Any]) -> Result:
    p = rpc.JoinRoomParams.parse(params)
    if ctx.session.joined is not None:
        raise rpc.RpcError(104, "This socket has already joined a session")
    part, result = await ctx.rooms.join(ctx.session, p, ctx.ip)
    ctx.session.participant = part
    rooms = ctx.rooms

    async def lost() -> None:
        log.info("participant %s lost its socket; evicting", part.connection_id)
        await rooms.leave(part, "networkDisconnect")

    ctx.session.on_expired = lost
    return result.to_json()


async def _leave_room(ctx: CallContext, params: dict[str, Any]) -> Result:
    part = ctx.session.joined
    if part is not None:
        await ctx.rooms.leave(part, "disconnect")
    ctx.session.on_expired = None
    ctx.session.close_later(SOCKET_CLOSE_DELAY_S)
    return {}


async def _publish_video(ctx: CallContext, params: dict[str, Any]) -> Result:
    return await ctx.rooms.publish(ctx.participant, rpc.PublishVideoParams.parse(params))


async def _unpublish_video(ctx: CallContext, params: dict[str, Any]) -> Result:
    await ctx.rooms.unpublish(ctx.participant, "unpublish", tell_owner=False)
    return {}


async def _receive_video_from(ctx: CallContext, params: dict[str, Any]) -> Result:
    answer = await ctx.rooms.subscribe(ctx.participant, rpc.ReceiveVideoFromParams.parse(params))
    return {"sdpAnswer": answer}


async def _unsubscribe_from_video(ctx: CallContext, params: dict[str, Any]) -> Result:
    p = rpc.UnsubscribeParams.parse(params)
    await ctx.rooms.unsubscribe(ctx.participant, p.publisher_connection_id)
    return {}


async def _on_ice_candidate(ctx: CallContext, params: dict[str, Any]) -> Result:
    await ctx.rooms.add_ice_candidate(ctx.participant, rpc.IceCandidateParams.parse(params))
    return {}


async def _stream_property_changed(ctx: CallContext, params: dict[str, Any]) -> Result:
    p = rpc.StreamPropertyChangedParams.parse(params)
    await ctx.rooms.stream_property_changed(ctx.participant, p)
    return {}


async def _send_message(ctx: CallContext, params: dict[str, Any]) -> Result:
    part = ctx.participant
    req = ctx.rooms.client_signal(part, rpc.SendMessageParams.parse(params))
    await ctx.manager.signal(req, sender=part.connection_id)
    return {}


async def _force_disconnect(ctx: CallContext, params: dict[str, Any]) -> Result:
    p = rpc.ForceDisconnectParams.parse(params)
    after = await ctx.rooms.force_disconnect(ctx.participant, ConnectionId(p.connection_id))
    return {}, after


async def _force_unpublish(ctx: CallContext, params: dict[str, Any]) -> Result:
    p = rpc.ForceUnpublishParams.parse(params)
    await ctx.rooms.force_unpublish_by(ctx.participant, p.stream_id)
    return {}


async def _reconnect_stream(ctx: CallContext, params: dict[str, Any]) -> Result:
    p = rpc.ReconnectStreamParams.parse(params)
    part = ctx.participant
    if part.stream is not None and part.stream.id == p.stream:
        raise rpc.RpcError(
            rpc.Code.MEDIA_SDP, "Publisher reconnection is not supported; republish instead"
        )
    answer = await ctx.rooms.subscribe(
        part, rpc.ReceiveVideoFromParams(sender=p.stream, sdp_offer=p.sdp_offer)
    )
    return {"sdpAnswer": answer}


async def _video_data(ctx: CallContext, params: dict[str, Any]) -> Result:
    _ = ctx.participant
    rpc.VideoDataParams.parse(params)
    return {}


async def _echo(ctx: CallContext, params: dict[str, Any]) -> Result:
    return {}


async def _no_filters(ctx: CallContext, params: dict[str, Any]) -> Result:
    _ = ctx.participant
    raise rpc.RpcError(rpc.Code.FILTER_NOT_APPLIED, "Filters not supported")


async def _no_stt(ctx: CallContext, params: dict[str, Any]) -> Result:
    raise rpc.RpcError(
        rpc.Code.WRONG_EDITION, "Speech To Text requires OpenVidu Pro/Enterprise edition"
    )


HANDLERS: dict[str, Handler] = {
    "joinRoom": _join_room,
    "leaveRoom": _leave_room,
    "publishVideo": _publish_video,
    "unpublishVideo": _unpublish_video,
    "receiveVideoFrom": _receive_video_from,
    "unsubscribeFromVideo": _unsubscribe_from_video,
    "onIceCandidate": _on_ice_candidate,
    "streamPropertyChanged": _stream_property_changed,
    "sendMessage": _send_message,
    "forceDisconnect": _force_disconnect,
    "forceUnpublish": _force_unpublish,
    "reconnectStream": _reconnect_stream,
    "videoData": _video_data,
    "echo": _echo,
    "applyFilter": _no_filters,
    "removeFilter": _no_filters,
    "execFilterMethod": _no_filters,
    "addFilterEventListener": _no_filters,
    "removeFilterEventListener": _no_filters,
    "subscribeToSpeechToText": _no_stt,
    "unsubscribeFromSpeechToText": _no_stt,
}


async def dispatch(ctx: CallContext, req: jsonrpc.Request) -> None:
    """Run one request and answer it on the caller's RPC session; never raises."""
    session = ctx.session
    handler = HANDLERS.get(req.method)
    if handler is None:
        await session.respond_error(req.id, METHOD_NOT_FOUND, f"Unknown method '{req.method}'")
        return
    after: AfterReply | None = None
    try:
        out = await handler(ctx, req.params)
        if isinstance(out, tuple):
            result, after = out
        else:
            result = out
    except VidhubError as exc:
        await session.respond_error(req.id, exc.rpc_code, exc.message)
        return
    except Exception:
        log.exception("RPC method %s failed", req.method)
        await session.respond_error(req.id, rpc.Code.GENERIC, "Internal server error")
        return
    await session.respond(req.id, result)
    if after is not None:
        try:
            await after()
        except Exception:
            log.exception("follow-up of RPC method %s failed", req.method)
