"""SenderPort: the raw write path of a subscriber leg (sfu.md §3.2), with stand-in transports."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import aioice
import aioice.ice
import pylibsrtp
from aiortc.rtcdtlstransport import State

from vidhub.sfu.aiortc_glue import SenderPort


class _Udp:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, tuple[str, int]]] = []
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sent.append((data, addr))


class _Srtp:
    def __init__(self) -> None:
        self.refuse = False

    def protect(self, data: bytes) -> bytes:
        if self.refuse:
            raise pylibsrtp.Error("replay check failed (index too old)")
        return b"P" + data


def _pair(udp: _Udp, port: int) -> aioice.ice.CandidatePair:
    proto = aioice.ice.StunProtocol(cast(Any, None))
    proto.transport = cast(Any, udp)
    remote = aioice.Candidate("1", 1, "udp", 1, "127.0.0.1", port, "host")
    return aioice.ice.CandidatePair(proto, remote)


def _sender() -> tuple[Any, dict[int, Any], _Srtp]:
    nominated: dict[int, Any] = {}
    srtp = _Srtp()
    dtls = SimpleNamespace(
        _state=State.CONNECTED,
        _tx_srtp=srtp,
        transport=SimpleNamespace(_connection=SimpleNamespace(_nominated=nominated)),
    )
    sender = SimpleNamespace(
        transport=dtls,
        _ssrc=42,
        _RTCRtpSender__packet_count=0,
        _RTCRtpSender__octet_count=0,
        _RTCRtpSender__rtp_timestamp=0,
        _RTCRtpSender__ntp_timestamp=0,
    )
    return sender, nominated, srtp


async def test_writes_follow_the_nominated_pair_and_refusals_are_not_errors() -> None:
    sender, nominated, srtp = _sender()
    port = SenderPort(cast(Any, sender))
    assert port.ssrc == 42
    assert port.write(b"a") is False  # no nominated pair yet
    first, second = _Udp(), _Udp()
    nominated[1] = _pair(first, 5000)
    assert port.write(b"b") is True
    assert first.sent == [(b"Pb", ("127.0.0.1", 5000))]
    nominated[1] = _pair(second, 6000)  # aioice nominated another pair
    assert port.write(b"c") is True
    assert second.sent == [(b"Pc", ("127.0.0.1", 6000))] and len(first.sent) == 1
    srtp.refuse = True  # e.g. a retransmission older than the SRTP replay window
    assert port.write(b"d") is False
    srtp.refuse = False
    second.closing = True
    assert port.write(b"e") is False
    second.closing = False
    sender.transport._state = State.CLOSED
    assert port.write(b"f") is False
    sender.transport._state = State.CONNECTED
    nominated.clear()  # aioice closed the connection
    assert port.write(b"g") is False
    assert len(second.sent) == 1
    port.account(100, 9000, 12345)
    assert sender._RTCRtpSender__packet_count == 1
    assert sender._RTCRtpSender__octet_count == 100
    assert sender._RTCRtpSender__rtp_timestamp == 9000
    assert sender._RTCRtpSender__ntp_timestamp == 12345
