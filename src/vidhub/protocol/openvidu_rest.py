"""OpenVidu 2.x REST bodies: parsing request JSON into typed properties, and rendering them.

Implements the validation rules of openvidu.md §1.6 (POST /sessions), §1.7 (POST
/sessions/{id}/connection), §1.8 (POST /tokens) and §1.5 #11 (POST /signal). A JSON ``null``
always means "not provided". Every problem raises :class:`vidhub.errors.BadRequest` with
OpenVidu's message; nothing here performs I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from vidhub.errors import BadRequest
from vidhub.ids import CUSTOM_SESSION_ID_RE, ConnectionId, SessionId

__all__ = [
    "ConnectionProperties",
    "IceServer",
    "KurentoOptions",
    "RecordingProperties",
    "SessionProperties",
    "SignalRequest",
    "parse_connection_properties",
    "parse_ice_servers",
    "parse_session_properties",
    "parse_signal",
    "parse_token_request",
    "render_ice_server",
    "render_kurento_options",
    "render_recording_properties",
    "turn_rest_credentials",
]

MEDIA_MODES = ("ROUTED", "RELAYED")
RECORDING_MODES = ("MANUAL", "ALWAYS")
VIDEO_CODECS = ("MEDIA_SERVER_PREFERRED", "NONE", "VP8", "VP9", "H264")
CONNECTION_TYPES = ("WEBRTC", "IPCAM")
ROLES = ("SUBSCRIBER", "PUBLISHER", "MODERATOR")
OUTPUT_MODES = ("COMPOSED", "INDIVIDUAL", "COMPOSED_QUICK_START")
LAYOUTS = (
    "BEST_FIT",
    "CUSTOM",
    "PICTURE_IN_PICTURE",
    "VERTICAL_PRESENTATION",
    "HORIZONTAL_PRESENTATION",
)
_RESOLUTION_RE = re.compile(r"^(?!(0))(([0-9]{3})|1([0-9]{3}))x(?!0)(([0-9]{3})|1([0-9]{3}))$")
_REC_NAME_RE = re.compile(r"[a-zA-Z0-9_\-~]+")
_KURENTO_INT_KEYS = (
    "videoMaxRecvBandwidth",
    "videoMinRecvBandwidth",
    "videoMaxSendBandwidth",
    "videoMinSendBandwidth",
)


def _type_error(name: str) -> BadRequest:
    return BadRequest(f"Type error in some parameter: '{name}'")


def _body(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    return body


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, str):
        raise _type_error(key)
    return v


def _opt_bool(d: dict[str, Any], key: str) -> bool | None:
    v = d.get(key)
    if v is None:
        return None
    if not isinstance(v, bool):
        raise _type_error(key)
    return v


_INT64 = range(-(2**63), 2**63)


def _opt_int(d: dict[str, Any], key: str) -> int | None:
    """An integer (``25.0`` counts); beyond 64 bits it is a type error, as in Java."""
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or v not in _INT64:
        raise _type_error(key)
    return v


def _enum(d: dict[str, Any], key: str, allowed: tuple[str, ...], default: str, msg: str) -> str:
    v = _opt_str(d, key)
    if v is None:
        return default
    if v not in allowed:
        raise BadRequest(msg.format(v))
    return v


@dataclass(frozen=True, slots=True)
class RecordingProperties:
    """RecordingProperties JSON (openvidu.md §1.9)."""

    name: str = ""
    has_audio: bool = True
    has_video: bool = True
    output_mode: str = "COMPOSED"
    recording_layout: str = "BEST_FIT"
    resolution: str = "1280x720"
    frame_rate: int = 25
    shm_size: int = 536870912
    custom_layout: str = ""
    ignore_failed_streams: bool = False
    media_node: str | None = None


def parse_recording_properties(
    raw: Any, base: RecordingProperties | None = None
) -> RecordingProperties:
    """Parse a RecordingProperties object; unspecified keys come from ``base``.

    Raises:
        BadRequest: on any wrong type, enum or range (400, as for POST /sessions).
    """
    base = base or RecordingProperties()
    if raw is None:
        return base
    if not isinstance(raw, dict):
        raise _type_error("defaultRecordingProperties")
    name = _opt_str(raw, "name")
    if name and not _REC_NAME_RE.fullmatch(name):
        raise BadRequest("Parameter 'name' is wrong. Must be an alphanumeric string [a-zA-Z0-9_-~]")
    out = _enum(
        raw,
        "outputMode",
        OUTPUT_MODES,
        base.output_mode,
        "Parameter 'outputMode' {} is not defined",
    )
    layout = _enum(
        raw,
        "recordingLayout",
        LAYOUTS,
        base.recording_layout,
        "Parameter 'recordingLayout' {} is not defined",
    )
    resolution = _opt_str(raw, "resolution")
    if resolution is not None and not _RESOLUTION_RE.match(resolution):
        raise BadRequest(
            "Wrong 'resolution' parameter. Acceptable values from 100 to 1999 "
            "for both width and height"
        )
    frame_rate = _opt_int(raw, "frameRate")
    if frame_rate is not None and not 1 <= frame_rate <= 120:
        raise BadRequest("Wrong 'frameRate' parameter. Acceptable values are [1,120]")
    shm = _opt_int(raw, "shmSize")
    if shm is not None and shm < 134217728:
        raise BadRequest("Wrong 'shmSize' parameter. Must be 134217728 (128 MB) minimum")
    has_audio = _opt_bool(raw, "hasAudio")
    has_video = _opt_bool(raw, "hasVideo")
    ha = base.has_audio if has_audio is None else has_audio
    hv = base.has_video if has_video is None else has_video
    if not ha and not hv:
        raise BadRequest(
            'Cannot start a recording with both "hasAudio" and "hasVideo" set to false'
        )
    media_node = raw.get("mediaNode")
    node_id: str | None = base.media_node
    if media_node is not None:
        if isinstance(media_node, dict):
            nid = media_node.get("id")
            if not isinstance(nid, str):
                raise BadRequest("Parameter 'mediaNode' must contain an 'id' string")
            node_id = nid
        elif isinstance(media_node, str):
            node_id = media_node
        else:
            raise _type_error("mediaNode")
    return replace(
        base,
        name=base.name if name is None else name,
        has_audio=ha,
        has_video=hv,
        output_mode=out,
        recording_layout=layout,
        resolution=resolution or base.resolution,
        frame_rate=base.frame_rate if frame_rate is None else frame_rate,
        shm_size=base.shm_size if shm is None else shm,
        custom_layout=_opt_str(raw, "customLayout") or base.custom_layout,
        ignore_failed_streams=_coalesce(
            _opt_bool(raw, "ignoreFailedStreams"), base.ignore_failed_streams
        ),
        media_node=node_id,
    )


def _coalesce(v: Any, default: Any) -> Any:
    return default if v is None else v


def render_recording_properties(p: RecordingProperties) -> dict[str, Any]:
    """RecordingProperties JSON with OpenVidu's conditional keys."""
    d: dict[str, Any] = {
        "name": p.name,
        "hasAudio": p.has_audio,
        "hasVideo": p.has_video,
        "outputMode": p.output_mode,
    }
    if p.output_mode in ("COMPOSED", "COMPOSED_QUICK_START") and p.has_video:
        d["recordingLayout"] = p.recording_layout
        d["resolution"] = p.resolution
        d["frameRate"] = p.frame_rate
        d["shmSize"] = p.shm_size
        if p.recording_layout == "CUSTOM":
            d["customLayout"] = p.custom_layout
    if p.output_mode == "INDIVIDUAL":
        d["ignoreFailedStreams"] = p.ignore_failed_streams
    if p.media_node is not None:
        d["mediaNode"] = {"id": p.media_node}
    return d


