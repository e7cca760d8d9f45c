"""Pure SDP helpers for the SFU: read m-sections, pick a pass-through codec, police candidates.

Nothing here opens a socket or touches aiortc: each function maps SDP text to plain data
(or SDP text to SDP text), so the negotiation rules of ``specs/sfu.md`` §4 and §7 are
testable without a PeerConnection.

* :func:`parse_media_sections` reads what an offer or answer says per m-section (kind, MID,
  direction, codecs in preference order).
* :func:`pick_codec` chooses the single codec a publisher leg is answered with: the first
  offered codec the SFU can forward, optionally restricted to a forced video codec. H.264 is
  accepted only as (constrained) baseline with packetization-mode 1, the only profiles aiortc
  negotiates.
* :func:`candidate_addresses`, :func:`check_candidates` and :func:`announce_address` police
  and rewrite the ``a=candidate`` lines of the server's own answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "FORWARDABLE",
    "MAX_M_SECTIONS",
    "MAX_SDP_CHARS",
    "MediaSection",
    "SdpCodec",
    "SdpError",
    "announce_address",
    "candidate_addresses",
    "check_candidates",
    "drop_mdns_candidates",
    "h264_profile_ok",
    "parse_media_sections",
    "pick_codec",
]

#: Codec names (upper case) the SFU forwards, per kind.
FORWARDABLE: dict[str, tuple[str, ...]] = {"video": ("VP8", "H264"), "audio": ("OPUS",)}

_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")

#: Largest SDP accepted from a client, in characters. A browser's offer for one audio and one
#: video track (simulcast, every codec Chromium knows, a dozen candidates) is 5-12 kB.
MAX_SDP_CHARS = 64 * 1024
#: Most m-sections accepted in one SDP: an OpenVidu leg carries one audio and one video track.
MAX_M_SECTIONS = 8


class SdpError(ValueError):
    """The SDP text is malformed or unusable; the message says why (safe to show a client)."""


@dataclass(frozen=True, slots=True)
class SdpCodec:
    """One ``a=rtpmap`` entry with its ``a=fmtp`` parameters."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int | None = None
    params: tuple[tuple[str, str], ...] = ()

    @property
    def is_rtx(self) -> bool:
        return self.name.upper() == "RTX"

    def param(self, key: str) -> str | None:
        """The fmtp value for ``key`` (case-insensitive key), or None."""
        low = key.lower()
        for k, v in self.params:
            if k.lower() == low:
                return v
        return None


@dataclass(frozen=True, slots=True)
class MediaSection:
    """What one m-section says: kind, MID, direction and its codecs in preference order."""

    index: int
    kind: str
    mid: str | None
    direction: str
    port: int
    codecs: tuple[SdpCodec, ...] = field(default=())

    @property
    def media_codecs(self) -> tuple[SdpCodec, ...]:
        """Codecs other than RTX (and other repair formats), in offer order."""
        return tuple(c for c in self.codecs if c.name.upper() not in ("RTX", "RED", "ULPFEC"))

    def rtx_for(self, payload_type: int) -> SdpCodec | None:
        """The RTX codec whose ``apt`` names ``payload_type``, if any."""
        for c in self.codecs:
            if c.is_rtx and c.param("apt") == str(payload_type):
                return c
        return None


