"""Overview, Trends and Devices against one real daemon with the simulated plant.

The tests share a module daemon and run in file order: the read-only screens first,
then the ones that disable a device or inject a fault (and undo it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from textual.widgets import DataTable

from scadad.api.client import Client
from tests.conftest import RunningDaemon
from tests.tui_support import screen_text, start_sim_daemon, wait_for, wait_text
from tui.app import ConsoleApp
from tui.screens.devices import DevicesScreen
from tui.screens.overview import OverviewScreen, device_counts, energy_today, is_energy_tag, is_power_tag, site_power
from tui.screens.trends import TrendsScreen, default_pen, resolve_path
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.plot import TrendPlot

SIZE = (120, 40)


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    d = start_sim_daemon(tmp_path_factory.mktemp("screens") / "home")
    yield d
    code = d.stop()
    assert code == 0, f"scadad exited {code}\n{d.log_text()}"


def status(d: RunningDaemon, name: str) -> dict:
    with Client(d.socket) as c:
        return next(x for x in c.call("Devices.Status")["devices"] if x["name"] == name)


def errors(app: ConsoleApp, text: str) -> bool:
    return any(n.severity == "error" and text in n.message for n in app._notifications)


def cell(app: ConsoleApp, row: str, column: str) -> str:
    table = app.screen.query_one(DataTable)
    return str(table.get_cell(row, column))


# ---------------------------------------------------------------------- pure rules


def test_site_power_and_energy_rules() -> None:
    assert is_power_tag("sim/m-1/power_total", "kW") and is_power_tag("a/power_total", "W")
    assert not is_power_tag("sim/m-1/power_l1", "kW") and not is_power_tag("sim/m-1/power_total", "kvar")
    assert is_energy_tag("sim/m-1/import_kwh", "kWh") and is_energy_tag("sim/m-1/import_wh", "Wh")
    assert not is_energy_tag("sim/m-1/export_kwh", "kWh") and not is_energy_tag("sim/m-1/import_kvarh", "kvarh")
    tags = {"a/power_total": "kW", "b/power_total": "W", "c/power_total": "kW"}
    values = {
        "a/power_total": {"value": 10.0, "quality": "GOOD"},
        "b/power_total": {"value": 2500, "quality": "UNCERTAIN"},
        "c/power_total": {"value": 99.0, "quality": "BAD"},
    }
    assert site_power(tags, values) == (12.5, 2, 1)
    assert site_power({"x/power_total": "kW"}, {}) == (None, 0, 1)
    energy = {"a/import_kwh": "kWh", "b/import_wh": "Wh", "c/import_kwh": "kWh", "d/import_kwh": "kWh"}
    latest = {
        "a/import_kwh": {"value": 110.0, "quality": "GOOD"},
        "b/import_wh": {"value": 5000.0, "quality": "GOOD"},
        "c/import_kwh": {"value": 1.0, "quality": "GOOD"},  # went backwards: a new meter
        "d/import_kwh": {"value": 7.0, "quality": "GOOD"},  # no sample since midnight
    }
    baselines = {"a/import_kwh": 100.0, "b/import_wh": 3000.0, "c/import_kwh": 50.0}
    assert energy_today(energy, baselines, latest) == (12.0, 2)
    assert energy_today(energy, {}, latest) == (None, 0)
    assert device_counts([{"state": "online"}, {"state": "offline"}, {"state": "online"}]) == {
        "total": 3, "online": 2, "offline": 1,
    }  # fmt: skip


def test_default_pen_and_typed_paths() -> None:
    def tag(path: str, units: str, value: float, quality: str = "GOOD") -> dict:
        return {"spec": {"path": path, "units": units}, "value": {"value": value, "quality": quality}}

    tags = [tag("a/x/power_l1", "kW", 3.0), tag("a/y/power_total", "kW", 0.0), tag("a/z/power_total", "kW", 5.0)]
    assert default_pen(tags) == "a/z/power_total"
    assert default_pen([tag("a/y/power_total", "kW", 0.0), tag("a/v", "V", 230.0)]) == "a/y/power_total"
    assert default_pen([tag("a/v", "V", 230.0)]) == "a/v"
    assert default_pen([]) is None
    known = ["sim/a/power_total", "sim/b/power_total", "sim/b/voltage_l1"]
    assert resolve_path("sim/a/power_total", known) == ("sim/a/power_total", "")
    assert resolve_path("voltage", known) == ("sim/b/voltage_l1", "")
    path, why = resolve_path("power", known)
    assert path is None and why.startswith("2 tags match")
    assert resolve_path("nothing", known)[0] is None


# ---------------------------------------------------------------------- overview


def test_overview_shows_devices_tags_power_energy_and_sparklines(plant: RunningDaemon) -> None:
    async def drive() -> None:
        app = ConsoleApp(plant.socket, start="overview")
        async with app.run_test(size=SIZE) as pilot:
            await wait_text(pilot, "6/6 online")
            screen = app.screen
            assert isinstance(screen, OverviewScreen)
            await wait_for(pilot, lambda: " kW" in str(screen.query_one("#tile-power").render()), what="site power")
            assert sorted(screen.power_tags) == [
                f"sim/{d}/power_total" for d in ("dg-3", "em24-2", "pm5xxx-1", "sdm630-0")
            ]
            assert sorted(screen.energy_tags) == [
                "sim/em24-2/import_kwh",
                "sim/pm5xxx-1/import_wh",
                "sim/sdm630-0/import_kwh",
            ]
            await wait_text(pilot, "GOOD · 0 BAD")
            text = screen_text(app)
            assert "Site power" in text and "Energy today" in text
            await wait_for(pilot, lambda: "kWh" in str(screen.query_one("#tile-energy").render()), 25, "today's energy")
            # Sparklines: one per power tag, each drawing points of the last hour.
            await wait_for(
                pilot,
                lambda: all(p.pens and p.pens[0].points_between(p.start, p.end) for p in screen.query(TrendPlot)),
                what="sparkline points",
            )
            assert "em24-2/power_total" in screen_text(app)
            assert "Traceback" not in screen_text(app)

    asyncio.run(drive())


def test_overview_at_80x24_keeps_every_figure(plant: RunningDaemon) -> None:
    async def drive() -> None:
        app = ConsoleApp(plant.socket, start="overview", theme="scada-light")
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_text(pilot, "6/6 online")
            await wait_for(pilot, lambda: " kW" in screen_text(app), what="site power")
            text = screen_text(app)
            for label in ("Devices", "Tags", "Site power", "Energy today", "Recent events", "Reload"):
                assert label in text, label

    asyncio.run(drive())


# ---------------------------------------------------------------------- trends


def test_trends_default_pen_spans_and_pens(plant: RunningDaemon) -> None:
    time.sleep(2)  # at least two seconds of history

    async def drive() -> None:
        app = ConsoleApp(plant.socket, start="trends")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, TrendsScreen)
            await wait_for(pilot, lambda: bool(screen.paths), what="a default pen")
            first = screen.paths[0]
            assert first.endswith("/power_total")
            plot = screen.query_one(TrendPlot)
            await wait_for(pilot, lambda: plot.pens and plot.pens[0].points_between(plot.start, plot.end) >= 1,
                           what="points on the pen")  # fmt: skip
            await wait_text(pilot, "avg per 15 s · live")
            assert screen.last_query["every_s"] == 15 and screen.last_query["path"] == first
            assert first in screen_text(app)  # the legend
            assert "┤" in screen_text(app)  # axes drawn

            queries = screen.queries
            await pilot.press("e")  # 8 h
            await wait_for(pilot, lambda: screen.queries > queries and screen.last_query["every_s"] == 120,
                           what="an 8 h query")  # fmt: skip
            await wait_text(pilot, "Span 8 h · avg per 2 min")
            assert "live" not in screen.query_one("#trend-bar").render().plain  # type: ignore[union-attr]
            await pilot.press("k")
            await wait_for(pilot, lambda: screen.last_query["every_s"] == 2520, what="a 7 d query")

            await pilot.press("c")  # custom span: 90 minutes
            for ch in "90m":
                await pilot.press(ch)
            await pilot.press("enter")
            await wait_for(pilot, lambda: screen.last_query["every_s"] == 22, what="a 90 min query")
            await wait_text(pilot, "Span 1 h 30 min")
            await pilot.press("c", "x", "y", "enter")  # a bad span is refused, no traceback
            await wait_for(
                pilot,
                lambda: any(n.title == "Span" and "xy" in n.message for n in app._notifications),
                what="span error",
            )
            await pilot.press("escape")
            await pilot.press("h")
            await wait_for(pilot, lambda: screen.last_query["every_s"] == 15, what="back to 1 h")

            await pilot.press("a")  # add a pen by a unique part of its path
            for ch in "pm5xxx-1/power_total":
                await pilot.press(ch)
            await pilot.press("enter")
            await wait_for(pilot, lambda: len(screen.paths) == 2, what="a second pen")
            assert screen.paths[1] == "sim/pm5xxx-1/power_total"
            await wait_for(pilot, lambda: len(plot.pens) == 2 and plot.pens[1].points_between(plot.start, plot.end) > 0,
                           what="points on the second pen")  # fmt: skip
            await wait_text(pilot, "sim/pm5xxx-1/power_total")

            # Live tail: the window slides and new values join the pens.
            end = plot.end
            await wait_for(pilot, lambda: plot.end > end, timeout=6, what="the window to slide")

            table = screen.query_one("#pens", DataTable)
            table.move_cursor(row=0)
            await pilot.press("minus")
            await wait_for(pilot, lambda: screen.paths == ["sim/pm5xxx-1/power_total"], what="the first pen removed")
            assert table.row_count == 1

    asyncio.run(drive())


# ---------------------------------------------------------------------- devices


def test_devices_disable_enable_and_fault(plant: RunningDaemon) -> None:
    async def drive() -> None:
        app = ConsoleApp(plant.socket, start="devices")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            assert isinstance(screen, DevicesScreen)
            await wait_text(pilot, "inverter-4")
            table = screen.query_one(DataTable)
            assert table.row_count == 6
            assert all(cell(app, name, "state") == "online" for name in screen.devices)

            table.move_cursor(row=list(sorted(screen.devices)).index("inverter-4"))
            await pilot.press("x")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
            assert "Disable inverter-4?" in screen_text(app)
            await pilot.press("y")
            await wait_for(pilot, lambda: not status(plant, "inverter-4")["enabled"], what="disabled in scadad")
            assert status(plant, "inverter-4")["state"] == "disabled"
            await wait_for(pilot, lambda: cell(app, "inverter-4", "state") == "disabled", what="the row disabled")

            await pilot.press("x")  # already disabled: said, not asked
            await pilot.pause(0.2)
            assert not isinstance(app.screen, ConfirmDialog)

            await pilot.press("e")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="the confirm dialog")
            await pilot.press("n")  # no: nothing happens
            await pilot.pause(0.3)
            assert not status(plant, "inverter-4")["enabled"]
            await pilot.press("e", "y")
            await wait_for(pilot, lambda: status(plant, "inverter-4")["state"] == "online", what="online in scadad")
            await wait_for(pilot, lambda: cell(app, "inverter-4", "state") == "online", timeout=6, what="row online")

            with Client(plant.socket) as c:
                c.call("Sim.Fault", {"device": "em24-2", "fault": "timeout"})
            try:
                await wait_for(pilot, lambda: cell(app, "em24-2", "state") != "online", timeout=15,
                               what="em24-2 not online")  # fmt: skip
                table.move_cursor(row=list(sorted(screen.devices)).index("em24-2"))
                await wait_text(pilot, "Last error")
                await wait_text(pilot, "timeout")
                assert cell(app, "em24-2", "errors") != "0"
            finally:
                with Client(plant.socket) as c:
                    c.call("Sim.Fault", {"device": "em24-2", "fault": "clear"})
            await wait_for(pilot, lambda: cell(app, "em24-2", "state") == "online", timeout=15, what="em24-2 back")

    asyncio.run(drive())


def test_a_viewer_cannot_disable_a_device_and_is_told_so(plant: RunningDaemon) -> None:
    with Client(plant.socket) as c:
        token = c.call("Tokens.Create", {"name": "wall-screen"})["token"]

    async def drive() -> None:
        app = ConsoleApp(plant.socket, token=token, start="devices")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_text(pilot, "sdm630-0")
            screen.query_one(DataTable).move_cursor(row=5)
            await pilot.press("x")  # the console knows the viewer may not: no dialog
            await wait_for(pilot, lambda: errors(app, "needs permission 'devices.configure'"), what="a refusal")
            assert not isinstance(app.screen, ConfirmDialog)
            app.may = lambda permission: True  # type: ignore[method-assign]  # stale rights: the daemon says no
            await pilot.press("x", "y")
            await wait_for(pilot, lambda: errors(app, "Devices.Update needs permission"), what="PERMISSION_DENIED")
            refusal = next(n for n in app._notifications if "Devices.Update needs permission" in n.message)
            assert refusal.title == "Permission denied"
            assert status(plant, "sdm630-0")["enabled"]
            await pilot.press("1")  # the overview says the audit trail is not for this user
            await wait_text(pilot, "audit trail: not readable")
            await pilot.press("r")  # once, not again after each reload
            await pilot.pause(1.0)
            assert screen_text(app).count("audit trail: not readable") == 1

    asyncio.run(drive())


def test_no_device_poll_while_another_screen_is_shown(plant: RunningDaemon) -> None:
    async def drive() -> None:
        app = ConsoleApp(plant.socket, start="devices")
        async with app.run_test(size=SIZE) as pilot:
            screen = app.screen
            await wait_text(pilot, "sdm630-0")
            await pilot.press("3")
            await wait_for(pilot, lambda: isinstance(app.screen, TrendsScreen), what="the trends screen")
            polls = screen.polls
            await pilot.pause(2.5)
            assert screen.polls == polls
            await pilot.press("4")
            await wait_for(pilot, lambda: app.screen is screen, what="back on devices")
            await wait_for(pilot, lambda: screen.polls > polls, what="polling again")

    asyncio.run(drive())
