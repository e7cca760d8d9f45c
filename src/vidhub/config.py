"""Typed server configuration.

A frozen dataclass, filled from command-line flags, then the environment (OpenVidu's names
where one exists, ``VIDHUB_*`` otherwise), then defaults. Only ``cli`` and ``server.app``
read it; everything below them receives plain values. Stdlib dataclasses keep start-up fast
and the dependency list short while mypy still checks every field.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from vidhub.protocol.openvidu_events import EVENT_NAMES, OTHER_OPENVIDU_EVENTS

__all__ = ["DEFAULT_SECRET", "Config", "ConfigError", "WebhookConfig", "is_loopback_host"]

DEFAULT_SECRET = "MY_SECRET"

#: Every name OPENVIDU_WEBHOOK_EVENTS accepts: ours, then OpenVidu Pro's (never emitted here).
WEBHOOK_EVENTS: tuple[str, ...] = (*EVENT_NAMES, *OTHER_OPENVIDU_EVENTS)


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names it."""


def is_loopback_host(host: str) -> bool:
    """True when ``host`` names only this machine (``localhost``, 127/8, ``::1``)."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bool(name: str, raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _json_list(name: str, raw: str) -> list[str]:
    try:
        val = json.loads(raw) if raw.strip() else []
    except (ValueError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise ConfigError(f"{name} must be a JSON array of strings") from exc
    if not isinstance(val, list) or not all(isinstance(v, str) for v in val):
        raise ConfigError(f"{name} must be a JSON array of strings")
    return val


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """OpenVidu webhook settings (``OPENVIDU_WEBHOOK*``)."""

    enabled: bool = False
    endpoint: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    events: tuple[str, ...] = WEBHOOK_EVENTS
    #: HMAC-SHA256 signing key; defaults to the server secret.
    signing_key: str = ""

    def header_strings(self) -> list[str]:
        """Headers as OpenVidu's ``"Name: value"`` strings, for ``GET /config``."""
        return [f"{k}: {v}" for k, v in self.headers]