def _parse_fmtp(text: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        out.append((key.strip(), value.strip()) if sep else (key.strip(), ""))
    return tuple(out)


@dataclass(slots=True)
class _RawSection:
    kind: str
    port: int
    fmts: list[int]
    mid: str | None = None
    direction: str | None = None
    rtpmap: dict[int, tuple[str, int, int | None]] = field(default_factory=dict)
    fmtp: dict[int, tuple[tuple[str, str], ...]] = field(default_factory=dict)


def parse_media_sections(sdp: str) -> list[MediaSection]:
    """Read the m-sections of an SDP offer or answer.

    Args:
        sdp: SDP text (``\\r\\n`` or ``\\n`` line ends).

    Returns:
        One :class:`MediaSection` per ``m=`` line, in order. Session-level direction
        attributes apply to m-sections that carry none.

    Raises:
        SdpError: no ``v=0`` line, a malformed ``m=``/``a=rtpmap``/``a=fmtp`` line, no
            m-section, more than :data:`MAX_SDP_CHARS` characters or more than
            :data:`MAX_M_SECTIONS` m-sections (checked before anything else reads the SDP).
    """
    if not isinstance(sdp, str) or not sdp.lstrip().startswith("v=0"):
        raise SdpError("SDP must start with v=0")
    if len(sdp) > MAX_SDP_CHARS:
        raise SdpError(f"SDP larger than {MAX_SDP_CHARS} characters")
    session_dir = "sendrecv"
    raw: list[_RawSection] = []
    cur: _RawSection | None = None
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            if len(parts) < 4:
                raise SdpError(f"malformed m-line: {line[:80]!r}")
            try:
                port = int(parts[1].split("/")[0])
                fmts = [int(p) for p in parts[3:]] if parts[0] in ("audio", "video") else []
            except ValueError as exc:
                raise SdpError(f"malformed m-line: {line[:80]!r}") from exc
            if len(raw) >= MAX_M_SECTIONS:
                raise SdpError(f"SDP has more than {MAX_M_SECTIONS} m-sections")
            cur = _RawSection(parts[0], port, fmts)
            raw.append(cur)
            continue
        if not line.startswith("a="):
            continue
        attr = line[2:]
        if attr in _DIRECTIONS:
            if cur is None:
                session_dir = attr
            else:
                cur.direction = attr
        elif cur is None:
            continue
        elif attr.startswith("mid:"):
            cur.mid = attr[4:].strip()
        elif attr.startswith("rtpmap:"):
            pt_text, _, enc = attr[7:].partition(" ")
            bits = enc.strip().split("/")
            try:
                pt = int(pt_text)
                clock = int(bits[1])
                channels = int(bits[2]) if len(bits) > 2 and bits[2] else None
            except (ValueError, IndexError) as exc:
                raise SdpError(f"malformed rtpmap: {line[:80]!r}") from exc
            cur.rtpmap[pt] = (bits[0], clock, channels)
        elif attr.startswith("fmtp:"):
            pt_text, _, params = attr[5:].partition(" ")
            try:
                pt = int(pt_text)
            except ValueError as exc:
                raise SdpError(f"malformed fmtp: {line[:80]!r}") from exc
            cur.fmtp[pt] = _parse_fmtp(params)
    if not raw:
        raise SdpError("SDP has no m-section")
    return [
        MediaSection(
            index=i,
            kind=r.kind,
            mid=r.mid,
            direction=r.direction or session_dir,
            port=r.port,
            codecs=tuple(
                SdpCodec(pt, *r.rtpmap[pt], r.fmtp.get(pt, ())) for pt in r.fmts if pt in r.rtpmap
            ),
        )
        for i, r in enumerate(raw)
    ]


def h264_profile_ok(codec: SdpCodec) -> bool:
    """True for H.264 baseline / constrained baseline with packetization-mode 1.

    These are the only H.264 variants aiortc negotiates (profile-level-id 42001f / 42e01f).
    """
    if codec.param("packetization-mode") != "1":
        return False
    pli = (codec.param("profile-level-id") or "").lower()
    return len(pli) == 6 and pli[:4] in ("4200", "42e0")


def _forwardable(codec: SdpCodec, kind: str) -> bool:
    name = codec.name.upper()
    if name not in FORWARDABLE.get(kind, ()):
        return False
    return name != "H264" or h264_profile_ok(codec)


def pick_codec(section: MediaSection, forced_video_codec: str | None = None) -> SdpCodec | None:
    """Choose the one codec a publisher m-section is answered with.

    Args:
        section: the publisher's offered m-section.
        forced_video_codec: ``"VP8"`` or ``"H264"`` to allow only that video codec; None,
            ``""``, ``"MEDIA_SERVER_PREFERRED"`` or ``"NONE"`` keep the offer's order.

    Returns:
        The first forwardable codec in offer order, or None when there is none.
    """
    forced = (forced_video_codec or "").upper()
    if forced in ("", "MEDIA_SERVER_PREFERRED", "NONE"):
        forced = ""
    for codec in section.media_codecs:
        if not _forwardable(codec, section.kind):
            continue
        if section.kind == "video" and forced and codec.name.upper() != forced:
            continue
        return codec
    return None


def _candidate_type(bits: list[str]) -> str:
    for i in range(5, len(bits) - 1):
        if bits[i] == "typ":
            return bits[i + 1]
    return ""


def candidate_addresses(sdp: str, kind: str | None = None) -> list[str]:
    """The connection address of every ``a=candidate`` line, in order.

    Args:
        sdp: SDP text.
        kind: only candidates of this type (``host``, ``srflx``, ``relay``...); None: all.
    """
    out: list[str] = []
    for line in sdp.splitlines():
        line = line.strip()
        if line.startswith("a=candidate:"):
            bits = line.split()
            if len(bits) >= 5 and (kind is None or _candidate_type(bits) == kind):
                out.append(bits[4])
    return out


def check_candidates(sdp: str, allowed: Iterable[str]) -> None:
    """Refuse a local SDP whose host candidates are outside the ``allowed`` addresses.

    Server-reflexive and relayed candidates (from operator-configured STUN/TURN servers)
    carry the public or relay address by nature and are not checked.

    Raises:
        SdpError: naming the first host candidate address not in ``allowed``.
    """
    allowed_set = set(allowed)
    for addr in candidate_addresses(sdp, "host"):
        if addr not in allowed_set:
            raise SdpError(f"local candidate on unexpected address {addr}")


def drop_mdns_candidates(sdp: str) -> str:
    """Remove ``a=candidate`` lines whose address is an mDNS name (``*.local``).

    Resolving them needs multicast, which a server may not have (and aioice would wait on
    it). The browser is reached anyway: its connectivity checks reveal its address as a
    peer-reflexive candidate.
    """
    sep = "\r\n" if "\r\n" in sdp else "\n"
    kept = []
    for line in sdp.split(sep):
        if line.startswith("a=candidate:"):
            bits = line.split()
            if len(bits) >= 5 and bits[4].lower().endswith(".local"):
                continue
        kept.append(line)
    return sep.join(kept)


def announce_address(sdp: str, announced: str) -> str:
    """Rewrite every host candidate's address (and each ``c=`` line) to ``announced``.

    For a server behind 1:1 NAT: sockets stay bound to the local media addresses while the
    SDP tells peers the public one. Ports, and srflx/relay candidates, are unchanged.
    """
    sep = "\r\n" if "\r\n" in sdp else "\n"
    out: list[str] = []
    family = "IP6" if ":" in announced else "IP4"
    for line in sdp.split(sep):
        if line.startswith("a=candidate:"):
            bits = line.split(" ")
            if len(bits) >= 5 and _candidate_type(bits) == "host":
                bits[4] = announced
                line = " ".join(bits)
        elif line.startswith("c=IN "):
            line = f"c=IN {family} {announced}"
        out.append(line)
    return sep.join(out)
