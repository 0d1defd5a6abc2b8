"""The in-process bus: subsystems publish events by topic, streams and subsystems subscribe.

Publishers never wait. Each subscriber has a bounded queue; one that falls so far behind
that its queue is full is counted and dropped (its next read raises `Dropped`), because
a stalled console must never slow the poller, the alarm engine or the audit trail.
Topics (ARCHITECTURE.md): tag.value, tag.quality, device.state, alarm.event,
energy.interval, workorder.event, report.run, audit.record.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

DEFAULT_QUEUE = 1000


class Dropped(Exception):
    """This subscriber fell behind by a full queue and was dropped."""


class Subscription:
    """One subscriber's bounded queue on one topic; iterate it with `async for`."""

    def __init__(self, bus: Bus, topic: str, maxsize: int) -> None:
        self.bus = bus
        self.topic = topic
        self.queue: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self.dropped = False

    def offer(self, event: Any) -> None:
        if self.dropped:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            self.bus._drop(self)

    async def get(self) -> Any:
        if self.dropped and self.queue.empty():
            raise Dropped(f"subscriber to {self.topic} fell {self.queue.maxsize} events behind and was dropped")
        if self.dropped:
            return self.queue.get_nowait()
        return await self.queue.get()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        return await self.get()

    def close(self) -> None:
        self.bus._remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Bus:
    def __init__(self) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self.published: Counter[str] = Counter()
        self.drops: Counter[str] = Counter()

    def subscribe(self, topic: str, maxsize: int = DEFAULT_QUEUE) -> Subscription:
        sub = Subscription(self, topic, maxsize)
        self._subs.setdefault(topic, set()).add(sub)
        return sub

    def publish(self, topic: str, event: Any) -> None:
        """Hand `event` to every subscriber of `topic`; never blocks (loop thread only)."""
        self.published[topic] += 1
        for sub in tuple(self._subs.get(topic, ())):
            sub.offer(event)

    def has_subscribers(self, topic: str) -> bool:
        """Whether anyone listens on `topic` (so a publisher can skip building the event)."""
        return bool(self._subs.get(topic))

    def subscribers(self) -> int:
        return sum(len(s) for s in self._subs.values())

    def _drop(self, sub: Subscription) -> None:
        self.drops[sub.topic] += 1
        self._remove(sub)

    def _remove(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.topic)
        if subs is not None:
            subs.discard(sub)