@dataclass(frozen=True, slots=True)
class SessionProperties:
    """The body of ``POST /openvidu/api/sessions`` after validation and defaulting."""

    media_mode: str = "ROUTED"
    recording_mode: str = "MANUAL"
    custom_session_id: str = ""
    forced_video_codec: str = "MEDIA_SERVER_PREFERRED"
    allow_transcoding: bool = False
    default_recording_properties: RecordingProperties = field(default_factory=RecordingProperties)
    media_node: str | None = None


def parse_session_properties(
    body: Any, *, default_codec: str = "MEDIA_SERVER_PREFERRED", default_transcoding: bool = False
) -> SessionProperties:
    """Validate a POST /sessions body (openvidu.md §1.6).

    Args:
        body: the decoded JSON, or ``None`` for no body.
        default_codec: ``OPENVIDU_STREAMS_FORCED_VIDEO_CODEC``, used when a body is given.
        default_transcoding: ``OPENVIDU_STREAMS_ALLOW_TRANSCODING``, likewise.

    Raises:
        BadRequest: with OpenVidu's message.
    """
    if body is None:
        return SessionProperties()
    d = _body(body)
    custom = _opt_str(d, "customSessionId") or ""
    if custom and not CUSTOM_SESSION_ID_RE.fullmatch(custom):
        raise BadRequest(
            "Some parameter is not valid. Parameter 'customSessionId' is wrong. "
            "Must be an alphanumeric string [a-zA-Z0-9_-]"
        )
    if len(custom) > 256:
        raise BadRequest("Parameter 'customSessionId' is too long (256 characters at most)")
    media_node = d.get("mediaNode")
    node_id: str | None = None
    if media_node is not None:
        if not isinstance(media_node, dict) or not isinstance(media_node.get("id"), str):
            raise BadRequest("Parameter 'mediaNode' must be an object with an 'id' string")
        node_id = media_node["id"]
    transcoding = _opt_bool(d, "allowTranscoding")
    return SessionProperties(
        media_mode=_enum(
            d, "mediaMode", MEDIA_MODES, "ROUTED", "Parameter 'mediaMode' {} is not defined"
        ),
        recording_mode=_enum(
            d,
            "recordingMode",
            RECORDING_MODES,
            "MANUAL",
            "Parameter 'recordingMode' {} is not defined",
        ),
        custom_session_id=custom,
        forced_video_codec=_enum(
            d,
            "forcedVideoCodec",
            VIDEO_CODECS,
            default_codec,
            "Parameter 'forcedVideoCodec' {} is not defined",
        ),
        allow_transcoding=default_transcoding if transcoding is None else transcoding,
        default_recording_properties=parse_recording_properties(
            d.get("defaultRecordingProperties")
        ),
        media_node=node_id,
    )


