"""What every console screen shares: the link, the clock, the site's zone, live/lost."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, Any

from textual.app import ComposeResult
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer

from tui.link import Link, LinkState
from tui.widgets.header import StatusHeader

if TYPE_CHECKING:
    from tui.app import ConsoleApp


class ConsoleScreen(Screen[None]):
    """Base of the top-level screens (one per mode).

    Subclasses override `on_link_up` to load what they show (called on first show and
    after every reconnect or login) and use `self.link.subscribe` for live data: the
    link restarts those streams by itself after a reconnect.
    """

    TITLE = ""
    # True once `on_link_up` has finished at least once (tests and benchmarks wait on it).
    loaded = False

    def __init__(self) -> None:
        super().__init__()
        self._shown_timers: list[tuple[Timer, Callable[[], None]]] = []

    def compose(self) -> ComposeResult:
        yield StatusHeader()
        yield from self.compose_body()
        yield Footer()

    def compose_body(self) -> ComposeResult:
        """The screen's own widgets, between the header and the footer."""
        yield from ()

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    @property
    def link(self) -> Link:
        return self.console.link

    @property
    def tz(self) -> tzinfo:
        return self.console.tz

    def now(self) -> float:
        return self.console.clock()

    def on_mount(self) -> None:
        self.watch(self.console, "link_state", self._link_state_changed, init=False)
        self.watch(self.console, "session_epoch", self._session_changed, init=False)
        self.set_class(self.link.state is not LinkState.ONLINE, "-stale")
        if self.link.state is LinkState.ONLINE:
            self.run_worker(self._load, exclusive=True, group="load")

    def on_screen_resume(self) -> None:
        self.console.header_state.screen_title = self.TITLE
        self.console.refresh_header()
        for timer, callback in self._shown_timers:
            timer.resume()
            callback()

    def on_screen_suspend(self) -> None:
        for timer, _ in self._shown_timers:
            timer.pause()

    def every_while_shown(self, seconds: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` every ``seconds`` while this screen is the one shown (and once
        more each time it comes back), so hidden screens cost the daemon nothing."""
        timer = self.set_interval(seconds, callback)
        self._shown_timers.append((timer, callback))
        return timer

    def run_guarded(self, job: Callable[[], Awaitable[None]], group: str) -> None:
        """Run ``job`` as the one worker of ``group`` (a new run replaces a running one);
        a failure is shown to the operator, never raised: a screen must never take the
        console down."""

        async def guarded() -> None:
            try:
                await job()
            except Exception as exc:  # noqa: BLE001
                self.console.report_error(exc)

        self.run_worker(guarded, exclusive=True, group=group)

    def poll_while_shown(self, seconds: float, fetch: Callable[[], Awaitable[None]]) -> Callable[[], None]:
        """Run ``fetch`` every ``seconds`` while this screen is shown and the link is up,
        one at a time. An error that repeats poll after poll is said once, until it
        changes or a poll succeeds. Returns the function that polls now (refresh keys)."""
        last_error = ""

        async def poll() -> None:
            nonlocal last_error
            try:
                await fetch()
                last_error = ""
            except Exception as exc:  # noqa: BLE001 - a screen must never take the console down
                if str(exc) != last_error:
                    last_error = str(exc)
                    self.console.report_error(exc)

        def now() -> None:
            if self.link.state is LinkState.ONLINE and self.is_attached:
                self.run_worker(poll, exclusive=True, group="poll")

        self.every_while_shown(seconds, now)
        return now

    def _link_state_changed(self, state: LinkState) -> None:
        self.set_class(state is not LinkState.ONLINE, "-stale")
        if state is LinkState.ONLINE:
            self.run_worker(self._load, exclusive=True, group="load")

    def _session_changed(self, epoch: int) -> None:
        if self.link.state is LinkState.ONLINE:
            self.run_worker(self._load, exclusive=True, group="load")

    async def _load(self) -> None:
        try:
            await self.on_link_up()
            self.loaded = True
        except Exception as exc:  # noqa: BLE001 - a screen must never take the console down
            self.console.report_error(exc)

    async def on_link_up(self) -> None:
        """Load or reload the screen's data (first show, reconnect, new login)."""

    async def call(self, method: str, params: Any = None) -> Any:
        return await self.link.call(method, params)
