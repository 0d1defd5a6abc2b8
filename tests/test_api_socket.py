"""The socket under abuse: every bad frame gets the documented error, and a second client
is served throughout."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scadad.api.client import Client
from tests.conftest import RunningDaemon, start_daemon


class Raw:
    """A bare socket speaking NDJSON by hand, so tests can send what no client would."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def frame(self) -> dict:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, rid: object, method: str, params: object = None) -> dict:
        req: dict = {"id": rid, "method": method}
        if params is not None:
            req["params"] = params
        self.send(json.dumps(req).encode() + b"\n")
        return self.frame()

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def pair(shared_daemon: RunningDaemon):
    """A raw connection for the abuse and a well-behaved client beside it."""
    raw = Raw(shared_daemon.socket)
    good = shared_daemon.client()
    yield raw, good
    raw.close()
    good.close()


def test_malformed_json_gets_invalid_argument_and_connection_survives(pair) -> None:
    raw, good = pair
    raw.send(b"{this is not json\n")
    f = raw.frame()
    assert f["id"] is None and f["error"]["code"] == "INVALID_ARGUMENT"
    assert "malformed JSON" in f["error"]["message"]
    assert good.call("System.Ping")["pong"] is True
    assert raw.call(2, "System.Ping")["result"]["pong"] is True


def test_unknown_method(pair) -> None:
    raw, _ = pair
    f = raw.call(3, "Nope.Nothing")
    assert f == {
        "id": 3,
        "error": {
            "code": "NOT_FOUND",
            "message": "unknown method 'Nope.Nothing'; System.Describe lists the methods",
            "details": {"field": "method", "method": "Nope.Nothing"},
        },
    }


def test_wrong_param_types_name_the_field(pair) -> None:
    raw, good = pair
    f = raw.call(4, "Sites.Get", {"name": 42})
    assert f["error"]["code"] == "INVALID_ARGUMENT"
    assert f["error"]["details"]["field"] == "params.name"
    assert "Expected `str`, got `int`" in f["error"]["message"]
    f = raw.call(5, "Sites.Create", {"name": "ok", "latitude": 123})
    assert f["error"]["details"]["field"] == "params.latitude"
    f = raw.call(6, "Sites.Create", {"name": "ok", "colour": "red"})
    assert f["error"]["details"]["field"] == "params.colour"
    f = raw.call(7, "Sites.List", [1, 2])
    assert f["error"]["code"] == "INVALID_ARGUMENT"
    raw.send(b'{"id": 8}\n')
    f = raw.frame()
    assert f["id"] == 8 and "method" in f["error"]["message"]
    assert good.call("System.Ping")["pong"] is True


def test_oversized_frame_closes_only_that_connection(shared_daemon: RunningDaemon) -> None:
    raw = Raw(shared_daemon.socket)
    good = shared_daemon.client()
    try:
        big = b'{"id": 1, "method": "System.Ping", "params": {"pad": "' + b"x" * (1024 * 1024 + 10) + b'"}}\n'
        try:
            raw.send(big)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon may close before we finish writing
        f = raw.frame()
        assert f["id"] is None and f["error"]["code"] == "RESOURCE_EXHAUSTED"
        assert "1048576" in f["error"]["message"]
        assert raw.closed_by_peer()
        assert good.call("System.Ping")["pong"] is True
    finally:
        raw.close()
        good.close()


def test_frame_just_under_the_limit_is_served(pair) -> None:
    raw, _ = pair
    head = b'{"id": 9, "method": "System.Ping", "params": {}'
    pad = b" " * (1024 * 1024 - len(head) - 1)  # insignificant JSON whitespace
    raw.send(head + pad + b"}\n")
    assert raw.frame()["result"]["pong"] is True


def test_calls_are_multiplexed_by_id(pair) -> None:
    raw, _ = pair
    # A stream that outlives two unary calls sent after it: replies interleave by id.
    raw.send(b'{"id": "hb", "method": "System.Heartbeat", "params": {"interval_s": 0.2, "count": 2}}\n')
    raw.send(b'{"id": 1, "method": "System.Ping"}\n{"id": 2, "method": "Sites.List"}\n')
    frames = [raw.frame() for _ in range(5)]
    by_id: dict = {}
    for f in frames:
        by_id.setdefault(f["id"], []).append(f)
    assert by_id[1][0]["result"]["pong"] is True
    assert "sites" in by_id[2][0]["result"]
    assert [("event" in f, f.get("end")) for f in by_id["hb"]] == [(True, None), (True, None), (False, True)]
    assert [f["event"]["seq"] for f in by_id["hb"][:2]] == [1, 2]


