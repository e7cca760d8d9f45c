"""Producer fan-out and Consumer rewriting with stand-in aiortc objects (sfu.md §3, §5, §6)."""

from __future__ import annotations

import asyncio
import struct
from typing import Any, cast

import pytest
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from tests.sfu.bots import wait_for
from tests.sfu.fakes import (
    FakePort,
    FakeReceiver,
    FakeSender,
    audio_packet,
    receive_parameters,
    send_parameters,
    vp8_packet,
)

from vidhub.protocol.sdp import SdpCodec
from vidhub.sfu.consumer import Consumer, ParkedTrack
from vidhub.sfu.producer import PLI_BURST, PLI_INTERVAL_S, Producer

VP8 = SdpCodec(96, "VP8", 90000)
OPUS = SdpCodec(111, "opus", 48000, 2)


async def _producer(kind: str = "video") -> tuple[Producer, FakeReceiver]:
    rx = FakeReceiver()
    producer = Producer("pub", kind, VP8 if kind == "video" else OPUS, cast(Any, rx))
    await cast(Any, rx).receive(receive_parameters(kind))  # the hooked receive
    assert rx.started_with is not None
    return producer, rx


async def _consumer(producer: Producer, **send_kw: Any) -> tuple[Consumer, FakePort, FakeSender]:
    sender = FakeSender()
    ports: list[FakePort] = []

    def factory(s: Any) -> Any:
        ports.append(FakePort(s))
        return ports[0]

    consumer = Consumer("sub", producer, cast(Any, sender), port_factory=factory)
    assert isinstance(sender.track, ParkedTrack)
    assert not consumer.started
    await sender.send(send_parameters(**send_kw))  # hooked: aiortc started the sender
    assert consumer.started and ports
    return consumer, ports[0], sender


def _parse(data: bytes, mid_id: int = 3) -> RtpPacket:
    ext = HeaderExtensionsMap()
    ext.configure(send_parameters(mid_id=mid_id))
    return RtpPacket.parse(data, ext)


async def _feed(producer: Producer, rx: FakeReceiver, packet: RtpPacket) -> None:
    await cast(Any, rx)._handle_rtp_packet(packet, arrival_time_ms=0)  # the hooked handler


async def test_video_is_gated_until_keyframe_then_rewritten() -> None:
    producer, rx = await _producer()
    consumer, port, _ = await _consumer(producer)
    await _feed(producer, rx, vp8_packet(10, 9000))
    assert port.sent == [] and consumer.packets_dropped == 1
    assert rx.handled  # aiortc's own handling still ran
    await _feed(producer, rx, vp8_packet(11, 12000, key=True))
    await _feed(producer, rx, vp8_packet(12, 12000))
    assert len(port.sent) == 2
    first, second = (_parse(d) for d in port.sent)
    assert first.payload_type == 100 and first.ssrc == 0xABCDEF01
    assert first.extensions.mid == "0"  # the subscriber's MID, not the publisher's
    assert first.extensions.abs_send_time == 0x123456  # copied
    assert (second.sequence_number - first.sequence_number) & 0xFFFF == 1
    assert (second.timestamp - first.timestamp) & 0xFFFFFFFF == 0
    assert first.payload == vp8_packet(11, 0, key=True).payload
    # The publisher's packet object is left as it was.
    assert rx.handled[-1].extensions.mid == "pubmid"
    assert [a[1] for a in port.accounted] == [first.timestamp, second.timestamp]
    assert consumer.packets_out == 2
    await producer.close()


async def test_audio_is_not_gated() -> None:
    producer, rx = await _producer("audio")
    consumer, port, _ = await _consumer(producer)
    await _feed(producer, rx, audio_packet(5, 960))
    assert len(port.sent) == 1 and consumer.packets_dropped == 0
    assert producer.keyframe_requests == 0  # audio never asks for keyframes
    await producer.close()


async def test_nack_is_answered_from_history() -> None:
    producer, rx = await _producer()
    _, port, sender = await _consumer(producer)
    await _feed(producer, rx, vp8_packet(1, 0, key=True))
    await _feed(producer, rx, vp8_packet(2, 0))
    seq = _parse(port.sent[0]).sequence_number
    await cast(Any, sender)._retransmit(seq)
    assert port.sent[-1] == port.sent[0]
    await cast(Any, sender)._retransmit((seq + 500) & 0xFFFF)  # unknown: ignored
    assert len(port.sent) == 3
    await producer.close()


