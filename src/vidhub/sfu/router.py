"""Router: one per media session; owns Producers (publisher legs) and Consumers.

Theory of operation (``specs/sfu.md`` §2): a publisher's browser offers, the
Router answers receive-only and creates one Producer per published track. A subscriber's
browser offers recvonly; the Router answers send-only with codecs constrained to what the
producer sends, and creates one Consumer per track. Encoded RTP flows Producer -> Consumers
without decoding. Closing is idempotent and cascades: Router -> Producers -> Consumers.

The Router knows nothing of OpenVidu: endpoint ids are opaque strings chosen by the caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from aiortc import (
    RTCConfiguration,
    RTCIceCandidate,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.sdp import candidate_from_sdp

from vidhub.errors import BadRequest, Conflict, NotAcceptable, NotFound, VidhubError
from vidhub.protocol.sdp import (
    MediaSection,
    SdpCodec,
    SdpError,
    announce_address,
    check_candidates,
    drop_mdns_candidates,
    parse_media_sections,
    pick_codec,
)
from vidhub.sfu import aiortc_glue
from vidhub.sfu.consumer import Consumer
from vidhub.sfu.legs import Leg, PublisherLeg, SubscriberLeg
from vidhub.sfu.negotiation import preferences_for
from vidhub.sfu.producer import Producer
from vidhub.sfu.recorder import RecordedStream, StreamRecorder, container_for
from vidhub.sfu.stats import ConsumerStats, ProducerStats, RouterStats

__all__ = ["ConsumerStats", "ProducerStats", "Router", "RouterStats"]

log = logging.getLogger(__name__)

#: Candidates buffered per endpoint before its PC exists, and endpoints buffered at most.
MAX_PENDING_CANDIDATES = 64
MAX_PENDING_ENDPOINTS = 256


def _mean(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known) / len(known), 2) if known else None


def _sdp_error(exc: Exception) -> BadRequest:
    return BadRequest(f"unusable SDP offer: {exc}")


class Router:
    """One per OpenVidu session: owns Producers (publisher legs) and Consumers (subscriber legs).

    Endpoint ids (producer ids and consumer ids) are opaque, chosen by the caller, and share
    one namespace for :meth:`add_ice_candidate`.

    Args:
        ice_servers: STUN/TURN servers for every PC; none by default (no public STUN).
        host_addresses: the only addresses to gather host candidates on (process-wide, see
            :func:`~vidhub.sfu.aiortc_glue.install_host_addresses`); None keeps the current
            setting: a list configured earlier, else every non-loopback interface.
        announced_address: address written into the answers' candidates instead of the
            local one (1:1 NAT); None announces the local addresses.
        forced_video_codec: ``VP8`` or ``H264`` to accept only that video codec from
            publishers; None or ``MEDIA_SERVER_PREFERRED`` follows the offer's order.
    """

    on_endpoint_failed: Callable[[str], None] | None
    #: Part of the ``MediaRouter`` contract; never called here: an in-process router only
    #: closes when told to (a worker-backed one calls it when its process is lost).
    on_closed: Callable[[str], None] | None

    def __init__(
        self,
        *,
        ice_servers: Sequence[RTCIceServer] = (),
        host_addresses: Sequence[str] | None = None,
        announced_address: str | None = None,
        forced_video_codec: str | None = None,
    ) -> None:
        self.on_endpoint_failed = None
        self.on_closed = None
        if host_addresses is not None:
            aiortc_glue.install_host_addresses(host_addresses)
        self._ice_servers = list(ice_servers)
        self._announced = announced_address
        self._forced = forced_video_codec
        self._publishers: dict[str, PublisherLeg] = {}
        self._subscribers: dict[str, SubscriberLeg] = {}
        self._busy: set[str] = set()
        self._pending: OrderedDict[str, list[RTCIceCandidate]] = OrderedDict()
        self._tasks: set[asyncio.Future[None]] = set()
        self._recorders: dict[str, StreamRecorder] = {}
        self._closed = False

    # -- helpers ---------------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(RTCConfiguration(iceServers=list(self._ice_servers)))

    def _check_open(self, endpoint_id: str) -> None:
        if self._closed:
            raise NotAcceptable("media router is closed")
        if endpoint_id in self._publishers or endpoint_id in self._subscribers:
            raise Conflict(f"endpoint {endpoint_id} already exists")
        if endpoint_id in self._busy:
            raise Conflict(f"endpoint {endpoint_id} is being negotiated")

    async def _answer(self, pc: RTCPeerConnection) -> str:
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        sdp: str = pc.localDescription.sdp
        try:
            check_candidates(sdp, aiortc_glue.host_addresses())
        except SdpError as exc:
            # A server-side policy breach (sfu.md §4), not the client's fault: never send it.
            log.error("refusing to send an answer: %s", exc)
            raise VidhubError("media address policy violated") from exc
        if self._announced:
            sdp = announce_address(sdp, self._announced)
        return sdp

    async def _register(self, leg: PublisherLeg | SubscriberLeg) -> None:
        leg.on_failed = self._leg_failed
        if isinstance(leg, PublisherLeg):
            self._publishers[leg.id] = leg
        else:
            self._subscribers[leg.id] = leg
        for candidate in self._pending.pop(leg.id, []):
            await leg.add_candidate(candidate)

    def _leg_failed(self, leg_id: str) -> None:
        cb = self.on_endpoint_failed
        if cb is not None:
            try:
                cb(leg_id)
            except Exception:
                log.exception("on_endpoint_failed failed for %s", leg_id)

    @staticmethod
    def _sections(offer_sdp: str) -> list[MediaSection]:
        try:
            sections = parse_media_sections(offer_sdp)
        except SdpError as exc:
            raise _sdp_error(exc) from exc
        media = [s for s in sections if s.kind in ("audio", "video")]
        if not media:
            raise BadRequest("SDP offer has no audio or video")
        return media

    @staticmethod
    async def _apply_offer(pc: RTCPeerConnection, offer_sdp: str) -> None:
        offer_sdp = drop_mdns_candidates(offer_sdp)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError/OperationError/asserts on bad SDP
            raise _sdp_error(exc) from exc

    # -- publish ---------------------------------------------------------------------

    async def publish(self, producer_id: str, offer_sdp: str) -> str:
        """Accept a publisher's offer; return the answer SDP (server receives only).

        One producer is created per sending audio/video m-section, answered with exactly
        one codec (:func:`~vidhub.protocol.sdp.pick_codec`) plus RTX for video. A
        ``sendrecv`` section (openvidu-browser's ``doLoopback``) is answered ``sendrecv`` and
        its media is also forwarded back to the publisher on the same connection.

        Raises:
            BadRequest: malformed SDP, or no forwardable codec for an offered track.
            Conflict: ``producer_id`` is already in use.
            NotAcceptable: the router is closed.
            VidhubError: the answer would announce an address outside the media addresses.
        """
        self._check_open(producer_id)
        sections = self._sections(offer_sdp)
        # One entry per audio/video m-section, in offer order: the codec to receive, or
        # None for a section answered "inactive" (not sending, or a second track of a kind).
        # Pre-creating every transceiver keeps aiortc from adding default (decoding) ones.
        plan: list[tuple[MediaSection, SdpCodec | None]] = []
        kinds: set[str] = set()
        for section in sections:
            sending = section.direction in ("sendonly", "sendrecv") and section.port != 0
            if not sending or section.kind in kinds:
                plan.append((section, None))
                continue
            codec = pick_codec(section, self._forced)
            if codec is None or not preferences_for(section.kind, codec):
                raise BadRequest(f"no supported {section.kind} codec in the offer")
            kinds.add(section.kind)
            plan.append((section, codec))
        if not kinds:
            raise BadRequest("SDP offer sends no audio or video")
        self._busy.add(producer_id)
        pc = self._new_pc()
        leg = PublisherLeg(producer_id, pc)
        try:
            transceivers: list[tuple[RTCRtpTransceiver, SdpCodec]] = []
            for section, maybe_codec in plan:
                if maybe_codec is None:
                    pc.addTransceiver(section.kind, direction="inactive")
                    continue
                # sendrecv = OpenVidu's doLoopback: the stream also comes back on this PC.
                loop = section.direction == "sendrecv"
                t = pc.addTransceiver(section.kind, direction="sendrecv" if loop else "recvonly")
                t.setCodecPreferences(preferences_for(section.kind, maybe_codec))
                transceivers.append((t, maybe_codec))
            await self._apply_offer(pc, offer_sdp)
            for t, codec in transceivers:
                producer = Producer(producer_id, t.kind, codec, t.receiver)
                leg.producers[t.kind] = producer
                if t.direction == "sendrecv":
                    leg.loopback.append(Consumer(producer_id, producer, t.sender))
            sdp = await self._answer(pc)
            if self._closed:
                raise NotAcceptable("media router is closed")
        except BaseException:
            await leg.close()
            raise
        finally:
            self._busy.discard(producer_id)
        await self._register(leg)
        return sdp

    # -- subscribe -------------------------------------------------------------------

    async def subscribe(self, consumer_id: str, producer_id: str, offer_sdp: str) -> str:
        """Accept a subscriber's recvonly offer for ``producer_id``; return the send-only answer.

        Codecs in the answer are constrained to the producer's (pass-through cannot
        transcode). Consumers start forwarding once the subscriber's transport is up; each
        video consumer starts on a keyframe, requested upstream at once.

        Raises:
            NotFound: no producer ``producer_id``.
            BadRequest: malformed SDP, or the subscriber cannot receive the producer's codec.
            Conflict: ``consumer_id`` is already in use.
            NotAcceptable: the router is closed.
        """
        self._check_open(consumer_id)
        pub = self._publishers.get(producer_id)
        if pub is None or pub.closed:
            raise NotFound(f"no producer {producer_id}")
        sections = self._sections(offer_sdp)
        # Per audio/video m-section in offer order: the producer it receives, or None
        # (answered "inactive").
        wanted: list[tuple[MediaSection, Producer | None]] = []
        for section in sections:
            producer = pub.producers.get(section.kind)
            receiving = section.direction in ("recvonly", "sendrecv") and section.port != 0
            if (
                producer is None
                or producer.closed
                or not receiving
                or any(p is producer for _, p in wanted)
            ):
                wanted.append((section, None))
            else:
                wanted.append((section, producer))
        if all(p is None for _, p in wanted):
            raise BadRequest("SDP offer receives none of the producer's tracks")
        self._busy.add(consumer_id)
        pc = self._new_pc()
        leg = SubscriberLeg(consumer_id, producer_id, pc)
        try:
            pairs: list[tuple[RTCRtpTransceiver, Producer]] = []
            for section, maybe_producer in wanted:
                if maybe_producer is None:
                    pc.addTransceiver(section.kind, direction="inactive")
                    continue
                t = pc.addTransceiver(section.kind, direction="sendonly")
                t.setCodecPreferences(preferences_for(section.kind, maybe_producer.codec))
                pairs.append((t, maybe_producer))
            await self._apply_offer(pc, offer_sdp)
            for t, producer in pairs:
                if t.mid is None:
                    continue  # the offer had no m-section left for it
                consumer = Consumer(consumer_id, producer, t.sender)
                consumer.on_producer_closed = self._consumer_orphaned
                leg.consumers.append(consumer)
            sdp = await self._answer(pc)
            if self._closed or pub.closed:
                raise NotAcceptable("producer closed during negotiation")
        except BaseException:
            await leg.close()
            raise
        finally:
            self._busy.discard(consumer_id)
        await self._register(leg)
        return sdp

    def _consumer_orphaned(self, consumer: Consumer) -> None:
        leg = self._subscribers.get(consumer.leg_id)
        if leg is not None and all(c.producer.closed for c in leg.consumers):
            self._subscribers.pop(leg.id, None)
            task = asyncio.ensure_future(leg.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- ICE -------------------------------------------------------------------------

    async def add_ice_candidate(
        self, endpoint_id: str, candidate: str, sdp_mid: str | None, sdp_mline_index: int | None
    ) -> None:
        """Apply a trickled browser candidate to a leg.

        ``""`` (end of candidates) is ignored, and so are mDNS ``.local`` candidates (they
        need multicast; the browser is learnt as a peer-reflexive candidate instead).
        Candidates for an endpoint that does not exist yet are buffered (bounded) and applied
        when its leg is created.

        Raises:
            BadRequest: the candidate line cannot be parsed.
        """
        text = (candidate or "").strip()
        if not text:
            return
        if text.startswith("a="):
            text = text[2:]
        if text.startswith("candidate:"):
            text = text[len("candidate:") :]
        try:
            parsed = candidate_from_sdp(text)
        except (AssertionError, ValueError, IndexError) as exc:
            raise BadRequest("malformed ICE candidate") from exc
        if parsed.ip.endswith(".local"):
            return
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        if sdp_mid is None and sdp_mline_index is None:
            parsed.sdpMLineIndex = 0
        leg: Leg | None = self._publishers.get(endpoint_id) or self._subscribers.get(endpoint_id)
        if leg is not None:
            await leg.add_candidate(parsed)
            return
        if self._closed:
            return
        pending = self._pending.setdefault(endpoint_id, [])
        self._pending.move_to_end(endpoint_id)
        if len(pending) < MAX_PENDING_CANDIDATES:
            pending.append(parsed)
        while len(self._pending) > MAX_PENDING_ENDPOINTS:
            self._pending.popitem(last=False)

    # -- recording -------------------------------------------------------------------

    async def start_recording(
        self,
        recorder_id: str,
        producer_id: str,
        path_stem: str,
        *,
        audio: bool = True,
        video: bool = True,
        fallback_size: tuple[int, int] = (640, 480),
    ) -> str:
        """Record a publisher leg's tracks, as received, into one file; returns its path.

        The container follows the video codec (``.webm`` for VP8 or audio only, ``.mp4``
        for H.264), appended to ``path_stem``. Recording costs no decoding or encoding
        (:mod:`vidhub.sfu.recorder`); the file is finished by :meth:`stop_recording`, when
        the producer closes, or when the router closes.

        Args:
            recorder_id: the caller's id for this recording; unique in the router.
            producer_id: the publisher leg.
            path_stem: the file path without extension.
            audio: record the audio track (if any).
            video: record the video track (if any).
            fallback_size: the video size to declare if no keyframe tells it.

        Raises:
            NotFound: no such producer, or none of the wanted tracks.
            Conflict: ``recorder_id`` is in use.
            NotAcceptable: the router is closed.
        """
        producers = self._recordable(recorder_id, producer_id, audio, video)
        vcodec = next((p.codec.name for p in producers if p.kind == "video"), None)
        path = Path(f"{path_stem}.{container_for(vcodec)}")
        self._recorders[recorder_id] = StreamRecorder(
            recorder_id, producer_id, producers, path, fallback_size=fallback_size
        )
        return str(path)

    def recorder_ids(self) -> list[str]:
        """Recordings started and not yet collected by :meth:`stop_recording`."""
        return list(self._recorders)

    async def start_feed(
        self,
        recorder_id: str,
        producer_id: str,
        socket_path: str,
        *,
        audio: bool = True,
        video: bool = True,
    ) -> None:
        """Send a publisher leg's frames, as received, to a COMPOSED recorder's socket.

        Like :meth:`start_recording` but the frames go to another process
        (:class:`~vidhub.sfu.feed.FeedWriter`), which is dropped from rather than waited
        for; :meth:`stop_recording` ends it.

        Raises:
            NotFound, Conflict, NotAcceptable: as :meth:`start_recording`.
        """
        producers = self._recordable(recorder_id, producer_id, audio, video)
        self._recorders[recorder_id] = StreamRecorder(
            recorder_id, producer_id, producers, Path(socket_path), feed=socket_path
        )

    def _recordable(
        self, recorder_id: str, producer_id: str, audio: bool, video: bool
    ) -> list[Producer]:
        if self._closed:
            raise NotAcceptable("media router is closed")
        if recorder_id in self._recorders:
            raise Conflict(f"recorder {recorder_id} already exists")
        leg = self._publishers.get(producer_id)
        if leg is None or leg.closed:
            raise NotFound(f"no producer {producer_id}")
        kinds = {"audio"} if audio else set()
        if video:
            kinds.add("video")
        producers = [p for k, p in leg.producers.items() if k in kinds and not p.closed]
        if not producers:
            raise NotFound(f"producer {producer_id} has none of the tracks to record")
        return producers

    async def stop_recording(self, recorder_id: str) -> RecordedStream | None:
        """Finish a recording (if still running) and forget it; returns what was written,
        or None for an unknown id. Works after :meth:`close` too (the file is kept)."""
        recorder = self._recorders.pop(recorder_id, None)
        if recorder is None:
            return None
        return await recorder.stop()

    # -- closing ---------------------------------------------------------------------

    async def close_producer(self, producer_id: str) -> None:
        """Close a publisher leg and every subscriber leg fed by it; idempotent."""
        self._pending.pop(producer_id, None)
        leg = self._publishers.pop(producer_id, None)
        if leg is None:
            return
        subs = [s for s in self._subscribers.values() if s.producer_leg_id == producer_id]
        for sub in subs:
            self._subscribers.pop(sub.id, None)
        await leg.close()
        await asyncio.gather(*(sub.close() for sub in subs))

    async def close_consumer(self, consumer_id: str) -> None:
        """Close a subscriber leg; idempotent."""
        self._pending.pop(consumer_id, None)
        leg = self._subscribers.pop(consumer_id, None)
        if leg is not None:
            await leg.close()

    async def close(self) -> None:
        """Close every leg (subscribers first); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pending.clear()
        subs = list(self._subscribers.values())
        self._subscribers.clear()
        await asyncio.gather(*(s.close() for s in subs))
        pubs = list(self._publishers.values())
        self._publishers.clear()
        await asyncio.gather(*(p.close() for p in pubs))
        # Every file finished before close returns; results wait for stop_recording.
        await asyncio.gather(*(r.stop() for r in self._recorders.values()))
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- observation -----------------------------------------------------------------

    def producer_ids(self) -> list[str]:
        """Ids of the open publisher legs."""
        return list(self._publishers)

    def consumer_ids(self) -> list[str]:
        """Ids of the open subscriber legs."""
        return list(self._subscribers)

    def stats(self) -> RouterStats:
        """Counters per publisher leg and per subscriber leg (tracks summed)."""
        producers = tuple(
            ProducerStats(
                producer_id=leg.id,
                packets_in=sum(p.packets_in for p in leg.producers.values()),
                bytes_in=sum(p.bytes_in for p in leg.producers.values()),
                keyframe_requests=sum(p.keyframe_requests for p in leg.producers.values()),
                plis_sent=sum(p.plis_sent for p in leg.producers.values()),
                rtx_recovered=sum(p.rtx_recovered for p in leg.producers.values()),
                packets_lost=sum(
                    aiortc_glue.receiver_packets_lost(p.receiver) for p in leg.producers.values()
                ),
                frames_in=sum(p.frames_in for p in leg.producers.values()),
            )
            for leg in self._publishers.values()
        )
        consumers = tuple(
            ConsumerStats(
                consumer_id=leg.id,
                producer_id=leg.producer_leg_id,
                connected=any(c.started for c in leg.consumers),
                packets_out=sum(c.packets_out for c in leg.consumers),
                bytes_out=sum(c.bytes_out for c in leg.consumers),
                packets_dropped=sum(c.packets_dropped for c in leg.consumers),
                retransmissions=sum(c.retransmissions for c in leg.consumers),
                rtt_ms=_mean(aiortc_glue.sender_rtt_ms(c.sender) for c in leg.consumers),
            )
            for leg in self._subscribers.values()
        )
        return RouterStats(producers=producers, consumers=consumers)
