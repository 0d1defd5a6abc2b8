"""The API client shared by scadactl (sync) and the console (async).

Results come back as decoded JSON (dicts and lists); pass `result_type=` to get a typed
struct from `scadad.api.messages` instead. Wire errors are raised as the matching
`ScadaError` subclass; a daemon that cannot be reached raises `DaemonUnreachable`.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from scadad.api import protocol
from scadad.api.errors import DeadlineExceeded, ScadaError, Unavailable

T = TypeVar("T")

_READ_CHUNK = 65536


class DaemonUnreachable(Unavailable):
    """No daemon answers on the socket (not running, wrong path, or no permission)."""


def _unreachable(path: Path, exc: OSError) -> DaemonUnreachable:
    reason = exc.strerror or str(exc)
    hint = "is scadad running? (--socket or $SCADA_SOCKET select another socket)"
    if isinstance(exc, PermissionError):
        hint = "the socket is mode 0660: join the daemon's group or use sudo"
    return DaemonUnreachable(f"cannot reach scadad at {path}: {reason}; {hint}", {"socket": str(path)})


def _params_to_wire(params: Any) -> Any:
    if params is None or isinstance(params, dict):
        return params
    return msgspec.to_builtins(params)


def _result(frame: dict[str, Any], result_type: type[T] | None) -> Any:
    if "error" in frame:
        raise ScadaError.from_wire(frame["error"])
    result = frame.get("result")
    return msgspec.convert(result, result_type) if result_type is not None else result


class Client:
    """A blocking client: one call at a time, plus streams as iterators."""

    def __init__(
        self, socket_path: Path | str | None = None, token: str | None = None, timeout: float | None = 30.0
    ) -> None:
        self.path = Path(socket_path) if socket_path else protocol.default_socket_path()
        self.token = token
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._ids = itertools.count(1)
        self._parked: dict[Any, deque[dict[str, Any]]] = {}

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except OSError as exc:
            sock.close()
            raise _unreachable(self.path, exc) from None
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def set_timeout(self, timeout: float | None) -> None:
        """Seconds to wait for each answer from now on (None: wait as long as it takes)."""
        self.timeout = timeout
        if self._sock is not None:
            self._sock.settimeout(timeout)

    def _send(self, request_id: int, method: str, params: Any) -> None:
        self.connect()
        assert self._sock is not None
        try:
            self._sock.sendall(protocol.encode_request(request_id, method, _params_to_wire(params), self.token))
        except OSError as exc:
            self.close()
            raise _unreachable(self.path, exc) from None

    def _read_frame(self) -> dict[str, Any]:
        assert self._sock is not None
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                return protocol.decode_frame(line)
            try:
                chunk = self._sock.recv(_READ_CHUNK)
            except TimeoutError:
                raise protocol_timeout(self.timeout) from None
            except OSError as exc:
                self.close()
                raise _unreachable(self.path, exc) from None
            if not chunk:
                self.close()
                raise DaemonUnreachable(f"scadad closed the connection on {self.path}", {"socket": str(self.path)})
            self._buf += chunk

    def _wait(self, request_id: Any) -> dict[str, Any]:
        parked = self._parked.get(request_id)
        if parked:
            return parked.popleft()
        while True:
            frame = self._read_frame()
            fid = frame.get("id")
            if fid == request_id:
                return frame
            if fid is None and "error" in frame:
                raise ScadaError.from_wire(frame["error"])
            self._parked.setdefault(fid, deque()).append(frame)

    def call(self, method: str, params: Any = None, result_type: type[T] | None = None) -> Any:
        """One unary call; returns its result or raises its error."""
        rid = next(self._ids)
        self._send(rid, method, params)
        return _result(self._wait(rid), result_type)

    def frames(self, method: str, params: Any = None) -> Iterator[dict[str, Any]]:
        """Raw frames of one call: events, then the result, error or end frame.

        Works for unary calls and streams alike (scadactl call uses it without knowing
        which one a method is). Leaving the loop before the last frame cancels a stream.
        """
        rid = next(self._ids)
        self._send(rid, method, params)
        finished = False
        try:
            while True:
                frame = self._wait(rid)
                finished = "event" not in frame
                if not finished and self._sock is not None:
                    # A live stream may go quiet for longer than a call may take.
                    self._sock.settimeout(None)
                yield frame
                if finished:
                    return
        finally:
            if self._sock is not None:
                self._sock.settimeout(self.timeout)
            if not finished and self._sock is not None:
                try:
                    self.call("Stream.Cancel", {"stream": rid})
                except ScadaError:
                    pass  # it ended on its own meanwhile; its end frame is already here
                while True:
                    frame = self._wait(rid)
                    if frame.get("end") or "error" in frame:
                        break
                self._parked.pop(rid, None)

    def stream(self, method: str, params: Any = None) -> Iterator[dict[str, Any]]:
        """Iterate a server stream's events; leaving the loop early cancels the stream."""
        for frame in self.frames(method, params):
            if "event" in frame:
                yield frame["event"]
            elif "error" in frame:
                raise ScadaError.from_wire(frame["error"])


