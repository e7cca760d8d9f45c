"""The OpenVidu REST SDK's URLs and request bodies, built as pyopenvidu 0.2.1 builds them
(openvidu.md §1). Pure functions, shared by both transports through
:mod:`vidhub.client.openvidu_model`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

__all__ = [
    "api_base",
    "drop_none",
    "ipcam_body",
    "seg",
    "session_body",
    "signal_body",
    "webrtc_body",
]


def api_base(url: str) -> str:
    """The REST base URL with its trailing slash, from a server root or an API URL.

    ``http://h:4443``, ``http://h:4443/``, ``http://h:4443/openvidu`` and
    ``http://h:4443/openvidu/api[/]`` all give ``http://h:4443/openvidu/api/``; a root with a
    path prefix (a reverse proxy) keeps it. Query and fragment are dropped.

    Raises:
        ValueError: not an ``http`` or ``https`` URL.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    path = parts.path.rstrip("/")
    if path.endswith("/openvidu"):
        path += "/api"
    elif not path.endswith("/openvidu/api"):
        path += "/openvidu/api"
    return urlunsplit((parts.scheme, parts.netloc, path + "/", "", ""))


def seg(value: str) -> str:
    """One URL path segment, escaped."""
    return quote(value, safe="")


def drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def session_body(custom_session_id: str | None, media_mode: str | None) -> dict[str, Any]:
    """POST /sessions body, as pyopenvidu sends it.

    Raises:
        ValueError: ``media_mode`` is neither ROUTED nor RELAYED.
    """
    if media_mode not in ("ROUTED", "RELAYED", None):
        raise ValueError(f"media_mode must be any of ROUTED or RELAYED, not {media_mode}")
    return drop_none({"mediaMode": media_mode, "customSessionId": custom_session_id})


def webrtc_body(
    role: str,
    data: str | None,
    kurento: Mapping[str, Any],
    record: bool | None = None,
) -> dict[str, Any]:
    """POST /sessions/{id}/connection body for a WEBRTC connection.

    Raises:
        ValueError: unknown role.
    """
    if role not in ("SUBSCRIBER", "PUBLISHER", "MODERATOR"):
        raise ValueError(f"Role must be any of SUBSCRIBER, PUBLISHER or MODERATOR, not {role}")
    body: dict[str, Any] = {"type": "WEBRTC", "role": role}
    if data:
        body["data"] = data
    if record is not None:
        body["record"] = record
    options = drop_none(dict(kurento))
    if options:
        body["kurentoOptions"] = options
    return body


def ipcam_body(
    rtsp_uri: str,
    data: str | None,
    adaptive_bitrate: bool | None,
    only_play_with_subscribers: bool | None,
    network_cache: int | None,
) -> dict[str, Any]:
    """POST /sessions/{id}/connection body for an IPCAM connection."""
    return drop_none(
        {
            "type": "IPCAM",
            "data": data,
            "rtspUri": rtsp_uri,
            "adaptativeBitrate": adaptive_bitrate,
            "onlyPlayWithSubscribers": only_play_with_subscribers,
            "networkCache": network_cache,
        }
    )


def signal_body(
    session_id: str, type_: str | None, data: str | None, to: list[str] | None
) -> dict[str, Any]:
    """POST /signal body; ``to`` omitted means everyone."""
    return drop_none({"session": session_id, "to": to or None, "type": type_, "data": data})
