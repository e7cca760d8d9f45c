"""``Participant``: a Python bot that joins a vidhub (or OpenVidu 2.x) session like a browser.

Theory of operation: :meth:`Participant.join` derives the signalling URL from the token
exactly as openvidu-browser does (``<ws|wss>://host[:port]/openvidu?sessionId=<id>``; the
token's path is ignored), opens the WebSocket, starts the 5 s ``ping`` heart-beat and sends
``joinRoom``. A reader task matches responses to requests by id and turns notifications into
:class:`ParticipantEvent` objects, delivered to callbacks (:meth:`on`), to waiters
(:meth:`wait_event`) and to the async iterator (``async for ev in participant``).

Media uses aiortc with the ``mediaServer: "kurento"`` flow: this side always offers
(sendonly to publish, recvonly to subscribe) and applies the server's answer. Peer
connections use ``RTCConfiguration(iceServers=[])`` unless ICE servers are given, so no
public STUN server is ever contacted.

Only the wire is used: this module imports :mod:`vidhub.protocol` and third-party libraries.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from vidhub.protocol import jsonrpc
from vidhub.protocol import openvidu_rpc as rpc

__all__ = [
    "Participant",
    "ParticipantError",
    "ParticipantEvent",
    "RemoteConnection",
    "Subscription",
    "signalling_url",
]

log = logging.getLogger("vidhub.client.Participant")

SDK_VERSION = "2.32.1"
PING_INTERVAL_S = 5.0

_TOKEN_RE = re.compile(r"^(wss?|https?)://([^:/?#]*(?::[0-9]+)?)([/]?[^?#]*)(\?[^#]*|)(#.*|)$")


class ParticipantError(Exception):
    """The server answered a request with an error (``code`` is OpenVidu's)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} (code {code})")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ParticipantEvent:
    """A server notification: ``type`` is its method name (``participantJoined``,
    ``participantPublished``, ``sendMessage``, ...), ``data`` its params. ``closed`` is
    emitted once when the signalling socket is gone for good."""

    type: str
    data: dict[str, Any]


@dataclass
class RemoteConnection:
    """Another participant as this one knows it."""

    id: str
    created_at: int
    metadata: str
    streams: dict[str, rpc.StreamInfo] = field(default_factory=dict)


@dataclass(eq=False)
class Subscription:
    """A received stream: its tracks (aiortc ``MediaStreamTrack``s) and peer connection."""

    stream: rpc.StreamInfo
    pc: RTCPeerConnection
    tracks: list[MediaStreamTrack]

    @property
    def video(self) -> MediaStreamTrack | None:
        return next((t for t in self.tracks if t.kind == "video"), None)

    @property
    def audio(self) -> MediaStreamTrack | None:
        return next((t for t in self.tracks if t.kind == "audio"), None)


def signalling_url(token: str) -> tuple[str, str]:
    """``(websocket url, session id)`` for a token, as openvidu-browser derives them.

    Raises:
        ValueError: the token is not a ``ws[s]://`` (or ``http[s]://``) URL with a sessionId.
    """
    m = _TOKEN_RE.match(token)
    if m is None:
        raise ValueError(f'Token not valid: "{token}"')
    scheme = {"http": "ws", "https": "wss"}.get(m.group(1), m.group(1))
    query = dict(parse_qsl(m.group(4).lstrip("?")))
    session = query.get("sessionId")
    if not session:
        raise ValueError("Token has no sessionId")
    return f"{scheme}://{m.group(2)}/openvidu?sessionId={session}", session


def _restrict_host_addresses(addresses: Sequence[str]) -> None:
    """Make aioice gather host candidates on ``addresses`` only (process-wide).

    aioice skips loopback by design; a bot talking to a server on 127.0.0.1 inside a
    loopback-only network namespace has no other address to use.
    """
    import aioice.ice

    chosen = list(addresses)

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in chosen if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = get_host_addresses


class Participant:
    """One participant of a session, driven from Python.

    Args:
        token: the connection token (``ws://host:port?sessionId=..&token=tok_..``).
        metadata: clientData sent in joinRoom.
        ice_servers: aiortc ``RTCIceServer``s; default none (no STUN/TURN traffic).
        host_addresses: if given, the only local addresses ICE gathers on (process-wide).
        request_timeout: seconds to wait for each answer (openvidu-browser: 10).
    """

    def __init__(
        self,
        token: str,
        *,
        metadata: str = "",
        platform: str = "vidhub-python",
        ice_servers: Sequence[RTCIceServer] = (),
        host_addresses: Sequence[str] | None = None,
        request_timeout: float = 10.0,
    ) -> None:
        self.token = token
        self.url, self.session_id = signalling_url(token)
        self.metadata = metadata
        self.platform = platform
        self.request_timeout = request_timeout
        self._ice_servers = list(ice_servers)
        self._host_addresses = host_addresses
        self.connection_id = ""
        self.role = ""
        self.rpc_session_id = ""
        self.remote: dict[str, RemoteConnection] = {}
        self.stream: rpc.StreamInfo | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._publisher_pc: RTCPeerConnection | None = None
        self._subs: dict[str, Subscription] = {}
        self._callbacks: dict[str, list[Callable[[ParticipantEvent], Any]]] = {}
        self._waiters: list[
            tuple[str, Callable[[ParticipantEvent], bool], asyncio.Future[Any]]
        ] = []
        self._events: asyncio.Queue[ParticipantEvent] = asyncio.Queue()
        self.closed = asyncio.Event()
        self._evicted: asyncio.Task[None] | None = None

    # -- connection ---------------------------------------------------------------------
    async def join(self) -> rpc.JoinRoomResult:
        """Connect and send joinRoom; fills ``connection_id``, ``role`` and ``remote``.

        Raises:
            ParticipantError: the server refused (e.g. 401 for a used token).
            aiohttp.ClientError: the server cannot be reached.
        """
        if self._host_addresses is not None:
            _restrict_host_addresses(self._host_addresses)
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(self.url, autoping=True)
        except BaseException:
            await self._http.close()
            raise
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._heartbeat())]
        params = rpc.JoinRoomParams(
            token=self.token,
            session=self.session_id,
            platform=self.platform,
            metadata=self.metadata,
            sdk_version=SDK_VERSION,
        )
        try:
            raw = await self.request("joinRoom", params.to_params())
        except BaseException:
            await self._shutdown()
            raise
        result = rpc.JoinRoomResult.from_json(raw)
        self.connection_id = result.id
        self.role = result.role
        self.rpc_session_id = str(raw.get("sessionId", ""))
        for p in result.value:
            self.remote[p.id] = RemoteConnection(
                p.id, p.created_at, p.metadata, {s.id: s for s in p.streams}
            )
        return result

    async def request(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one JSON-RPC request and return its result object.

        Raises:
            ParticipantError: an error response.
            TimeoutError: no answer within ``request_timeout``.
            ConnectionError: not connected.
        """
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionError("not connected")
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await ws.send_str(jsonrpc.encode_request(rid, method, params))
            msg = await asyncio.wait_for(fut, self.request_timeout)
        finally:
            self._pending.pop(rid, None)
        if isinstance(msg, jsonrpc.ErrorResponse):
            raise ParticipantError(msg.code, msg.message)
        result = msg.result
        return result if isinstance(result, dict) else {"value": result}

    async def _read(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            async for frame in ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                try:
                    msg = jsonrpc.parse_message(frame.data)
                except jsonrpc.FrameError:
                    log.warning("ignoring a malformed frame from the server")
                    continue
                if isinstance(msg, jsonrpc.Response | jsonrpc.ErrorResponse):
                    fut = self._pending.get(msg.id) if isinstance(msg.id, int) else None
                    if fut is not None and not fut.done():
                        fut.set_result(msg)
                elif isinstance(msg, jsonrpc.Notification | jsonrpc.Request):
                    self._on_notification(msg.method, msg.params)
        finally:
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(ConnectionError("signalling socket closed"))
            self._emit(ParticipantEvent("closed", {}))
            self.closed.set()

    async def _heartbeat(self) -> None:
        params: dict[str, Any] | None = {"interval": int(PING_INTERVAL_S * 1000)}
        while True:
            try:
                await self.request("ping", params)
            except (TimeoutError, ParticipantError):
                log.warning("ping got no answer")
            except ConnectionError:
                return
            params = None
            await asyncio.sleep(PING_INTERVAL_S)

    # -- events -------------------------------------------------------------------------
    def _on_notification(self, method: str, params: dict[str, Any]) -> None:
        if method == "participantJoined":
            pid = str(params.get("id", ""))
            self.remote[pid] = RemoteConnection(
                pid, int(params.get("createdAt") or 0), str(params.get("metadata") or "")
            )
        elif method == "participantPublished":
            pid = str(params.get("id", ""))
            conn = self.remote.setdefault(pid, RemoteConnection(pid, 0, ""))
            for s in params.get("streams") or []:
                if isinstance(s, dict):
                    info = rpc.StreamInfo.from_json(s)
                    conn.streams[info.id] = info
        elif method == "participantUnpublished":
            cid = str(params.get("connectionId", ""))
            if cid == self.connection_id:
                self.stream = None
            elif cid in self.remote:
                self.remote[cid].streams.clear()
        elif method == "participantLeft":
            self.remote.pop(str(params.get("connectionId", "")), None)
        self._emit(ParticipantEvent(method, params))
        if method == "participantEvicted" and params.get("connectionId") == self.connection_id:
            # like openvidu-browser's leave(forced): no leaveRoom, just release everything
            self._evicted = asyncio.get_running_loop().create_task(self._shutdown())

    def _emit(self, ev: ParticipantEvent) -> None:
        self._events.put_nowait(ev)
        for cb in list(self._callbacks.get(ev.type, ())) + list(self._callbacks.get("*", ())):
            try:
                result = cb(ev)
                if asyncio.iscoroutine(result):
                    asyncio.get_running_loop().create_task(result)
            except Exception:
                log.exception("event callback %r failed on %s", cb, ev.type)
        for waiter in list(self._waiters):
            type_, pred, fut = waiter
            if type_ == ev.type and not fut.done() and pred(ev):
                fut.set_result(ev)
                self._waiters.remove(waiter)

    def on(self, type_: str, callback: Callable[[ParticipantEvent], Any]) -> None:
        """Call ``callback(event)`` for each event of ``type_`` (``"*"``: every event)."""
        self._callbacks.setdefault(type_, []).append(callback)

    async def wait_event(
        self,
        type_: str,
        predicate: Callable[[ParticipantEvent], bool] | None = None,
        wait_s: float = 10.0,
    ) -> ParticipantEvent:
        """The next event of ``type_`` (matching ``predicate``) from now on.

        Raises:
            TimeoutError: none within ``wait_s`` seconds.
        """
        fut: asyncio.Future[ParticipantEvent] = asyncio.get_running_loop().create_future()
        entry = (type_, predicate or (lambda _e: True), fut)
        self._waiters.append(entry)
        try:
            return await asyncio.wait_for(fut, wait_s)
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    def __aiter__(self) -> AsyncIterator[ParticipantEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ParticipantEvent]:
        """Every event in order, ending after ``closed`` (use one iterator at a time)."""
        while True:
            ev = await self._events.get()
            yield ev
            if ev.type == "closed":
                return

    # -- media --------------------------------------------------------------------------
    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=list(self._ice_servers)))

    async def publish(
        self,
        audio: MediaStreamTrack | None = None,
        video: MediaStreamTrack | None = None,
        *,
        type_of_video: str = "CAMERA",
        frame_rate: int = 30,
        video_dimensions: tuple[int, int] | None = (640, 480),
    ) -> rpc.StreamInfo:
        """Publish the given tracks (at least one) as this participant's stream.

        Raises:
            ParticipantError: e.g. 401 for a SUBSCRIBER, 106 when already publishing.
        """
        if audio is None and video is None:
            raise ValueError("publish needs an audio or a video track")
        pc = self._new_pc()
        for track in (audio, video):
            if track is not None:
                pc.addTransceiver(track, direction="sendonly")
        try:
            await pc.setLocalDescription(await pc.createOffer())
            dims = None
            if video is not None and video_dimensions is not None:
                w, h = video_dimensions
                dims = f'{{"width":{w},"height":{h}}}'
            params = rpc.PublishVideoParams(
                sdp_offer=pc.localDescription.sdp,
                has_audio=audio is not None,
                has_video=video is not None,
                type_of_video=type_of_video,
                frame_rate=frame_rate,
                video_dimensions=dims,
            )
            res = await self.request("publishVideo", params.to_params())
            await pc.setRemoteDescription(RTCSessionDescription(res["sdpAnswer"], "answer"))
        except BaseException:
            await pc.close()
            raise
        self._publisher_pc = pc
        self.stream = rpc.StreamInfo(
            id=str(res["id"]),
            created_at=int(res.get("createdAt") or 0),
            has_audio=audio is not None,
            has_video=video is not None,
            type_of_video=type_of_video if video is not None else None,
            frame_rate=frame_rate,
            video_dimensions=dims or "",
        )
        return self.stream

    async def unpublish(self) -> None:
        """Stop publishing (unpublishVideo)."""
        await self.request("unpublishVideo")
        self.stream = None
        pc, self._publisher_pc = self._publisher_pc, None
        if pc is not None:
            await pc.close()

    async def subscribe(self, stream: rpc.StreamInfo | str) -> Subscription:
        """Receive a remote stream (by StreamInfo or stream id); returns its tracks.

        Raises:
            ParticipantError: 102/105 when the stream is unknown or gone.
        """
        info = stream if isinstance(stream, rpc.StreamInfo) else self._find_stream(stream)
        pc = self._new_pc()
        if info.has_audio:
            pc.addTransceiver("audio", direction="recvonly")
        if info.has_video:
            pc.addTransceiver("video", direction="recvonly")
        try:
            await pc.setLocalDescription(await pc.createOffer())
            params = rpc.ReceiveVideoFromParams(info.id, sdp_offer=pc.localDescription.sdp)
            res = await self.request("receiveVideoFrom", params.to_params())
            await pc.setRemoteDescription(RTCSessionDescription(res["sdpAnswer"], "answer"))
        except BaseException:
            await pc.close()
            raise
        tracks = [t.receiver.track for t in pc.getTransceivers()]
        sub = Subscription(info, pc, tracks)
        self._subs[info.id] = sub
        return sub

    def _find_stream(self, stream_id: str) -> rpc.StreamInfo:
        for conn in self.remote.values():
            if stream_id in conn.streams:
                return conn.streams[stream_id]
        return rpc.StreamInfo(id=stream_id, created_at=0)

    async def unsubscribe(self, stream: rpc.StreamInfo | str) -> None:
        """Stop receiving a stream (unsubscribeFromVideo)."""
        stream_id = stream if isinstance(stream, str) else stream.id
        await self.request(
            "unsubscribeFromVideo",
            rpc.UnsubscribeParams(rpc.connection_of_stream(stream_id) or stream_id).to_params(),
        )
        sub = self._subs.pop(stream_id, None)
        if sub is not None:
            await sub.pc.close()

    # -- signals and moderation ---------------------------------------------------------
    async def signal(self, data: str, type_: str = "signal", to: Sequence[str] = ()) -> None:
        """Send a signal (``to`` empty: everyone, this participant included)."""
        p = rpc.SendMessageParams.build(list(to), data, type_)
        await self.request("sendMessage", p.to_params())

    async def force_disconnect(self, connection_id: str) -> None:
        """Evict another participant (MODERATOR only)."""
        await self.request("forceDisconnect", {"connectionId": connection_id})

    async def force_unpublish(self, stream_id: str) -> None:
        """Stop another participant's stream (MODERATOR only)."""
        await self.request("forceUnpublish", {"streamId": stream_id})

    # -- leaving ------------------------------------------------------------------------
    async def leave(self) -> None:
        """leaveRoom, then close media and the socket. Safe to call twice."""
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(ParticipantError, TimeoutError, ConnectionError):
                await self.request("leaveRoom")
        await self._shutdown()

    async def _shutdown(self) -> None:
        pcs = [s.pc for s in self._subs.values()]
        if self._publisher_pc is not None:
            pcs.append(self._publisher_pc)
        self._subs.clear()
        self._publisher_pc = None
        for pc in pcs:
            await pc.close()
        if self._ws is not None:
            await self._ws.close()
        current = asyncio.current_task()
        tasks, self._tasks = [t for t in self._tasks if t is not current], []
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> Participant:
        await self.join()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.leave()
