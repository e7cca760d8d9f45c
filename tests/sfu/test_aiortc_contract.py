"""Contract test for the aiortc / aioice internals vidhub's SFU relies on (specs/sfu.md §10).

If this fails after an upgrade, re-validate ``vidhub/sfu/aiortc_glue.py`` against the new
release (or fall back to frame-level forwarding, sfu.md §3.4) before changing the pin.
"""

from __future__ import annotations

import inspect
import queue
import re

import aioice.ice
import aiortc
import aiortc.rtcrtpreceiver
import aiortc.rtp
import pylibsrtp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport, State

from vidhub.sfu import aiortc_glue


def _params(fn: object) -> list[str]:
    return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]


def test_validated_minor_version() -> None:
    major_minor = ".".join(aiortc.__version__.split(".")[:2])
    assert major_minor == aiortc_glue.VALIDATED_AIORTC, (
        f"aiortc {aiortc.__version__} is not the validated {aiortc_glue.VALIDATED_AIORTC}: "
        "re-run the SFU suite and re-check every hook in vidhub/sfu/aiortc_glue.py"
    )


def test_receiver_hooks() -> None:
    assert callable(aiortc.rtcrtpreceiver.get_decoder)
    assert _params(RTCRtpReceiver._handle_rtp_packet) == ["self", "packet", "arrival_time_ms"]
    assert _params(RTCRtpReceiver._send_rtcp_pli) == ["self", "media_ssrc"]
    assert _params(RTCRtpReceiver.receive) == ["self", "parameters"]
    # The decoder thread reads its input from this per-instance queue, given at start.
    assert _params(aiortc.rtcrtpreceiver.decoder_worker)[:2] == ["loop", "input_q"]
    src = inspect.getsource(RTCRtpReceiver.receive)
    assert "self.__decoder_queue" in src
    assert "self.__decoder_queue.put" in inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    # The hook is a plain function returning aiortc's coroutine: the DTLS loop must await
    # whatever the (instance) attribute returns.
    dtls_src = inspect.getsource(RTCDtlsTransport._handle_rtp_data)
    assert "await receiver._handle_rtp_packet(" in dtls_src


def test_sender_hooks() -> None:
    assert _params(RTCRtpSender._send_keyframe) == ["self"]
    assert _params(RTCRtpSender._retransmit) == ["self", "sequence_number"]
    assert _params(RTCRtpSender.send) == ["self", "parameters"]
    # Senders are started through the instance attribute (so a per-instance wrap is seen).
    pc_src = inspect.getsource(RTCPeerConnection)
    assert "await transceiver.sender.send(" in pc_src
    assert "await transceiver.receiver.receive(" in pc_src
    rtcp_src = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self._send_keyframe()" in rtcp_src and "await self._retransmit(" in rtcp_src


async def test_private_attributes_exist_on_live_objects() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        t = pc.addTransceiver("video", direction="sendrecv")
        sender, receiver = t.sender, t.receiver
        for name in (
            "_RTCRtpSender__rtp_header_extensions_map",
            "_RTCRtpSender__packet_count",
            "_RTCRtpSender__octet_count",
            "_RTCRtpSender__rtp_timestamp",
            "_RTCRtpSender__ntp_timestamp",
            "_RTCRtpSender__rtt",
            "_ssrc",
        ):
            assert hasattr(sender, name), name
        # the stats the dashboard plots (aiortc_glue.receiver_packets_lost / sender_rtt_ms)
        assert aiortc_glue.receiver_packets_lost(receiver) == 0
        assert aiortc_glue.sender_rtt_ms(sender) is None
        assert isinstance(receiver._RTCRtpReceiver__decoder_queue, queue.Queue)  # type: ignore[attr-defined]
        dtls = sender.transport
        assert isinstance(dtls, RTCDtlsTransport)
        assert dtls._state is State.NEW
        assert hasattr(dtls, "_tx_srtp")
        assert isinstance(dtls.transport._connection._nominated, dict)
    finally:
        await pc.close()


def test_rtp_and_ice_helpers() -> None:
    assert _params(aiortc.rtp.unwrap_rtx) == ["rtx", "payload_type", "ssrc"]
    assert _params(aiortc.rtp.HeaderExtensionsMap.configure) == ["self", "parameters"]
    assert _params(aioice.ice.get_host_addresses) == ["use_ipv4", "use_ipv6"]
    # aioice must look the function up at gather time (module global), not bind it early.
    gather_src = inspect.getsource(aioice.ice.Connection)
    assert "get_host_addresses(" in gather_src
    assert hasattr(aioice.ice, "StunProtocol")
    assert "send_data" in dir(aioice.ice.StunProtocol)
    # SenderPort keeps a reference to the nominated-pair dict: aioice must only ever mutate
    # it (clear / item assignment), never rebind it after __init__.
    conn_src = inspect.getsource(aioice.ice.Connection)
    assert len(re.findall(r"self\._nominated\s*(?::[^=\n]*)?=[^=]", conn_src)) == 1
    assert isinstance(aioice.ice.CandidatePair.remote_addr, property)
    # A refused packet (e.g. too old for the replay window) raises this, nothing broader.
    assert issubclass(pylibsrtp.Error, Exception)


def test_install_host_addresses_filters_by_family(monkeypatch: pytest.MonkeyPatch) -> None:
    # Restored afterwards: the process-wide setting and aioice's function.
    monkeypatch.setattr(aiortc_glue, "_host_addresses", aiortc_glue._host_addresses)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    aiortc_glue.install_host_addresses(["127.0.0.1", "::1"])
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(False, True) == ["::1"]
    assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    assert aiortc_glue.host_addresses() == ("127.0.0.1", "::1")


def test_without_configuration_aioice_discovery_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc_glue, "_host_addresses", None)
    monkeypatch.setattr(aioice.ice, "get_host_addresses", lambda v4, v6: ["192.0.2.10"])
    assert aiortc_glue.host_addresses() == ("192.0.2.10",)