async def test_rtx_is_unwrapped_and_padding_dropped() -> None:
    producer, rx = await _producer()
    _, port, _ = await _consumer(producer)
    await _feed(producer, rx, vp8_packet(100, 0, key=True))
    original = vp8_packet(101, 3000)
    rtx = RtpPacket(
        payload_type=97,
        sequence_number=7,
        timestamp=3000,
        ssrc=2222,
        payload=struct.pack("!H", 101) + original.payload,
    )
    await _feed(producer, rx, rtx)
    await _feed(producer, rx, RtpPacket(payload_type=97, sequence_number=8, ssrc=2222))
    await _feed(producer, rx, vp8_packet(102, 3000, pt=55))  # unknown payload type
    assert len(port.sent) == 2
    first, recovered = (_parse(d) for d in port.sent)
    assert recovered.payload_type == 100
    assert (recovered.sequence_number - first.sequence_number) & 0xFFFF == 1
    assert recovered.payload == original.payload
    assert producer.packets_in == 2 and producer.rtx_recovered == 1
    await producer.close()


async def test_failing_consumer_is_dropped_and_others_keep_receiving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer, rx = await _producer()
    bad, _, _ = await _consumer(producer)
    good, port, _ = await _consumer(producer)

    def boom(*args: Any) -> None:
        raise RuntimeError("consumer bug")

    bad.forward = boom  # type: ignore[method-assign]
    await _feed(producer, rx, vp8_packet(1, 0, key=True))
    await _feed(producer, rx, vp8_packet(2, 0))
    assert len(port.sent) == 2 and good.packets_out == 2
    assert producer.consumers == (good,)
    assert "consumer bug" in caplog.text
    await producer.close()


async def test_consumers_with_different_mids_get_their_own_template() -> None:
    producer, rx = await _producer()
    _, port_a, _ = await _consumer(producer, mid="0", mid_id=3)
    _, port_b, _ = await _consumer(producer, mid="1", mid_id=3)
    await _feed(producer, rx, vp8_packet(1, 0, key=True))
    assert _parse(port_a.sent[0]).extensions.mid == "0"
    assert _parse(port_b.sent[0]).extensions.mid == "1"
    await producer.close()


async def test_pli_requests_are_coalesced_not_dropped() -> None:
    producer, rx = await _producer()
    await _feed(producer, rx, vp8_packet(1, 0, key=True))  # learn the SSRC
    producer.request_keyframe()
    await wait_for(rx.pli_event, 1.0)
    rx.pli_event.clear()
    producer.request_keyframe()  # inside the window: deferred
    producer.request_keyframe()  # rides on the deferred one
    await wait_for(rx.pli_event, 2.0)
    assert len(rx.plis) == 2
    assert rx.plis[0][0] == 1111
    assert rx.plis[1][1] - rx.plis[0][1] >= PLI_INTERVAL_S - 0.01
    assert producer.keyframe_requests == 3 and producer.plis_sent == 2
    await producer.close()


async def test_answered_pli_lets_the_next_request_go_at_once_within_a_burst_budget() -> None:
    """A subscriber connecting just after a keyframe does not wait for the window's end."""
    producer, rx = await _producer()
    await _feed(producer, rx, vp8_packet(1, 0))  # learn the SSRC
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    seq = 2
    for _ in range(PLI_BURST):
        producer.request_keyframe()  # sent at once: the previous PLI (if any) was answered
        assert producer._pli_handle is None
        await _feed(producer, rx, vp8_packet(seq, seq * 3000, key=True))  # its keyframe
        seq += 1
    assert producer.plis_sent == PLI_BURST
    # Budget spent: the next request waits, and is still served (never dropped).
    producer.request_keyframe()
    assert producer._pli_handle is not None and producer.plis_sent == PLI_BURST
    await asyncio.gather(*producer._tasks)  # the PLIs already sent reach the receiver
    assert len(rx.plis) == PLI_BURST
    rx.pli_event.clear()
    await wait_for(rx.pli_event, PLI_BURST * PLI_INTERVAL_S + 1.0)
    assert producer.plis_sent == PLI_BURST + 1
    assert rx.plis[-1][1] - t0 >= PLI_BURST * PLI_INTERVAL_S - 0.01
    await producer.close()


