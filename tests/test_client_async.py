"""The asyncio client the console will use: multiplexed calls, streams, errors, a lost daemon."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from scadad.api.client import AsyncClient, DaemonUnreachable
from scadad.api.errors import InvalidArgument, NotFound
from scadad.api.messages import PingResult
from tests.conftest import RunningDaemon, start_daemon


def test_concurrent_calls_on_one_connection(shared_daemon: RunningDaemon) -> None:
    async def main() -> None:
        async with AsyncClient(shared_daemon.socket) as c:
            results = await asyncio.gather(*(c.call("System.Ping", result_type=PingResult) for _ in range(50)))
            assert len(results) == 50 and all(r.pong for r in results)
            with pytest.raises(NotFound):
                await c.call("Sites.Get", {"name": "does-not-exist"})
            with pytest.raises(InvalidArgument) as e:
                await c.call("Sites.Get", {"name": 7})
            assert e.value.details["field"] == "params.name"
            assert (await c.call("System.Ping"))["pong"] is True  # the connection survives errors

    asyncio.run(main())


def test_stream_and_cancel_by_leaving_the_loop(shared_daemon: RunningDaemon) -> None:
    async def main() -> None:
        async with AsyncClient(shared_daemon.socket) as c:
            seqs = []
            async for ev in c.stream("System.Heartbeat", {"interval_s": 0.01}):
                seqs.append(ev["seq"])
                if len(seqs) == 3:
                    break
            assert seqs == [1, 2, 3]
            finite = [ev["seq"] async for ev in c.stream("System.Heartbeat", {"interval_s": 0.01, "count": 2})]
            assert finite == [1, 2]
            # A unary call in flight while a stream runs on the same connection.
            agen = c.stream("System.Heartbeat", {"interval_s": 0.05})
            first = await agen.__anext__()
            assert first["seq"] == 1 and (await c.call("System.Ping"))["pong"] is True
            await agen.aclose()

    asyncio.run(main())


def test_unreachable_and_lost_daemon(tmp_path: Path) -> None:
    async def unreachable() -> None:
        with pytest.raises(DaemonUnreachable, match="cannot reach scadad"):
            await AsyncClient(tmp_path / "none.sock").connect()

    asyncio.run(unreachable())
    d = start_daemon(tmp_path / "h")

    async def lost() -> None:
        c = AsyncClient(d.socket)
        await c.connect()
        assert (await c.call("System.Ping"))["pong"] is True
        pending = asyncio.ensure_future(
            c.stream("System.Heartbeat", {"interval_s": 0.05}).__anext__()
        )  # a stream open when the daemon goes away
        await pending
        assert d.stop() == 0
        await asyncio.sleep(0.2)
        assert not c.connected
        with pytest.raises(DaemonUnreachable):
            await c.call("System.Ping")
        await c.close()

    asyncio.run(lost())