@dataclass(frozen=True, slots=True)
class KurentoOptions:
    """Per-connection bandwidth caps and filter allow-list; ``None`` means not given."""

    video_max_recv_bandwidth: int | None = None
    video_min_recv_bandwidth: int | None = None
    video_max_send_bandwidth: int | None = None
    video_min_send_bandwidth: int | None = None
    allowed_filters: tuple[str, ...] | None = None


def _parse_kurento_options(raw: Any) -> KurentoOptions | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _type_error("kurentoOptions")
    ints = [_opt_int(raw, k) for k in _KURENTO_INT_KEYS]
    for k, v in zip(_KURENTO_INT_KEYS, ints, strict=True):
        if v is not None and v < 0:
            raise BadRequest(f"Parameter '{k}' must be a positive integer")
    filters = raw.get("allowedFilters")
    if filters is not None and (
        not isinstance(filters, list) or not all(isinstance(f, str) for f in filters)
    ):
        raise _type_error("allowedFilters")
    return KurentoOptions(
        video_max_recv_bandwidth=ints[0],
        video_min_recv_bandwidth=ints[1],
        video_max_send_bandwidth=ints[2],
        video_min_send_bandwidth=ints[3],
        allowed_filters=None if filters is None else tuple(filters),
    )


def render_kurento_options(k: KurentoOptions | None) -> dict[str, Any] | None:
    """kurentoOptions JSON with only the keys that were given, or ``None``."""
    if k is None:
        return None
    d: dict[str, Any] = {}
    for key, v in zip(
        _KURENTO_INT_KEYS,
        (
            k.video_max_recv_bandwidth,
            k.video_min_recv_bandwidth,
            k.video_max_send_bandwidth,
            k.video_min_send_bandwidth,
        ),
        strict=True,
    ):
        if v is not None:
            d[key] = v
    if k.allowed_filters is not None:
        d["allowedFilters"] = list(k.allowed_filters)
    return d