async def test_unanswered_pli_is_not_repeated_inside_the_window() -> None:
    producer, rx = await _producer()
    await _feed(producer, rx, vp8_packet(1, 0))
    producer.request_keyframe()
    await _feed(producer, rx, vp8_packet(2, 3000))  # no keyframe yet
    producer.request_keyframe()  # rides on the first PLI; fallback at the window's end
    assert producer.plis_sent == 1 and producer._pli_handle is not None
    await producer.close()


async def test_subscriber_pli_and_start_request_keyframes() -> None:
    producer, rx = await _producer()
    await _feed(producer, rx, vp8_packet(1, 0, key=True))
    _, _, sender = await _consumer(producer)  # start: one request
    sender._send_keyframe()  # subscriber PLI/FIR
    assert producer.keyframe_requests == 2
    await producer.close()


async def test_close_cascades_and_is_idempotent() -> None:
    producer, rx = await _producer()
    consumer, port, _ = await _consumer(producer)
    orphaned: list[Consumer] = []
    consumer.on_producer_closed = orphaned.append
    producer.request_keyframe()  # nothing received yet: no PLI, nothing pending
    await producer.close()
    await producer.close()
    assert orphaned == [consumer] and producer.consumers == ()
    await _feed(producer, rx, vp8_packet(1, 0, key=True))
    assert port.sent == []
    consumer.close()
    leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert leftover == []


async def test_resync_regates_and_keeps_sequence_contiguous() -> None:
    producer, rx = await _producer()
    consumer, port, _ = await _consumer(producer)
    await _feed(producer, rx, vp8_packet(1, 0, key=True))
    consumer.resync()
    await _feed(producer, rx, vp8_packet(500, 3000))  # dropped: waiting for a keyframe
    await _feed(producer, rx, vp8_packet(900, 6000, key=True))
    a, b = (_parse(d) for d in port.sent)
    assert (b.sequence_number - a.sequence_number) & 0xFFFF == 1
    assert (b.timestamp - a.timestamp) & 0xFFFFFFFF == 6000
    await producer.close()


async def test_disconnected_port_counts_drops() -> None:
    producer, rx = await _producer()
    consumer, port, _ = await _consumer(producer)
    port.connected = False
    await _feed(producer, rx, vp8_packet(1, 0, key=True))
    assert consumer.packets_out == 0 and consumer.packets_dropped == 1
    await producer.close()


async def test_deferred_pli_is_cancelled_by_an_arriving_keyframe() -> None:
    producer, rx = await _producer()
    await _feed(producer, rx, vp8_packet(1, 0))  # learn the SSRC
    consumer, port, _ = await _consumer(producer)  # start: one PLI at once
    await wait_for(rx.pli_event, 1.0)
    producer.request_keyframe()  # inside the window: deferred
    assert producer._pli_handle is not None
    await _feed(producer, rx, vp8_packet(2, 3000, key=True))  # the publisher's keyframe
    assert producer._pli_handle is None and producer.plis_saved == 1
    assert consumer.keyframes_forwarded == 1 and len(port.sent) == 1
    assert len(rx.plis) == 1
    await producer.close()


async def test_publisher_ssrc_change_restarts_the_mapping() -> None:
    producer, rx = await _producer()
    _, port, _ = await _consumer(producer)
    await _feed(producer, rx, vp8_packet(100, 0, key=True))
    await _feed(producer, rx, vp8_packet(40000, 3000, ssrc=4444))  # new stream, not a key
    assert len(port.sent) == 1  # gated again
    await _feed(producer, rx, vp8_packet(40001, 6000, key=True, ssrc=4444))
    a, b = (_parse(d) for d in port.sent)
    assert (b.sequence_number - a.sequence_number) & 0xFFFF == 1
    assert b.ssrc == a.ssrc
    await producer.close()


async def test_audio_ssrc_change_continues_the_sequence() -> None:
    producer, rx = await _producer("audio")
    _, port, _ = await _consumer(producer)
    await _feed(producer, rx, audio_packet(7, 960))
    await _feed(producer, rx, audio_packet(30000, 1920, ssrc=5555))
    a, b = (_parse(d) for d in port.sent)
    assert (b.sequence_number - a.sequence_number) & 0xFFFF == 1
    await producer.close()
