"""Stand-ins for aiortc's receiver and sender, and a recording write port.

They expose exactly the attributes :mod:`vidhub.sfu.aiortc_glue` hooks, so Producer and
Consumer logic runs without a PeerConnection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpDecodingParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpReceiveParameters,
    RTCRtpRtxParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RtpPacket

__all__ = [
    "FakePort",
    "FakeReceiver",
    "FakeSender",
    "audio_packet",
    "receive_parameters",
    "send_parameters",
    "vp8_packet",
]

MID_URI = "urn:ietf:params:rtp-hdrext:sdes:mid"
AST_URI = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
RTX = RTCRtpCodecParameters(
    mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)


def receive_parameters(kind: str = "video", ssrc: int = 1111, rtx: int = 2222) -> Any:
    if kind == "audio":
        return RTCRtpReceiveParameters(
            codecs=[OPUS], encodings=[RTCRtpDecodingParameters(ssrc=ssrc, payloadType=111)]
        )
    return RTCRtpReceiveParameters(
        codecs=[VP8, RTX],
        encodings=[
            RTCRtpDecodingParameters(ssrc=ssrc, payloadType=96, rtx=RTCRtpRtxParameters(ssrc=rtx))
        ],
    )


def send_parameters(pt: int = 100, mid: str = "0", mid_id: int = 3) -> Any:
    codec = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=pt)
    return RTCRtpSendParameters(
        codecs=[codec],
        headerExtensions=[
            RTCRtpHeaderExtensionParameters(id=mid_id, uri=MID_URI),
            RTCRtpHeaderExtensionParameters(id=4, uri=AST_URI),
        ],
        muxId=mid,
        rtcp=RTCRtcpParameters(cname="test"),
    )


def vp8_packet(
    seq: int, ts: int, *, key: bool = False, pt: int = 96, ssrc: int = 1111
) -> RtpPacket:
    payload = bytes([0x10, 0x00 if key else 0x01]) + b"frame"
    pkt = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload)
    pkt.extensions.mid = "pubmid"
    pkt.extensions.abs_send_time = 0x123456
    return pkt


def audio_packet(seq: int, ts: int, ssrc: int = 3333) -> RtpPacket:
    return RtpPacket(payload_type=111, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=b"op")


class FakeReceiver:
    """Records what aiortc's receiver would have been asked to do."""

    def __init__(self) -> None:
        self.handled: list[RtpPacket] = []
        self.plis: list[tuple[int, float]] = []
        self.pli_event = asyncio.Event()
        self.started_with: Any = None

    async def _handle_rtp_packet(self, packet: RtpPacket, arrival_time_ms: int) -> None:
        self.handled.append(packet)

    async def receive(self, parameters: Any) -> None:
        self.started_with = parameters

    async def _send_rtcp_pli(self, media_ssrc: int) -> None:
        self.plis.append((media_ssrc, asyncio.get_running_loop().time()))
        self.pli_event.set()


class FakeSender:
    """Has the sender attributes the glue hooks; ``send`` does nothing by itself."""

    def __init__(self) -> None:
        self.track: Any = None
        self._ssrc = 0xABCDEF01
        self.transport: Any = None

    def replaceTrack(self, track: Any) -> None:
        self.track = track

    async def send(self, parameters: Any) -> None:
        pass

    async def _retransmit(self, sequence_number: int) -> None:
        raise AssertionError("must be overridden")

    def _send_keyframe(self) -> None:
        raise AssertionError("must be overridden")


class FakePort:
    """A SenderPort that records written packets."""

    def __init__(self, sender: Any) -> None:
        self.ssrc: int = sender._ssrc
        self.sent: list[bytes] = []
        self.accounted: list[tuple[int, int, int]] = []
        self.connected = True

    def write(self, data: bytes) -> bool:
        if not self.connected:
            return False
        self.sent.append(data)
        return True

    def account(self, payload_bytes: int, rtp_timestamp: int, ntp_time: int) -> None:
        self.accounted.append((payload_bytes, rtp_timestamp, ntp_time))