@dataclass(frozen=True, slots=True)
class Config:
    """Everything ``vidhub serve`` can be told."""

    host: str = "127.0.0.1"
    port: int = 4443
    secret: str = DEFAULT_SECRET
    data_dir: Path | None = None
    #: ``sqlite`` (default, under data_dir), ``memory`` or ``redis``.
    store: str = "sqlite"
    redis_url: str = ""
    log_level: str = "info"
    certfile: str = ""
    keyfile: str = ""
    #: Public base URL (``https://host[:port]``) used in tokens; empty means the URL the
    #: client reached.
    public_url: str = ""
    #: Serve the tutorial application-server endpoints; ``None`` means on when loopback.
    app_endpoints: bool | None = None
    max_body_bytes: int = 1 << 20
    max_ws_message_bytes: int = 1 << 20
    #: Requests handled at once before the server sheds load with 503 + Retry-After.
    max_inflight: int = 256
    forced_video_codec: str = "MEDIA_SERVER_PREFERRED"
    allow_transcoding: bool = False
    garbage_interval_s: int = 900
    garbage_threshold_s: int = 3600
    ice_servers: tuple[str, ...] = ()
    #: Addresses the SFU binds media sockets to (``VIDHUB_ICE_HOST_ADDRESSES``, comma list);
    #: empty means 127.0.0.1 on a loopback host, else every interface.
    ice_host_addresses: tuple[str, ...] = ()
    #: Address announced in the SFU's candidates instead (``VIDHUB_ICE_ANNOUNCED_ADDRESS``).
    ice_announced_address: str = ""
    hub_keys: tuple[str, ...] = ()
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    recording: bool = False
    #: ``OPENVIDU_RECORDING_PATH``; empty means ``<data dir>/recordings``.
    recording_path: str = ""
    recording_public_access: bool = False
    recording_autostop_timeout_s: int = 120
    #: ``OPENVIDU_RECORDING_NOTIFICATION``: none, moderator, publisher_moderator or all.
    recording_notification: str = "publisher_moderator"
    cdr: bool = False
    #: This node's id, recorded on the connections it serves. Must be stable across restarts
    #: (a restarted node drops what it served before) and unique per node on a shared Redis.
    #: Empty means ``<hostname>:<port>``.
    node_id: str = ""
    #: Seconds a pending connection's token stays usable (``VIDHUB_TOKEN_TTL``); 0: no expiry,
    #: as in OpenVidu, where a token lives as long as its session.
    token_ttl_s: int = 86400
    # -- door limits (0 disables each); see README "Limits" ----------------------------
    #: Seconds a client has to send a request line and its headers (``VIDHUB_HEADER_TIMEOUT``).
    header_timeout_s: float = 10.0
    #: Seconds a signalling socket may stay open without ``joinRoom`` (``VIDHUB_JOIN_TIMEOUT``).
    join_timeout_s: float = 10.0
    #: Open TCP connections, in total and from one address (``VIDHUB_MAX_TCP_CONNECTIONS``,
    #: ``..._PER_IP``); the total is also kept under the process's file-descriptor limit.
    max_tcp_connections: int = 10000
    max_tcp_connections_per_ip: int = 1000
    #: Open signalling + event-hub WebSockets, in total and from one address.
    max_websockets: int = 4096
    max_websockets_per_ip: int = 512
    #: Sessions, and connections in one session (``VIDHUB_MAX_SESSIONS``,
    #: ``VIDHUB_MAX_CONNECTIONS_PER_SESSION``).
    max_sessions: int = 10000
    max_connections_per_session: int = 1000
    #: Shed API requests with 503 when the loop runs this many ms late (``VIDHUB_SHED_BUDGET_MS``).
    shed_budget_ms: int = 50
    #: Messages per second one signalling / event-hub socket may send (bursts of twice that).
    signalling_rate: float = 100.0
    hub_rate: float = 2000.0
    #: Media worker processes (``VIDHUB_MEDIA_WORKERS``), each owning whole sessions' routers;
    #: 0 keeps the routers in the main process. ``vidhub serve`` (``from_env``) defaults to
    #: the usable CPUs; a Config built directly (embedding, tests) defaults to 0.
    media_workers: int = 0

    @property
    def effective_node_id(self) -> str:
        """``node_id``, or ``<hostname>:<port>`` when not set."""
        return self.node_id or f"{socket.gethostname()}:{self.port}"

    @property
    def db_path(self) -> Path | None:
        """SQLite file, when the store is SQLite."""
        if self.store != "sqlite":
            return None
        return (self.data_dir or Path("./vidhub-data")) / "vidhub.sqlite3"

    @property
    def effective_recording_path(self) -> Path:
        """Where recordings are written: ``recording_path`` or ``<data dir>/recordings``."""
        if self.recording_path:
            return Path(self.recording_path)
        return (self.data_dir or Path("./vidhub-data")) / "recordings"

    @property
    def serve_app_endpoints(self) -> bool:
        """Whether the ``/api/sessions`` tutorial endpoints are mounted."""
        if self.app_endpoints is None:
            return is_loopback_host(self.host)
        return self.app_endpoints

    @property
    def tls(self) -> bool:
        return bool(self.certfile)

    def validate(self) -> Config:
        """Check cross-field rules; returns self so it can be chained.

        Raises:
            ConfigError: with a message naming the offending setting.
        """
        if not (0 < self.port < 65536):
            raise ConfigError(f"port {self.port} is out of range")
        if not self.secret:
            raise ConfigError("OPENVIDU_SECRET must not be empty")
        if self.secret == DEFAULT_SECRET and not is_loopback_host(self.host):
            raise ConfigError(
                f"refusing to listen on {self.host} with the default secret; "
                "set OPENVIDU_SECRET or --secret"
            )
        if self.store not in ("sqlite", "memory", "redis"):
            raise ConfigError(f"VIDHUB_STORE must be sqlite, memory or redis, not {self.store!r}")
        if self.store == "redis" and not self.redis_url:
            raise ConfigError("VIDHUB_REDIS_URL is required with VIDHUB_STORE=redis")
        if bool(self.certfile) != bool(self.keyfile):
            raise ConfigError("--certfile and --keyfile go together")
        if self.forced_video_codec not in ("MEDIA_SERVER_PREFERRED", "NONE", "VP8", "VP9", "H264"):
            raise ConfigError(
                f"unknown OPENVIDU_STREAMS_FORCED_VIDEO_CODEC {self.forced_video_codec}"
            )
        if self.webhook.enabled and not self.webhook.endpoint.startswith(("http://", "https://")):
            raise ConfigError("OPENVIDU_WEBHOOK_ENDPOINT must be an http(s) URL")
        for ev in self.webhook.events:
            if ev not in WEBHOOK_EVENTS:
                raise ConfigError(f"unknown event {ev!r} in OPENVIDU_WEBHOOK_EVENTS")
        if not 0 <= self.media_workers <= 1024:
            raise ConfigError("VIDHUB_MEDIA_WORKERS must be 0 (in-process media) up to 1024")
        if self.token_ttl_s < 0:
            raise ConfigError("VIDHUB_TOKEN_TTL must be 0 (no expiry) or a number of seconds")
        if self.recording_autostop_timeout_s < 0:
            raise ConfigError("OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT must be 0 or more seconds")
        if self.recording_notification not in ("none", "moderator", "publisher_moderator", "all"):
            raise ConfigError(
                "OPENVIDU_RECORDING_NOTIFICATION must be none, moderator, publisher_moderator "
                f"or all, not {self.recording_notification!r}"
            )
        for name in (
            "header_timeout_s",
            "join_timeout_s",
            "max_tcp_connections",
            "max_tcp_connections_per_ip",
            "max_websockets",
            "max_websockets_per_ip",
            "max_sessions",
            "max_connections_per_session",
            "shed_budget_ms",
            "signalling_rate",
            "hub_rate",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative (0 disables the limit)")
        if self.max_body_bytes < 1024:
            raise ConfigError("VIDHUB_MAX_BODY_BYTES must be at least 1024")
        return self

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Build a Config from ``env`` (default ``os.environ``) and explicit overrides.

        Overrides whose value is ``None`` are ignored, so argparse results can be passed as is.
        """
        env = os.environ if env is None else env
        kw: dict[str, Any] = {}

        def get(*names: str) -> str | None:
            for n in names:
                if n in env and env[n] != "":
                    return env[n]
            return None

        simple: dict[str, tuple[tuple[str, ...], Any]] = {
            "host": (("VIDHUB_HOST",), str),
            "port": (("SERVER_PORT", "VIDHUB_PORT"), int),
            "secret": (("OPENVIDU_SECRET",), str),
            "data_dir": (("VIDHUB_DATA_DIR",), Path),
            "store": (("VIDHUB_STORE",), str),
            "redis_url": (("VIDHUB_REDIS_URL",), str),
            "node_id": (("VIDHUB_NODE_ID",), str),
            "token_ttl_s": (("VIDHUB_TOKEN_TTL",), int),
            "media_workers": (("VIDHUB_MEDIA_WORKERS",), int),
            "log_level": (("VIDHUB_LOG_LEVEL",), str),
            "certfile": (("VIDHUB_CERTFILE",), str),
            "keyfile": (("VIDHUB_KEYFILE",), str),
            "public_url": (("OPENVIDU_PUBLICURL", "VIDHUB_PUBLIC_URL"), str),
            "max_body_bytes": (("VIDHUB_MAX_BODY_BYTES",), int),
            "max_ws_message_bytes": (("VIDHUB_MAX_WS_MESSAGE_BYTES",), int),
            "max_inflight": (("VIDHUB_MAX_INFLIGHT",), int),
            "forced_video_codec": (("OPENVIDU_STREAMS_FORCED_VIDEO_CODEC",), str),
            "garbage_interval_s": (("OPENVIDU_SESSIONS_GARBAGE_INTERVAL",), int),
            "garbage_threshold_s": (("OPENVIDU_SESSIONS_GARBAGE_THRESHOLD",), int),
            "recording_path": (("OPENVIDU_RECORDING_PATH",), str),
            "recording_autostop_timeout_s": (("OPENVIDU_RECORDING_AUTOSTOP_TIMEOUT",), int),
            "recording_notification": (("OPENVIDU_RECORDING_NOTIFICATION",), str),
            "header_timeout_s": (("VIDHUB_HEADER_TIMEOUT",), float),
            "join_timeout_s": (("VIDHUB_JOIN_TIMEOUT",), float),
            "max_tcp_connections": (("VIDHUB_MAX_TCP_CONNECTIONS",), int),
            "max_tcp_connections_per_ip": (("VIDHUB_MAX_TCP_CONNECTIONS_PER_IP",), int),
            "max_websockets": (("VIDHUB_MAX_WEBSOCKETS",), int),
            "max_websockets_per_ip": (("VIDHUB_MAX_WEBSOCKETS_PER_IP",), int),
            "max_sessions": (("VIDHUB_MAX_SESSIONS",), int),
            "max_connections_per_session": (("VIDHUB_MAX_CONNECTIONS_PER_SESSION",), int),
            "shed_budget_ms": (("VIDHUB_SHED_BUDGET_MS",), int),
            "signalling_rate": (("VIDHUB_SIGNALLING_RATE",), float),
            "hub_rate": (("VIDHUB_HUB_RATE",), float),
        }
        for key, (names, conv) in simple.items():
            raw = get(*names)
            if raw is not None:
                try:
                    kw[key] = conv(raw)
                except ValueError as exc:
                    raise ConfigError(f"{names[0]}={raw!r} is not valid") from exc
        for key, name in (
            ("allow_transcoding", "OPENVIDU_STREAMS_ALLOW_TRANSCODING"),
            ("app_endpoints", "VIDHUB_APP_ENDPOINTS"),
            ("recording", "OPENVIDU_RECORDING"),
            ("recording_public_access", "OPENVIDU_RECORDING_PUBLIC_ACCESS"),
            ("cdr", "OPENVIDU_CDR"),
        ):
            raw = get(name)
            if raw is not None:
                kw[key] = _bool(name, raw)
        raw = get("OPENVIDU_WEBRTC_ICE_SERVERS")
        if raw is not None:
            kw["ice_servers"] = tuple(_json_list("OPENVIDU_WEBRTC_ICE_SERVERS", raw))
        raw = get("VIDHUB_ICE_HOST_ADDRESSES")
        if raw is not None:
            kw["ice_host_addresses"] = tuple(a.strip() for a in raw.split(",") if a.strip())
        raw = get("VIDHUB_ICE_ANNOUNCED_ADDRESS")
        if raw is not None:
            kw["ice_announced_address"] = raw.strip()
        raw = get("VIDHUB_HUB_KEYS")
        if raw is not None:
            kw["hub_keys"] = tuple(k.strip() for k in raw.split(",") if k.strip())
        kw["webhook"] = _webhook_from_env(get)
        kw.setdefault("media_workers", usable_cpus())
        for k, v in overrides.items():
            if v is not None:
                kw[k] = v
        known = {f.name for f in fields(cls)}
        unknown = set(kw) - known
        if unknown:
            raise ConfigError(f"unknown settings: {sorted(unknown)}")
        return cls(**kw).validate()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _webhook_from_env(get: Any) -> WebhookConfig:
    enabled_raw = get("OPENVIDU_WEBHOOK")
    enabled = _bool("OPENVIDU_WEBHOOK", enabled_raw) if enabled_raw is not None else False
    headers: list[tuple[str, str]] = []
    for h in _json_list("OPENVIDU_WEBHOOK_HEADERS", get("OPENVIDU_WEBHOOK_HEADERS") or "[]"):
        name, sep, value = h.partition(": ")
        if not sep or not name or not value:
            raise ConfigError(f"OPENVIDU_WEBHOOK_HEADERS entry {h!r} is not 'Name: value'")
        headers.append((name, value))
    events_raw = get("OPENVIDU_WEBHOOK_EVENTS")
    events = (
        tuple(_json_list("OPENVIDU_WEBHOOK_EVENTS", events_raw)) if events_raw else WEBHOOK_EVENTS
    )
    return WebhookConfig(
        enabled=enabled,
        endpoint=get("OPENVIDU_WEBHOOK_ENDPOINT") or "",
        headers=tuple(headers),
        events=events,
        signing_key=get("VIDHUB_WEBHOOK_SIGNING_KEY") or "",
    )