def test_cancelled_stream_ends_and_the_connection_goes_on(pair) -> None:
    raw, good = pair
    raw.send(b'{"id": 10, "method": "System.Heartbeat", "params": {"interval_s": 0.05}}\n')
    first = raw.frame()
    assert first["id"] == 10 and first["event"]["seq"] == 1
    raw.send(b'{"id": 11, "method": "Stream.Cancel", "params": {"stream": 10}}\n')
    seen_end = seen_result = False
    for _ in range(50):
        f = raw.frame()
        if f["id"] == 11:
            assert f["result"] == {"cancelled": True}
            seen_result = True
        elif f["id"] == 10 and f.get("end"):
            seen_end = True
        if seen_end and seen_result:
            break
    assert seen_end and seen_result
    # Cancelling again: the stream is gone.
    f = raw.call(12, "Stream.Cancel", {"stream": 10})
    assert f["error"]["code"] == "NOT_FOUND"
    assert raw.call(13, "System.Ping")["result"]["pong"] is True
    assert good.call("System.Ping")["pong"] is True


def test_stream_needs_a_unique_id(pair) -> None:
    raw, _ = pair
    f = raw.call(None, "System.Heartbeat", {"count": 1})
    assert f["error"]["code"] == "INVALID_ARGUMENT" and f["error"]["details"]["field"] == "id"


def test_client_cancels_stream_when_loop_is_left(shared_daemon: RunningDaemon) -> None:
    with shared_daemon.client() as c:
        seqs = []
        for event in c.stream("System.Heartbeat", {"interval_s": 0.01}):
            seqs.append(event["seq"])
            if len(seqs) == 3:
                break
        assert seqs == [1, 2, 3]
        assert c.call("System.Ping")["pong"] is True
        status = c.call("System.Status")
        api = next(s for s in status["subsystems"] if s["name"] == "api")
        assert api["state"] == "ok"


def test_disconnect_mid_stream_does_not_hurt_the_daemon(shared_daemon: RunningDaemon) -> None:
    raw = Raw(shared_daemon.socket)
    raw.send(b'{"id": 1, "method": "System.Heartbeat", "params": {"interval_s": 0.01}}\n')
    raw.frame()
    raw.close()
    time.sleep(0.1)
    with shared_daemon.client() as c:
        assert c.call("System.Ping")["pong"] is True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=st.lists(st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b), min_size=1, max_size=5))
def test_random_frames_on_the_live_socket(shared_daemon: RunningDaemon, junk: list[bytes]) -> None:
    raw = Raw(shared_daemon.socket)
    try:
        raw.send(b"\n".join(junk) + b"\n")
        replies = [raw.frame() for j in junk if j.strip()]
        for f in replies:
            assert ("error" in f) or ("result" in f) or ("event" in f) or f.get("end")
            if "error" in f:
                assert f["error"]["code"] in {"INVALID_ARGUMENT", "NOT_FOUND", "RESOURCE_EXHAUSTED"}
        assert raw.call("after", "System.Ping")["result"]["pong"] is True
    finally:
        raw.close()


def test_idle_connection_is_closed_but_not_one_with_a_stream(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "idle", api_extra="idle_timeout_s = 1.0\n")
    try:
        idle = Raw(d.socket)
        busy = Raw(d.socket)
        busy.send(b'{"id": 1, "method": "System.Heartbeat", "params": {"interval_s": 0.5}}\n')
        f = idle.frame()  # blocks until the daemon gives up on us
        assert f["id"] is None and f["error"]["code"] == "DEADLINE_EXCEEDED"
        assert idle.closed_by_peer()
        time.sleep(1.5)
        seqs = [busy.frame()["event"]["seq"] for _ in range(3)]
        assert seqs == sorted(seqs)
        busy.send(b'{"id": 2, "method": "System.Ping"}\n')
        f = busy.frame()
        while f["id"] != 2:
            f = busy.frame()
        assert f["result"]["pong"] is True
        idle.close()
        busy.close()
    finally:
        assert d.stop() == 0


def test_peer_credentials_are_recorded(shared_daemon: RunningDaemon) -> None:
    import os

    with shared_daemon.client() as c:
        c.call("Sites.Create", {"name": "cred-check"})
        c.call("Sites.Delete", {"name": "cred-check"})
    from sqlalchemy import create_engine, text

    eng = create_engine(f"sqlite:///{shared_daemon.home}/data/scada.db")
    with eng.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT method, unix_uid, outcome, prev_hash, hash FROM audit_log WHERE target = 'cred-check' ORDER BY id"
            )
        ).all()
    eng.dispose()
    assert [r.method for r in rows] == ["Sites.Create", "Sites.Delete"]
    assert all(r.unix_uid == os.getuid() and r.outcome == "ok" for r in rows)
    assert rows[1].prev_hash == rows[0].hash


def test_random_socket_client_does_not_block_others(shared_daemon: RunningDaemon) -> None:
    # A client that sends half a frame and stalls must not delay anyone else.
    raw = Raw(shared_daemon.socket)
    try:
        raw.send(b'{"id": 1, "method": "Sys')
        t0 = time.perf_counter()
        with Client(shared_daemon.socket) as c:
            for _ in range(50):
                c.call("System.Ping")
        assert time.perf_counter() - t0 < 5
        raw.send(b'tem.Ping"}\n')
        assert raw.frame()["result"]["pong"] is True
    finally:
        raw.close()
