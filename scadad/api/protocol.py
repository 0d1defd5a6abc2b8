"""The local API wire protocol, in one place.

Transport: a Unix domain socket. Framing: one JSON object per line (NDJSON), UTF-8.

Request   {"id": 7, "method": "Tags.Read", "params": {...}, "token": "..."}
Result    {"id": 7, "result": {...}}
Error     {"id": 7, "error": {"code": "NOT_FOUND", "message": "...", "details": {}}}
Event     {"id": 8, "event": {...}}          (a server stream sends several)
End       {"id": 8, "end": true}             (last frame of a stream)

`id` is chosen by the client (integer or string) and echoes back, so many calls can
be in flight on one connection. A frame the daemon cannot tie to a request (malformed
JSON, an oversized line) gets an error with `"id": null`.

Why NDJSON and not length-prefixed frames: `socat` and `nc -U` can speak it by hand,
which matters to a technician debugging over SSH. The cost is that a frame may not
contain a raw newline; JSON never needs one.

This module must not import anything from the daemon: scadactl and the console use it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import msgspec

from scadad.api.errors import ErrorCode, InvalidArgument

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME_BYTES = 1024 * 1024
SOCKET_ENV = "SCADA_SOCKET"
TOKEN_ENV = "SCADA_TOKEN"

RequestId = int | str | None


class Request(msgspec.Struct, forbid_unknown_fields=True):
    method: str
    id: int | str | None = None
    params: msgspec.Raw = msgspec.Raw(b"{}")
    token: str | None = None


class ResultFrame(msgspec.Struct):
    id: RequestId
    result: Any


class ErrorBody(msgspec.Struct):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorFrame(msgspec.Struct):
    id: RequestId
    error: ErrorBody


class EventFrame(msgspec.Struct):
    id: RequestId
    event: Any


class EndFrame(msgspec.Struct):
    id: RequestId
    end: bool = True


_encoder = msgspec.json.Encoder()
_request_decoder = msgspec.json.Decoder(Request)
_any_decoder = msgspec.json.Decoder()

_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"unknown field `(?P<name>[^`]*)`")


class ProtocolError(InvalidArgument):
    """A frame that is not a valid request; `request_id` is set when it could be read."""

    def __init__(self, message: str, request_id: RequestId = None, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.request_id = request_id


def field_of(error: msgspec.ValidationError, prefix: str = "") -> str | None:
    """The dotted path of the field a msgspec validation error points at, if any."""
    text = str(error)
    m = _AT_PATH.search(text)
    path = m.group("path") if m else ""
    u = _UNKNOWN_FIELD.search(text)
    if u:
        path = f"{path}.{u.group('name')}" if path else u.group("name")
    path = path.replace("[", ".").replace("]", "")
    if prefix:
        return f"{prefix}.{path}" if path else prefix
    return path or None


def describe_validation_error(error: msgspec.ValidationError) -> str:
    """msgspec's message without the `$.path` tail (the field travels separately)."""
    return _AT_PATH.sub("", str(error))


def decode_request(line: bytes | bytearray | memoryview) -> Request:
    """Decode one frame into a Request or raise ProtocolError saying what is wrong."""
    try:
        return _request_decoder.decode(line)
    except msgspec.ValidationError as exc:
        request_id = _salvage_id(line)
        field = field_of(exc)
        raise ProtocolError(f"bad request frame: {describe_validation_error(exc)}", request_id, field=field) from None
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None


def _salvage_id(line: bytes | bytearray | memoryview) -> RequestId:
    """Best effort to echo the caller's id on a request that failed validation."""
    try:
        obj = _any_decoder.decode(line)
    except msgspec.DecodeError:
        return None
    if isinstance(obj, dict):
        rid = obj.get("id")
        if isinstance(rid, (int, str)) and not isinstance(rid, bool):
            return rid
    return None


def loose(raw: msgspec.Raw) -> Any:
    """Params as plain JSON values, for records of calls whose params did not validate."""
    try:
        return _any_decoder.decode(raw)
    except msgspec.DecodeError:
        return None


def encode_result(request_id: RequestId, result: Any) -> bytes:
    return _encoder.encode(ResultFrame(request_id, result)) + b"\n"


def encode_error(
    request_id: RequestId, code: ErrorCode | str, message: str, details: dict[str, Any] | None = None
) -> bytes:
    body = ErrorBody(str(code), message, details or {})
    return _encoder.encode(ErrorFrame(request_id, body)) + b"\n"


def encode_event(request_id: RequestId, event: Any) -> bytes:
    return _encoder.encode(EventFrame(request_id, event)) + b"\n"


def encode_end(request_id: RequestId) -> bytes:
    return _encoder.encode(EndFrame(request_id)) + b"\n"


def encode_request(request_id: RequestId, method: str, params: Any = None, token: str | None = None) -> bytes:
    frame: dict[str, Any] = {"id": request_id, "method": method}
    if params is not None:
        frame["params"] = params
    if token is not None:
        frame["token"] = token
    return _encoder.encode(frame) + b"\n"


def decode_frame(line: bytes | bytearray | memoryview) -> dict[str, Any]:
    """Client side: decode any server frame to a dict."""
    obj = _any_decoder.decode(line)
    if not isinstance(obj, dict):
        raise ValueError("server frame is not a JSON object")
    return obj


def default_socket_path() -> Path:
    """Where the daemon listens unless told otherwise.

    `$SCADA_SOCKET` wins; then `$XDG_RUNTIME_DIR/scadad/scadad.sock` for a user
    install; root without a runtime dir uses `/run/scadad/scadad.sock` (system install);
    anyone else falls back to a per-uid directory under /tmp.
    """
    env = os.environ.get(SOCKET_ENV)
    if env:
        return Path(env)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "scadad" / "scadad.sock"
    if os.geteuid() == 0:
        return Path("/run/scadad/scadad.sock")
    return Path(f"/tmp/scadad-{os.geteuid()}/scadad.sock")
