"""The in-process bus: fan-out by topic, and slow subscribers dropped, never waited for."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

from scadad.bus import Bus, Dropped
from tests.conftest import RunningDaemon


def test_fan_out_and_topics() -> None:
    async def main() -> None:
        bus = Bus()
        a, b, other = bus.subscribe("t"), bus.subscribe("t"), bus.subscribe("u")
        for i in range(3):
            bus.publish("t", i)
        assert [await a.get() for _ in range(3)] == [0, 1, 2]
        assert [await b.get() for _ in range(3)] == [0, 1, 2]
        assert other.queue.empty() and bus.published["t"] == 3
        a.close()
        bus.publish("t", 9)
        assert a.queue.empty() and await b.get() == 9
        assert bus.subscribers() == 2

    asyncio.run(main())


def test_slow_subscriber_is_dropped_not_waited_for() -> None:
    async def main() -> None:
        bus = Bus()
        slow, fast = bus.subscribe("t", maxsize=2), bus.subscribe("t", maxsize=100)
        for i in range(5):
            bus.publish("t", i)  # never blocks, even though `slow` is full after two
        assert [await fast.get() for _ in range(5)] == [0, 1, 2, 3, 4]
        assert bus.drops["t"] == 1 and bus.subscribers() == 1
        assert [await slow.get(), await slow.get()] == [0, 1]  # what it had is still delivered
        with pytest.raises(Dropped, match="fell 2 events behind"):
            await slow.get()

    asyncio.run(main())


def test_audit_watch_streams_new_records(shared_daemon: RunningDaemon) -> None:
    seen: list[dict] = []

    def follow() -> None:
        with shared_daemon.client() as c:
            for rec in c.stream("Audit.Watch", {"method": "Sites."}):
                seen.append(rec)
                if len(seen) == 2:
                    break

    t = threading.Thread(target=follow)
    t.start()
    time.sleep(0.3)  # let the stream subscribe
    with shared_daemon.client() as c:
        c.call("Equipment.List")  # not audited (reads) and filtered anyway
        c.call("Sites.Create", {"name": "watched"})
        c.call("Sites.Delete", {"name": "watched"})
    t.join(10)
    assert not t.is_alive()
    assert [(r["method"], r["target"], r["outcome"]) for r in seen] == [
        ("Sites.Create", "watched", "ok"),
        ("Sites.Delete", "watched", "ok"),
    ]
    assert seen[1]["id"] == seen[0]["id"] + 1 and json.loads(seen[0]["params"])["name"] == "watched"