def protocol_timeout(timeout: float | None) -> ScadaError:
    return DeadlineExceeded(f"no answer from scadad within {timeout or 0:g} s")


class AsyncClient:
    """An asyncio client: many calls in flight on one connection, streams as async iterators."""

    def __init__(self, socket_path: Path | str | None = None, token: str | None = None) -> None:
        self.path = Path(socket_path) if socket_path else protocol.default_socket_path()
        self.token = token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._ids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._streams: dict[Any, asyncio.Queue[dict[str, Any]]] = {}
        self._reader_task: asyncio.Task[None] | None = None
        self._lost: ScadaError | None = None

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        return self._writer is not None and self._lost is None

    async def connect(self) -> None:
        try:
            self._reader, self._writer = await asyncio.open_unix_connection(str(self.path), limit=2**24)
        except OSError as exc:
            raise _unreachable(self.path, exc) from None
        self._lost = None
        self._reader_task = asyncio.create_task(self._read_loop())

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            self._reader_task = None
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
            self._writer = None

    async def _read_loop(self) -> None:
        assert self._reader is not None
        error: ScadaError = DaemonUnreachable(f"scadad closed the connection on {self.path}")
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                frame = protocol.decode_frame(line)
                fid = frame.get("id")
                if fid in self._streams:
                    self._streams[fid].put_nowait(frame)
                    continue
                fut = self._pending.pop(fid, None)
                if fut is not None and not fut.done():
                    fut.set_result(frame)
                elif fid is None and "error" in frame:
                    error = ScadaError.from_wire(frame["error"])
        except (OSError, ValueError) as exc:
            error = DaemonUnreachable(f"connection to scadad at {self.path} failed: {exc}")
        self._lost = error
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(error)
        self._pending.clear()
        for queue in self._streams.values():
            queue.put_nowait({"error": error.to_wire()})

    def _send(self, rid: Any, method: str, params: Any) -> None:
        if self._writer is None or self._lost is not None:
            raise self._lost or DaemonUnreachable(f"not connected to scadad at {self.path}")
        self._writer.write(protocol.encode_request(rid, method, _params_to_wire(params), self.token))

    async def call(self, method: str, params: Any = None, result_type: type[T] | None = None) -> Any:
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            self._send(rid, method, params)
        except ScadaError:
            self._pending.pop(rid, None)
            raise
        return _result(await fut, result_type)

    async def stream(self, method: str, params: Any = None) -> AsyncIterator[dict[str, Any]]:
        """Events of a server stream; breaking out of the loop cancels it on the daemon."""
        rid = next(self._ids)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._streams[rid] = queue
        finished = False
        try:
            self._send(rid, method, params)
            while True:
                frame = await queue.get()
                if "event" in frame:
                    yield frame["event"]
                elif frame.get("end"):
                    finished = True
                    return
                else:
                    finished = True
                    _result(frame, None)
                    return
        finally:
            if not finished and self.connected:
                try:
                    await self.call("Stream.Cancel", {"stream": rid})
                except ScadaError:
                    pass
            self._streams.pop(rid, None)
