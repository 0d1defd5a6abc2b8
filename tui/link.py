"""The console's one connection to scadad: reconnects with backoff, resubscribes streams.

Screens never hold a client of their own. They call `Link.call` for unary calls and
register long-lived streams with `Link.subscribe`; the link restarts every registered
stream after each reconnect, so a daemon restart costs the operator nothing but a
few greyed seconds. State changes reach the app through `on_state`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from scadad.api.client import AsyncClient, DaemonUnreachable
from scadad.api.errors import ScadaError, Unauthenticated, Unavailable

log = logging.getLogger("tui.link")

# Reconnect delays: quick first retries (a daemon restart takes about a second), then
# a calm ceiling so a console left open overnight does not hammer a stopped daemon.
BACKOFF_FIRST_S = 0.25
BACKOFF_CAP_S = 5.0
# How long `Link.stop` lets the stream tasks finish.
STOP_WAIT_S = 1.0


def backoff_s(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before reconnect ``attempt`` (0-based): doubling, capped, jittered in [d/2, d]."""
    d = min(BACKOFF_CAP_S, BACKOFF_FIRST_S * (2**attempt))
    return d * (0.5 + 0.5 * (rng or random).random())


class LinkState(Enum):
    CONNECTING = "connecting"
    ONLINE = "online"
    LOST = "lost"


EventHandler = Callable[[dict[str, Any]], None]


@dataclass
class Subscription:
    """A stream the link keeps open across reconnects until `cancel()`."""

    method: str
    params: dict[str, Any]
    handler: EventHandler
    on_error: Callable[[ScadaError], None] | None = None
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    cancelled: bool = False
    link: Link | None = field(default=None, repr=False)

    def cancel(self) -> None:
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()
            self.task = None
        if self.link is not None and self in self.link.subscriptions:
            self.link.subscriptions.remove(self)


class Link:
    """One AsyncClient, kept connected; calls fail fast with UNAVAILABLE while it is down."""

    def __init__(self, socket_path: Path | str | None, token: str | None = None) -> None:
        self.client = AsyncClient(socket_path, token)
        self.state = LinkState.CONNECTING
        self.last_error = ""
        self.connects = 0  # successful connections so far (1 after the first)
        self.subscriptions: list[Subscription] = []
        self.on_state: Callable[[LinkState], None] = lambda state: None
        self.on_connect: Callable[[], Any] = lambda: None
        self._runner: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()

    @property
    def path(self) -> Path:
        return self.client.path

    @property
    def token(self) -> str | None:
        return self.client.token

    @token.setter
    def token(self, token: str | None) -> None:
        self.client.token = token

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="console link")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            self._runner = None
        # Close first: a stream cancelled on an open connection would ask the daemon to
        # cancel it and wait for an answer that, once the reader is gone, never comes.
        await self.client.close()
        tasks = [sub.task for sub in self.subscriptions if sub.task is not None]
        for sub in list(self.subscriptions):
            sub.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_WAIT_S)

    def _set_state(self, state: LinkState) -> None:
        if state is not self.state:
            self.state = state
            try:
                self.on_state(state)
            except Exception:  # a bug in the listener must not end the reconnect loop
                log.exception("link state listener failed")

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self.client.connect()
            except ScadaError as exc:
                self.last_error = exc.message
                self._set_state(LinkState.LOST if self.connects else LinkState.CONNECTING)
                await asyncio.sleep(backoff_s(attempt))
                attempt += 1
                continue
            attempt = 0
            self.connects += 1
            self.last_error = ""
            for sub in self.subscriptions:
                self._start(sub)
            self._set_state(LinkState.ONLINE)
            try:
                result = self.on_connect()
                if asyncio.iscoroutine(result):
                    await result
            except ScadaError as exc:
                self.last_error = exc.message
            except Exception:  # a bug in on_connect must not end the reconnect loop
                log.exception("on_connect failed")
            await self._wait_lost()
            self.last_error = self.client._lost.message if self.client._lost else "connection closed"
            await self.client.close()
            self._set_state(LinkState.LOST)
            await asyncio.sleep(backoff_s(0))

    async def _wait_lost(self) -> None:
        reader = self.client._reader_task
        if reader is not None:
            try:
                await asyncio.shield(reader)
            except asyncio.CancelledError:
                if not reader.cancelled():
                    raise

    async def call(self, method: str, params: Any = None, result_type: Any = None) -> Any:
        """One unary call; raises `DaemonUnreachable` at once while the link is down."""
        if self.state is not LinkState.ONLINE:
            raise DaemonUnreachable(f"not connected to scadad at {self.path}: {self.last_error or 'connecting'}")
        return await self.client.call(method, params, result_type)

    def subscribe(
        self,
        method: str,
        params: dict[str, Any],
        handler: EventHandler,
        on_error: Callable[[ScadaError], None] | None = None,
    ) -> Subscription:
        """Keep ``method`` streaming into ``handler`` (now if online, and after every reconnect)."""
        sub = Subscription(method, params, handler, on_error, link=self)
        self.subscriptions.append(sub)
        if self.state is LinkState.ONLINE:
            self._start(sub)
        return sub

    def restart(self, sub: Subscription) -> None:
        """Open ``sub``'s stream again now (one the daemon ended, e.g. after a flood);
        while offline the reconnect does it."""
        if not sub.cancelled and self.state is LinkState.ONLINE:
            self._start(sub)

    def resubscribe_all(self) -> None:
        """Restart every stream (after a login changed what the caller may see)."""
        for sub in self.subscriptions:
            self._start(sub)

    def _start(self, sub: Subscription) -> None:
        if sub.task is not None:
            sub.task.cancel()
        sub.task = asyncio.create_task(self._pump(sub), name=f"stream {sub.method}")

    async def _pump(self, sub: Subscription) -> None:
        try:
            async for event in self.client.stream(sub.method, sub.params):
                if sub.cancelled:
                    return
                try:
                    sub.handler(event)
                except Exception:  # a bug in one screen's handler: drop the event, keep the stream
                    log.exception("handler of stream %s failed", sub.method)
        except Unavailable:
            return  # the run loop notices and resubscribes after reconnecting
        except Unauthenticated as exc:
            if sub.on_error is not None:
                sub.on_error(exc)
        except ScadaError as exc:
            log.debug("stream %s ended: %s", sub.method, exc)
            if sub.on_error is not None:
                sub.on_error(exc)