@dataclass(frozen=True, slots=True)
class IceServer:
    """A customIceServers entry."""

    url: str
    username: str | None = None
    credential: str | None = None


def parse_ice_servers(entries: tuple[str, ...]) -> tuple[IceServer, ...]:
    """``OPENVIDU_WEBRTC_ICE_SERVERS`` entries (``url=...,username=...,credential=...``).

    An entry without ``url`` is skipped; the server configuration is parsed once, at start.
    """
    out = []
    for entry in entries:
        kv = dict(part.split("=", 1) for part in entry.split(",") if "=" in part)
        if "url" in kv:
            out.append(IceServer(kv["url"], kv.get("username"), kv.get("credential")))
    return tuple(out)


def render_ice_server(s: IceServer) -> dict[str, Any]:
    d: dict[str, Any] = {"url": s.url}
    if s.username is not None:
        d["username"] = s.username
    if s.credential is not None:
        d["credential"] = s.credential
    return d


_ICE_HOST_RE = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$")


def _check_ice_url(url: str) -> str:
    """Validate ``stun[s]:host[:port]`` / ``turn[s]:host[:port][?transport=udp|tcp]``.

    Returns the scheme (lower case). Raises BadRequest.
    """
    scheme, sep, rest = url.partition(":")
    scheme = scheme.lower()
    if not sep or scheme not in ("stun", "stuns", "turn", "turns"):
        raise BadRequest(
            f"Parameter 'customIceServers' url {url!r} must be stun, stuns, turn or turns"
        )
    address, qsep, query = rest.partition("?")
    if qsep:
        if scheme.startswith("stun"):
            raise BadRequest("'?transport' is only allowed in turn(s) urls")
        if query not in ("transport=udp", "transport=tcp"):
            raise BadRequest(f"Parameter 'customIceServers' url {url!r} has a wrong transport")
    host, port, has_port = address, "", False
    if address.startswith("["):
        close = address.find("]")
        if close < 0 or address[close + 1 : close + 2] not in ("", ":"):
            raise BadRequest(f"Parameter 'customIceServers' url {url!r} has a wrong host")
        host, port = address[: close + 1], address[close + 2 :]
        has_port = close + 1 < len(address)
    elif ":" in address:
        host, _, port = address.rpartition(":")
        has_port = True
    if not _ICE_HOST_RE.match(host):
        raise BadRequest(f"Parameter 'customIceServers' url {url!r} has a wrong host")
    if has_port and not (
        port.isascii() and port.isdigit() and len(port) <= 5 and 0 < int(port) < 65536
    ):
        raise BadRequest(f"Parameter 'customIceServers' url {url!r} has a wrong port")
    return scheme


def turn_rest_credentials(secret: str, now_s: float, nonce: str) -> tuple[str, str]:
    """TURN REST API credentials valid 24 h: ``(<expiry>:<nonce>, base64(HMAC-SHA1))``."""
    username = f"{int(now_s) + 86400}:{nonce}"
    mac = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(mac).decode()


