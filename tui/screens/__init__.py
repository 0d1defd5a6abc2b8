"""The console's top-level screens, in the order of their number keys.

To add a screen (alarms, energy, work orders ...): write a `ConsoleScreen` subclass in
its own module and add one `ScreenEntry` below. The number key, the mnemonic, the
command palette entry and the help text all follow from this list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.screen import Screen


@dataclass(frozen=True)
class ScreenEntry:
    name: str  # the Textual mode name
    title: str
    key: str  # number key that switches to it
    mnemonic: str  # upper-case letter that switches to it
    help: str
    factory: Callable[[], Screen[None]]


def _overview() -> Screen[None]:
    from tui.screens.overview import OverviewScreen

    return OverviewScreen()


def _tags() -> Screen[None]:
    from tui.screens.tags import TagsScreen

    return TagsScreen()


def _trends() -> Screen[None]:
    from tui.screens.trends import TrendsScreen

    return TrendsScreen()


def _devices() -> Screen[None]:
    from tui.screens.devices import DevicesScreen

    return DevicesScreen()


def _alarms() -> Screen[None]:
    from tui.screens.alarms import AlarmsScreen

    return AlarmsScreen()


def _energy() -> Screen[None]:
    from tui.screens.energy import EnergyScreen

    return EnergyScreen()


SCREENS: list[ScreenEntry] = [
    ScreenEntry(
        "overview", "Overview", "1", "O", "plant summary: devices, tag quality, power, trends, events", _overview
    ),
    ScreenEntry("tags", "Tags", "2", "T", "tag browser: live values by hierarchy, search, write", _tags),
    ScreenEntry("trends", "Trends", "3", "R", "history of one or more tags over 1 h to 7 d, live tail", _trends),
    ScreenEntry("devices", "Devices", "4", "D", "communication health per device, enable / disable", _devices),
    # L, not A: on the Alarms screen A acknowledges every listed alarm.
    ScreenEntry(
        "alarms", "Alarms", "5", "L", "current alarms by priority: acknowledge, shelve, comment, history", _alarms
    ),
    ScreenEntry(
        "energy", "Energy", "6", "E", "meter tree, power flow, DG and solar, consumption by hour and day", _energy
    ),
]
