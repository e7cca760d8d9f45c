"""JSON-RPC 2.0 framing in the Kurento flavour that OpenVidu speaks (openvidu.md §3.1).

Pure: text in, typed messages out, and the reverse. No sockets, no event loop. Both the
server's signalling layer and the ``Participant`` SDK use it.

Kurento specifics kept here:

* every success ``result`` carries the RPC ``sessionId``; a result that is not an object is
  wrapped as ``{"value": <result>, "sessionId": ...}``;
* ``params`` is omitted when empty (the browser does the same);
* responses put ``id`` first and ``jsonrpc`` last, as the Java server does.

A frame that is not valid JSON-RPC raises :class:`FrameError`, whose ``code`` is the
JSON-RPC 2.0 code to answer with (-32700 parse error, -32600 invalid request) and whose
``request_id`` is the id when one could be read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidhub.errors import BadRequest
from vidhub.protocol import jsoncodec

__all__ = [
    "INVALID_REQUEST",
    "PARSE_ERROR",
    "ErrorResponse",
    "FrameError",
    "Message",
    "Notification",
    "Request",
    "Response",
    "encode_error",
    "encode_notification",
    "encode_request",
    "encode_result",
    "parse_message",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600

RequestId = int | str


class FrameError(BadRequest):
    """A frame that is not a JSON-RPC 2.0 message."""

    def __init__(self, message: str, code: int, request_id: RequestId | None = None) -> None:
        super().__init__(message)
        self.rpc_code = code
        self.request_id = request_id


@dataclass(frozen=True, slots=True)
class Request:
    """A call expecting an answer (``id`` present)."""

    id: RequestId
    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Notification:
    """A one-way message (no ``id``)."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Response:
    """A success answer; ``result`` is whatever the peer sent (an object for Kurento)."""

    id: RequestId
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """An error answer; ``id`` may be ``None`` when the request could not be read."""

    id: RequestId | None
    code: int
    message: str
    data: Any = None


Message = Request | Notification | Response | ErrorResponse


def _request_id(raw: Any) -> RequestId | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | str):
        return raw
    return None


def parse_message(text: str | bytes) -> Message:
    """Parse one frame.

    Raises:
        FrameError: not JSON, not an object, wrong ``jsonrpc`` version, or a shape that is
            neither a request, a notification nor a response.
    """
    try:
        obj = jsoncodec.loads(text)
    except (jsoncodec.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FrameError("Parse error: frame is not valid JSON", PARSE_ERROR) from exc
    if not isinstance(obj, dict):
        raise FrameError("Invalid request: frame is not a JSON object", INVALID_REQUEST)
    rid = _request_id(obj.get("id"))
    if "id" in obj and obj["id"] is not None and rid is None:
        raise FrameError("Invalid request: 'id' must be a number or a string", INVALID_REQUEST)
    if obj.get("jsonrpc") != "2.0":
        raise FrameError("Invalid request: 'jsonrpc' must be \"2.0\"", INVALID_REQUEST, rid)
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str) or not method:
            raise FrameError("Invalid request: 'method' must be a string", INVALID_REQUEST, rid)
        params = obj.get("params")
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise FrameError("Invalid request: 'params' must be an object", INVALID_REQUEST, rid)
        if rid is None:
            return Notification(method, params)
        return Request(rid, method, params)
    has_result = "result" in obj
    has_error = "error" in obj
    if has_result == has_error:
        raise FrameError(
            "Invalid message: a response needs exactly one of 'result' or 'error'",
            INVALID_REQUEST,
            rid,
        )
    if has_result:
        if rid is None:
            raise FrameError("Invalid response: missing 'id'", INVALID_REQUEST)
        return Response(rid, obj["result"])
    err = obj["error"]
    if not isinstance(err, dict) or not isinstance(err.get("code"), int):
        raise FrameError("Invalid response: malformed 'error'", INVALID_REQUEST, rid)
    msg = err.get("message")
    return ErrorResponse(rid, err["code"], msg if isinstance(msg, str) else "", err.get("data"))


def encode_request(request_id: RequestId, method: str, params: dict[str, Any] | None) -> str:
    """A request in the browser's key order; ``params`` omitted when empty."""
    d: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params:
        d["params"] = params
    d["id"] = request_id
    return jsoncodec.dumps(d)


def encode_result(request_id: RequestId, result: Any, session_id: str | None) -> str:
    """A success response; ``sessionId`` is injected into the result object (Kurento)."""
    body: dict[str, Any]
    body = dict(result) if isinstance(result, dict) else {"value": result}
    if session_id is not None:
        body["sessionId"] = session_id
    return jsoncodec.dumps({"id": request_id, "result": body, "jsonrpc": "2.0"})


def encode_error(request_id: RequestId | None, code: int, message: str, data: Any = None) -> str:
    """An error response; ``data`` only when given."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return jsoncodec.dumps({"id": request_id, "error": err, "jsonrpc": "2.0"})


def encode_notification(method: str, params: dict[str, Any]) -> str:
    """A server-to-client notification (no ``id``)."""
    return jsoncodec.dumps({"method": method, "params": params, "jsonrpc": "2.0"})
