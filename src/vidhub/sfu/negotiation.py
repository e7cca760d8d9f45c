"""Pure codec negotiation over aiortc capability data (``specs/sfu.md`` §7).

Maps the SFU's codec choice (an :class:`~vidhub.protocol.sdp.SdpCodec` from the SDP) to the
``RTCRtpCodecCapability`` list a transceiver's ``setCodecPreferences`` needs, so aiortc
answers with exactly that codec (plus its RTX for video) and nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiortc import RTCRtpCodecCapability, RTCRtpSender

from vidhub.protocol.sdp import SdpCodec

__all__ = ["capabilities", "preferences_for"]


def capabilities(kind: str) -> list[RTCRtpCodecCapability]:
    """aiortc's codec capabilities for ``kind`` (``audio`` or ``video``)."""
    caps = RTCRtpSender.getCapabilities(kind)
    return list(caps.codecs) if caps is not None else []


def _matches(cap: RTCRtpCodecCapability, kind: str, codec: SdpCodec) -> bool:
    if cap.mimeType.lower() != f"{kind}/{codec.name}".lower():
        return False
    if codec.name.upper() != "H264":
        return True
    params = cap.parameters or {}
    pli = (codec.param("profile-level-id") or "").lower()
    return str(params.get("packetization-mode")) == (codec.param("packetization-mode") or "0") and (
        str(params.get("profile-level-id", "")).lower()[:4] == pli[:4]
    )


def preferences_for(
    kind: str, codec: SdpCodec, caps: Sequence[RTCRtpCodecCapability] | None = None
) -> list[RTCRtpCodecCapability]:
    """Codec preferences that pin a transceiver to ``codec`` (and its RTX, for video).

    Args:
        kind: ``audio`` or ``video``.
        codec: the codec chosen for the producer.
        caps: capabilities to choose from; aiortc's own by default.

    Returns:
        ``[codec capability]`` or ``[codec capability, rtx]``; empty when aiortc has no
        capability for ``codec`` (the caller must refuse the leg).
    """
    pool = list(caps) if caps is not None else capabilities(kind)
    chosen = [c for c in pool if _matches(c, kind, codec)][:1]
    if chosen and kind == "video":
        chosen += [c for c in pool if c.mimeType.lower() == "video/rtx"][:1]
    return chosen
