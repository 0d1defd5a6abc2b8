"""The wire protocol's decoder: valid frames, every kind of bad frame, and random bytes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scadad.api import protocol
from scadad.api.errors import ErrorCode, InvalidArgument, NotFound, ScadaError


def test_decode_full_request() -> None:
    req = protocol.decode_request(b'{"id": 7, "method": "Tags.Read", "params": {"a": [1, 2]}, "token": "t"}')
    assert (req.id, req.method, req.token) == (7, "Tags.Read", "t")
    assert json.loads(bytes(req.params)) == {"a": [1, 2]}


def test_params_default_to_empty_object() -> None:
    assert bytes(protocol.decode_request(b'{"method": "System.Ping"}').params) == b"{}"


@pytest.mark.parametrize(
    ("frame", "message", "rid", "field"),
    [
        (b"{not json", "malformed JSON", None, None),
        (b"[1,2]", "bad request frame", None, None),
        (b'{"id": 3}', "missing required field `method`", 3, None),
        (b'{"id": 4, "method": 5}', "Expected `str`, got `int`", 4, "method"),
        (b'{"id": 1.5, "method": "x"}', "Expected `int | str | null`", None, "id"),
        (b'{"id": "a", "method": "x", "extra": 1}', "unknown field", "a", "extra"),
    ],
)
def test_bad_frames(frame: bytes, message: str, rid: object, field: str | None) -> None:
    with pytest.raises(protocol.ProtocolError) as err:
        protocol.decode_request(frame)
    assert message in err.value.message
    assert err.value.request_id == rid
    assert err.value.code is ErrorCode.INVALID_ARGUMENT
    assert err.value.details.get("field") == field


def test_encoders_round_trip() -> None:
    assert json.loads(protocol.encode_result(1, {"x": 1})) == {"id": 1, "result": {"x": 1}}
    err = json.loads(protocol.encode_error("a", ErrorCode.NOT_FOUND, "gone", {"field": "name"}))
    assert err == {"id": "a", "error": {"code": "NOT_FOUND", "message": "gone", "details": {"field": "name"}}}
    assert json.loads(protocol.encode_event(2, [1])) == {"id": 2, "event": [1]}
    assert json.loads(protocol.encode_end(2)) == {"id": 2, "end": True}
    for frame in (protocol.encode_result(1, {"s": "a\nb"}), protocol.encode_request(1, "X.Y", {"s": "\n"})):
        assert frame.count(b"\n") == 1 and frame.endswith(b"\n")


def test_wire_errors_become_typed_errors() -> None:
    e = ScadaError.from_wire({"code": "NOT_FOUND", "message": "no site", "details": {"field": "name"}})
    assert isinstance(e, NotFound) and e.details == {"field": "name"}
    e = ScadaError.from_wire({"code": "INVALID_ARGUMENT", "message": "bad", "details": {"field": "x"}})
    assert isinstance(e, InvalidArgument) and e.details == {"field": "x"}
    assert ScadaError.from_wire({"code": "NEW_CODE", "message": "?"}).code is ErrorCode.INTERNAL


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=512))
def test_random_bytes_never_escape_as_anything_but_protocol_error(data: bytes) -> None:
    try:
        req = protocol.decode_request(data)
    except protocol.ProtocolError as exc:
        assert exc.code is ErrorCode.INVALID_ARGUMENT
        assert exc.message
    else:
        assert isinstance(req.method, str)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from(["id", "method", "params", "token", "x"]), json_values, max_size=5))
def test_random_json_objects_decode_or_fail_cleanly(obj: dict[str, object]) -> None:
    data = json.dumps(obj).encode()
    try:
        req = protocol.decode_request(data)
    except protocol.ProtocolError as exc:
        rid = obj.get("id")
        if isinstance(exc.request_id, (int, str)):
            assert exc.request_id == rid  # an id is only echoed when it was really sent
    else:
        assert req.method == obj["method"]
        assert set(obj) <= {"id", "method", "params", "token"}
