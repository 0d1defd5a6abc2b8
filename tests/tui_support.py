"""Helpers for console tests: a daemon with the simulated plant, and screen text."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App
from textual.pilot import Pilot

from tests.conftest import RunningDaemon, start_daemon

SIM = "[simulator]\nenabled = true\nseed = 1\n"


def start_sim_daemon(home: Path, extra: str = "", **kwargs) -> RunningDaemon:  # type: ignore[no-untyped-def]
    """A real scadad with the built-in simulated plant (sim/<kind>-<n>/<point> tags), polled."""
    d = start_daemon(home, SIM + extra, **kwargs)
    with d.client() as c:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            devices = c.call("Devices.Status")["devices"]
            # Online and every tag GOOD: screens drawn right after see a settled plant.
            if devices and all(x["state"] == "online" and not x.get("tags_bad") for x in devices):
                break
            time.sleep(0.1)
    return d


def screen_text(app: App) -> str:
    """The whole screen as plain text (one line per terminal row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(seg.text for seg in s) for s in strips)


async def wait_for(pilot: Pilot, cond: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    """Let the app run until ``cond()`` holds; fail naming ``what`` and showing the screen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {what or cond}\n--- screen ---\n{screen_text(pilot.app)}")


async def wait_text(pilot: Pilot, text: str, timeout: float = 20.0) -> None:
    await wait_for(pilot, lambda: text in screen_text(pilot.app), timeout, repr(text))


def run(coro) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(coro)
