"""The local API server: NDJSON over a Unix socket, one dispatcher for every call.

One place turns a frame into a call: decode, look the method up, validate params
against its declared type, check its permission, run it, and convert whatever it
raised into a wire error. Handlers never see bytes and never write frames.

A bad frame costs the client an error, never the connection (an oversized frame is
the exception: the rest of that line cannot be trusted, so only that connection is
closed). Nothing a client sends can stop the daemon from serving the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from scadad.api import protocol
from scadad.api.errors import (
    ErrorCode,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ScadaError,
)
from scadad.api.messages import CancelParams, CancelResult
from scadad.api.registry import CallContext, MethodSpec, Peer, Registry, Service, rpc

log = logging.getLogger("scadad.api")

_PEERCRED_FMT = "3i"


@dataclass(slots=True)
class ServerLimits:
    """Per-connection limits; changeable at run time (SIGHUP)."""

    max_frame_bytes: int = protocol.DEFAULT_MAX_FRAME_BYTES
    idle_timeout_s: float = 600.0
    max_inflight: int = 256


# Hooks the daemon plugs in: auth (permission check) and audit (state-changing calls).
AuthorizeHook = Callable[[CallContext, MethodSpec], Awaitable[None]]
AuditHook = Callable[[CallContext, MethodSpec, Any, str, ErrorCode | None], Awaitable[None]]


@dataclass(slots=True)
class ServerStats:
    connections_total: int = 0
    calls_total: int = 0
    errors_total: int = 0
    oversized_frames: int = 0
    malformed_frames: int = 0


class ApiServer:
    """Owns the listening socket and every connection on it."""

    def __init__(
        self,
        registry: Registry,
        limits: ServerLimits,
        authorize: AuthorizeHook | None = None,
        audit: AuditHook | None = None,
    ) -> None:
        self.registry = registry
        self.limits = limits
        self.authorize = authorize
        self.audit = audit
        self.stats = ServerStats()
        self.connections: dict[int, Connection] = {}
        self._server: asyncio.AbstractServer | None = None
        self._next_conn_id = 1
        self.path: Path | None = None

    async def start(self, path: Path, mode: int = 0o660, group: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        # Bind under a restrictive umask so the socket never exists with looser rights.
        old = os.umask(0o117)
        try:
            self._server = await loop.create_unix_server(lambda: Connection(self), path=str(path))
        finally:
            os.umask(old)
        os.chmod(path, mode)
        if group:
            import grp

            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        self.path = path
        log.info("listening", extra={"fields": {"socket": str(path), "mode": oct(mode)}})

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections.values()):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()
        if self.path is not None:
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def _register(self, conn: Connection) -> int:
        cid = self._next_conn_id
        self._next_conn_id += 1
        self.connections[cid] = conn
        self.stats.connections_total += 1
        return cid


class Connection(asyncio.Protocol):
    """One client: reads frames, runs calls concurrently, writes replies in any order."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.limits = server.limits
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.peer = Peer(0, -1, -1)
        self.id = 0
        self.tasks: set[asyncio.Task[Any]] = set()
        self.streams: dict[int | str, asyncio.Task[Any]] = {}
        self.last_activity = time.monotonic()
        self._idle_handle: asyncio.TimerHandle | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._reading_paused = False
        self.closed = False

    # ------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(_PEERCRED_FMT))
                self.peer = Peer(*struct.unpack(_PEERCRED_FMT, raw))
            except OSError:
                pass
        self.id = self.server._register(self)
        self._arm_idle_timer()
        log.debug(
            "connection opened",
            extra={"fields": {"conn": self.id, "pid": self.peer.pid, "uid": self.peer.uid, "gid": self.peer.gid}},
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.pop(self.id, None)
        if self._idle_handle is not None:
            self._idle_handle.cancel()
        for task in list(self.tasks):
            task.cancel()
        self._writable.set()
        log.debug("connection closed", extra={"fields": {"conn": self.id}})

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        buf = self.buffer
        buf += data
        limit = self.limits.max_frame_bytes
        start = 0
        while not self.closed:
            nl = buf.find(b"\n", start)
            if nl < 0:
                if len(buf) - start > limit:
                    self._oversized(len(buf) - start)
                    return
                break
            if nl - start > limit:
                self._oversized(nl - start)
                return
            line = bytes(buf[start:nl])
            start = nl + 1
            if line.strip():
                self._handle_line(line)
        if start:
            del buf[:start]

    # ------------------------------------------------------------ frames

    def _oversized(self, size: int) -> None:
        self.server.stats.oversized_frames += 1
        log.warning(
            "oversized frame; closing connection",
            extra={"fields": {"conn": self.id, "bytes": size, "limit": self.limits.max_frame_bytes}},
        )
        self.write(
            protocol.encode_error(
                None,
                ErrorCode.RESOURCE_EXHAUSTED,
                f"frame exceeds the limit of {self.limits.max_frame_bytes} bytes; connection closed",
                {"limit_bytes": self.limits.max_frame_bytes},
            )
        )
        self.close()

    def _handle_line(self, line: bytes) -> None:
        stats = self.server.stats
        stats.calls_total += 1
        try:
            request = protocol.decode_request(line)
        except protocol.ProtocolError as exc:
            stats.malformed_frames += 1
            stats.errors_total += 1
            self.write(protocol.encode_error(exc.request_id, exc.code, exc.message, exc.details))
            return
        spec = self.server.registry.get(request.method)
        if spec is None:
            stats.errors_total += 1
            self.write(
                protocol.encode_error(
                    request.id,
                    ErrorCode.NOT_FOUND,
                    f"unknown method {request.method!r}; System.Describe lists the methods",
                    {"field": "method", "method": request.method},
                )
            )
            return
        if spec.stream and (request.id is None or request.id in self.streams):
            stats.errors_total += 1
            why = "a stream needs an id" if request.id is None else f"stream id {request.id!r} is already open"
            self.write(protocol.encode_error(request.id, ErrorCode.INVALID_ARGUMENT, why, {"field": "id"}))
            return
        if len(self.tasks) >= self.limits.max_inflight:
            stats.errors_total += 1
            self.write(
                protocol.encode_error(
                    request.id,
                    ErrorCode.RESOURCE_EXHAUSTED,
                    f"more than {self.limits.max_inflight} calls in flight on this connection",
                )
            )
            return
        ctx = CallContext(self.peer, self.id, request.id, spec.name, request.token)
        coro = self._run_stream(spec, request, ctx) if spec.stream else self._run_unary(spec, request, ctx)
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        if spec.stream:
            self.streams[request.id] = task  # type: ignore[index]

    def _decode_params(self, spec: MethodSpec, request: protocol.Request) -> Any:
        try:
            return spec.decoder.decode(request.params)
        except msgspec.ValidationError as exc:
            field = protocol.field_of(exc, "params")
            raise InvalidArgument(
                f"{spec.name}: {protocol.describe_validation_error(exc)}" + (f" (field {field})" if field else ""),
                field=field,
            ) from None

    async def _prepare(self, spec: MethodSpec, request: protocol.Request, ctx: CallContext) -> Any:
        # Permission first: a caller who may not call a method learns nothing about
        # its parameters from the validation errors.
        if self.server.authorize is not None:
            await self.server.authorize(ctx, spec)
        return self._decode_params(spec, request)

    async def _run_unary(self, spec: MethodSpec, request: protocol.Request, ctx: CallContext) -> None:
        params: Any = None
        try:
            params = await self._prepare(spec, request, ctx)
            result = await spec.handler(ctx, params)  # type: ignore[misc]
        except ScadaError as exc:
            self.server.stats.errors_total += 1
            await self._audit(ctx, spec, params if params is not None else protocol.loose(request.params), exc)
            self.write(protocol.encode_error(request.id, exc.code, exc.message, exc.details))
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the one place an unexpected error becomes INTERNAL
            self.server.stats.errors_total += 1
            log.exception("handler failed", extra={"fields": {"method": spec.name, "conn": self.id}})
            await self._audit(ctx, spec, params, exc)
            self.write(
                protocol.encode_error(
                    request.id, ErrorCode.INTERNAL, f"internal error in {spec.name}; the daemon log has the details"
                )
            )
            return
        await self._audit(ctx, spec, params, None)
        self.write(protocol.encode_result(request.id, result))

    async def _run_stream(self, spec: MethodSpec, request: protocol.Request, ctx: CallContext) -> None:
        rid = request.id
        try:
            params = await self._prepare(spec, request, ctx)
            agen = spec.handler(ctx, params)
            try:
                async for event in agen:  # type: ignore[union-attr]
                    if not self._writable.is_set():
                        await self._writable.wait()
                    if self.closed:
                        break
                    self.write(protocol.encode_event(rid, event))
            finally:
                await agen.aclose()  # type: ignore[union-attr]
        except asyncio.CancelledError:
            # Stream.Cancel or the connection went away; either way, say it ended.
            self.write(protocol.encode_end(rid))
            return
        except ScadaError as exc:
            self.server.stats.errors_total += 1
            self.write(protocol.encode_error(rid, exc.code, exc.message, exc.details))
            return
        except Exception:
            self.server.stats.errors_total += 1
            log.exception("stream failed", extra={"fields": {"method": spec.name, "conn": self.id}})
            self.write(protocol.encode_error(rid, ErrorCode.INTERNAL, f"internal error in {spec.name}"))
            return
        finally:
            self.streams.pop(rid, None)  # type: ignore[arg-type]
        self.write(protocol.encode_end(rid))

    async def _audit(self, ctx: CallContext, spec: MethodSpec, params: Any, error: BaseException | None) -> None:
        """Record a state-changing call, refused ones included (with the params as sent)."""
        if not spec.mutates or self.server.audit is None:
            return
        code = error.code if isinstance(error, ScadaError) else (ErrorCode.INTERNAL if error else None)
        try:
            await self.server.audit(ctx, spec, params, "error" if error else "ok", code)
        except Exception:
            log.exception("audit write failed", extra={"fields": {"method": spec.name}})

    # ------------------------------------------------------------ output and lifetime

    def write(self, frame: bytes) -> None:
        if self.transport is not None and not self.closed and not self.transport.is_closing():
            self.transport.write(frame)

    def cancel_stream(self, stream_id: int | str) -> bool:
        task = self.streams.get(stream_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()
        self.closed = True

    def _arm_idle_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._idle_handle = loop.call_later(max(1.0, self.limits.idle_timeout_s / 4), self._check_idle)

    def _check_idle(self) -> None:
        if self.closed:
            return
        idle = time.monotonic() - self.last_activity
        if idle >= self.limits.idle_timeout_s and not self.tasks:
            log.info("closing idle connection", extra={"fields": {"conn": self.id, "idle_s": round(idle, 1)}})
            self.write(
                protocol.encode_error(
                    None,
                    ErrorCode.DEADLINE_EXCEEDED,
                    f"connection idle for {self.limits.idle_timeout_s:g} s; closed",
                )
            )
            self.close()
            return
        self._arm_idle_timer()


class StreamService(Service):
    """Stream.*: control of server streams on the caller's own connection."""

    name = "Stream"

    def __init__(self, server: ApiServer) -> None:
        self._server = server

    @rpc(permission="public")  # only ever reaches streams of the caller's own connection
    async def cancel(self, ctx: CallContext, params: CancelParams) -> CancelResult:
        """Stop a server stream opened on this connection; it then sends its end frame."""
        conn = self._server.connections.get(ctx.connection_id)
        if conn is None:
            raise FailedPrecondition("connection is closing")
        if params.stream not in conn.streams:
            raise NotFound(f"no open stream with id {params.stream!r} on this connection", {"field": "params.stream"})
        return CancelResult(cancelled=conn.cancel_stream(params.stream))
