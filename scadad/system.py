"""System.*: liveness, reflection and health of the daemon itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from scadad import __version__, clock
from scadad.api.messages import (
    DescribeResult,
    Empty,
    Heartbeat,
    HeartbeatParams,
    PingResult,
    StatusResult,
)
from scadad.api.protocol import PROTOCOL_VERSION
from scadad.api.registry import CallContext, Registry, Service, rpc
from scadad.auth.permissions import PUBLIC


class SystemService(Service):
    """System.*: ping, describe, status, heartbeat."""

    name = "System"

    def __init__(self, registry: Registry, status: Callable[[], Awaitable[StatusResult]]) -> None:
        self._registry = registry
        self._status = status
        self._describe: DescribeResult | None = None

    @rpc(permission=PUBLIC)
    async def ping(self, ctx: CallContext, params: Empty) -> PingResult:
        """Liveness: answers at once with the server's clock and version."""
        return PingResult(server_time=clock.now(), version=__version__, protocol=PROTOCOL_VERSION)

    @rpc(permission="system.read")
    async def describe(self, ctx: CallContext, params: Empty) -> DescribeResult:
        """Every API method with its params, result (JSON Schema) and required permission."""
        if self._describe is None:  # the registry is fixed once the daemon serves
            self._describe = DescribeResult(
                protocol=PROTOCOL_VERSION, version=__version__, methods=self._registry.describe()
            )
        return self._describe

    @rpc(permission="system.read")
    async def status(self, ctx: CallContext, params: Empty) -> StatusResult:
        """Health of each subsystem, versions, uptime."""
        return await self._status()

    @rpc(permission="system.read", stream=True)
    async def heartbeat(self, ctx: CallContext, params: HeartbeatParams) -> AsyncIterator[Heartbeat]:
        """A tick every `interval_s` (forever, or `count` times): lets a console see a live link."""
        seq = 0
        while params.count == 0 or seq < params.count:
            seq += 1
            yield Heartbeat(seq=seq, server_time=clock.now())
            if params.count and seq >= params.count:
                break
            await asyncio.sleep(params.interval_s)