def _parse_ice_servers(raw: Any, now_s: float | None = None) -> tuple[IceServer, ...]:
    """customIceServers (openvidu.md §1.7); ``staticAuthSecret`` entries get TURN REST
    credentials expiring 24 h after ``now_s`` (default: now)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _type_error("customIceServers")
    out: list[IceServer] = []
    for item in raw:
        if not isinstance(item, dict):
            raise _type_error("customIceServers")
        url = _opt_str(item, "url")
        if not url:
            raise BadRequest("Parameter 'customIceServers' entries must have an 'url'")
        scheme = _check_ice_url(url)
        username = _opt_str(item, "username")
        credential = _opt_str(item, "credential")
        static = _opt_str(item, "staticAuthSecret")
        if scheme.startswith("stun"):
            if username is not None or credential is not None or static is not None:
                raise BadRequest("STUN servers must not have credentials")
        elif static is not None:
            if username is not None or credential is not None:
                raise BadRequest(
                    "TURN servers take 'username' and 'credential' or 'staticAuthSecret', not both"
                )
            nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(8))
            username, credential = turn_rest_credentials(
                static, time.time() if now_s is None else now_s, nonce
            )
        elif username is None or credential is None:
            raise BadRequest("TURN servers need 'username' and 'credential'")
        out.append(IceServer(url, username, credential))
    return tuple(out)


_NONCE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True, slots=True)
class ConnectionProperties:
    """The body of ``POST /sessions/{id}/connection`` after validation and defaulting."""

    type: str = "WEBRTC"
    data: str = ""
    record: bool = True
    role: str = "PUBLISHER"
    kurento_options: KurentoOptions | None = None
    custom_ice_servers: tuple[IceServer, ...] = ()
    rtsp_uri: str | None = None
    adaptative_bitrate: bool | None = None
    only_play_with_subscribers: bool | None = None
    network_cache: int | None = None


def parse_connection_properties(body: Any) -> ConnectionProperties:
    """Validate a POST /sessions/{id}/connection body (openvidu.md §1.7).

    Raises:
        BadRequest: with OpenVidu's message.
    """
    d = _body(body)
    ctype = _enum(d, "type", CONNECTION_TYPES, "WEBRTC", "Parameter 'type' {} is not defined")
    data = _opt_str(d, "data") or ""
    record = _coalesce(_opt_bool(d, "record"), True)
    if ctype == "IPCAM":
        rtsp = _opt_str(d, "rtspUri")
        if not rtsp:
            raise BadRequest("Parameter 'rtspUri' is mandatory for IPCAM connections")
        scheme = urlsplit(rtsp).scheme
        if scheme not in ("file", "rtsp", "rtsps", "http", "https"):
            raise BadRequest(f"Error in parameter 'rtspUri'. RTSP URI {rtsp} is not valid")
        return ConnectionProperties(
            type="IPCAM",
            data=data,
            record=record,
            role="PUBLISHER",
            rtsp_uri=rtsp,
            adaptative_bitrate=_coalesce(_opt_bool(d, "adaptativeBitrate"), True),
            only_play_with_subscribers=_coalesce(_opt_bool(d, "onlyPlayWithSubscribers"), True),
            network_cache=_coalesce(_opt_int(d, "networkCache"), 2000),
        )
    return ConnectionProperties(
        type="WEBRTC",
        data=data,
        record=record,
        role=_enum(d, "role", ROLES, "PUBLISHER", "Parameter role {} is not defined"),
        kurento_options=_parse_kurento_options(d.get("kurentoOptions")),
        custom_ice_servers=_parse_ice_servers(d.get("customIceServers")),
    )


def parse_token_request(body: Any) -> tuple[SessionId, ConnectionProperties]:
    """Validate a legacy POST /tokens body; returns the session id and properties.

    Raises:
        BadRequest: when ``session`` is missing or a property is invalid.
    """
    d = _body(body)
    session = _opt_str(d, "session")
    if not session:
        raise BadRequest('"session" parameter is mandatory')
    props = parse_connection_properties(
        {k: d.get(k) for k in ("role", "data", "kurentoOptions", "customIceServers")}
    )
    return SessionId(session), props


@dataclass(frozen=True, slots=True)
class SignalRequest:
    """A validated POST /signal body."""

    session: SessionId
    to: tuple[ConnectionId, ...] | None
    type: str
    data: str


def parse_signal(body: Any) -> SignalRequest:
    """Validate a POST /signal body (openvidu.md §1.5 #11).

    Raises:
        BadRequest: missing ``session``, wrong types, ``to`` not a list of strings.
    """
    if not isinstance(body, dict):
        raise BadRequest("Request body must be a JSON object")
    session = _opt_str(body, "session")
    if not session:
        raise BadRequest('"session" parameter is mandatory')
    to = body.get("to")
    if to is not None and (not isinstance(to, list) or not all(isinstance(x, str) for x in to)):
        raise BadRequest('"to" parameter is not a valid JSON array')
    return SignalRequest(
        session=SessionId(session),
        to=tuple(ConnectionId(x) for x in to) if to else None,
        type=_opt_str(body, "type") or "",
        data=_opt_str(body, "data") or "",
    )
