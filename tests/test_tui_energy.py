"""The console's Energy screen: the pure flow layout (bands add up, zero and missing
readings), the pure panel and chart helpers, and pilots against a real scadad with
meters on memory tags (tree rows, the flow, the chart toggle, a user without
energy.read)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scadad.api.client import Client
from tests.conftest import RunningDaemon, start_daemon
from tests.tui_support import run, screen_text, wait_for, wait_text
from tui import energy_data as ed
from tui import energy_flow as ef
from tui.app import ConsoleApp
from tui.screens.energy import EnergyScreen
from tui.widgets.live_table import LiveTable
from tui.widgets.plot import render_bars


def meter(
    name: str, type: str, parent: str | None, kw: float | None, status: str = "online", quality: str = "GOOD"
) -> dict[str, Any]:
    return {"name": name, "type": type, "parent": parent, "depth": 0, "kw": kw, "pf": 0.95, "today_kwh": 10.0,
            "quality": quality, "status": status}  # fmt: skip


def summary(meters: list[dict[str, Any]], losses: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    sources = [m for m in meters if m["type"] in ef.SOURCE_TYPES]
    return {"time": "2026-06-01T12:00:00+00:00", "site": "demo", "sources": sources, "meters": meters,
            "losses": losses or [], "source_kw": sum(m["kw"] or 0 for m in sources), "load_kw": 0.0,
            "loss_kw": 0.0, "today_kwh": 0.0}  # fmt: skip


PLANT = summary(
    [
        meter("grid", "grid", None, 62.0),
        meter("main", "main", "grid", 98.0),
        meter("feeder-1", "feeder", "main", 40.0),
        meter("pump-1", "load", "feeder-1", 20.0),
        meter("pump-2", "load", "feeder-1", 18.0),
        meter("feeder-2", "feeder", "main", 35.0),
        meter("feeder-3", "feeder", "main", 18.0),
        meter("dg-1", "generator", None, 30.0),
        meter("solar-1", "solar", None, 8.0),
    ],
    [{"parent": "main", "parent_kw": 98.0, "children_kw": 93.0, "loss_kw": 5.0, "loss_pct": 5.1, "status": "warning"}],
)
NO_MAIN = summary(
    [
        meter("grid", "grid", None, 50.0),
        meter("f1", "feeder", "grid", 30.0),
        meter("l1", "load", "f1", 10.0),
        meter("l2", "load", "f1", 0.0),
        meter("l3", "load", "f1", 19.5),
        meter("f2", "feeder", "grid", 17.0),
    ]
)
OFFLINE = summary(
    [
        meter("grid", "grid", None, 40.0),
        meter("main", "main", "grid", 40.0),
        meter("f1", "feeder", "main", None, status="offline"),
        meter("f2", "feeder", "main", 25.0),
        meter("l1", "load", "f2", None, quality="BAD"),
        meter("l2", "load", "f2", 0.0),
    ]
)
# As the simulated plant: a main without a reading joins the sources hung under it.
BUS = summary(
    [
        meter("main", "main", None, None),
        meter("grid", "grid", "main", 70.0),
        meter("dg", "generator", "main", 20.0),
        meter("solar", "solar", "main", 10.0),
        meter("feeder-1", "feeder", "main", 50.0),
        meter("load-1a", "load", "feeder-1", 29.4),
        meter("load-1b", "load", "feeder-1", 19.6),
        meter("feeder-2", "feeder", "main", 30.0),
        meter("feeder-3", "feeder", "main", 18.0),
    ],
    [{"parent": "main", "parent_kw": 100.0, "children_kw": 98.0, "loss_kw": 2.0, "loss_pct": 2.0, "status": "ok"}],
)
CHILDREN_ABOVE_PARENT = summary(
    [meter("main", "main", None, 10.0), meter("a", "feeder", "main", 8.0), meter("b", "feeder", "main", 6.0)],
    [
        {
            "parent": "main",
            "parent_kw": 10.0,
            "children_kw": 14.0,
            "loss_kw": -4.0,
            "loss_pct": -40.0,
            "status": "suspect_ct",
        }
    ],  # fmt: skip
)


# ---------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("total", "weights"),
    [
        (10, [1, 1, 1]),
        (7, [62.0, 30.0, 8.0]),
        (20, [0.1, 99.9]),
        (3, [5, 5, 5, 5, 5]),
        (1, [3, 3]),
        (13, [2.0, None, 0.0, 7.0, -1.0]),
        (40, [0.4, 0.4, 0.2, 39.0]),
    ],
)
def test_rows_always_add_up(total: int, weights: list[float | None]) -> None:
    rows = ef.allocate(total, weights)
    assert sum(rows) == total
    assert all(r == 0 for r, w in zip(rows, weights, strict=True) if not w or w < 0)


def test_rows_follow_the_power_and_small_flows_keep_a_row() -> None:
    assert ef.allocate(10, [62.0, 30.0, 8.0]) == [6, 3, 1]
    assert ef.allocate(10, [62.0, 30.0, 8.0], min_one=False) == [6, 3, 1]
    assert ef.allocate(20, [0.1, 99.9]) == [1, 19]  # visible, though its share is 0.02 rows
    assert ef.allocate(20, [0.1, 99.9], min_one=False) == [0, 20]
    assert ef.allocate(2, [1, 1, 1]) in ([1, 1, 0], [1, 0, 1], [0, 1, 1])  # not enough rows: no stealing
    assert ef.allocate(5, [None, 0.0]) == [0, 0] and ef.allocate(0, [1.0]) == [0]


# ---------------------------------------------------------------------- layout


def assert_bands_add_up(layout: ef.FlowLayout) -> None:
    """Every drawn node's rows are exactly shared by its children and its loss, and the
    sources and the top of the tree each fill the whole height."""
    for column in layout.columns:
        for b in column:
            kids = layout.children_of(b.name) if b.kind not in ("loss", "unknown", "gap") else []
            if kids and b.rows:
                assert sum(k.rows for k in kids) == b.rows, (b.name, [(k.name, k.rows) for k in kids])
                assert kids[0].top == b.top
                assert all(k.top + k.rows == n.top for k, n in zip(kids, kids[1:], strict=False))
    for column in layout.columns:
        tops = [b.rows for b in column if b.parent is None]  # the sources, the top of the tree
        if any(tops):
            assert sum(tops) == layout.rows


@pytest.mark.parametrize("rows", [4, 9, 20, 37])
@pytest.mark.parametrize(
    "plant", [PLANT, NO_MAIN, OFFLINE, CHILDREN_ABOVE_PARENT, BUS], ids=["plant", "no-main", "offline", "ct", "bus"]
)
def test_bands_add_up(plant: dict[str, Any], rows: int) -> None:
    assert_bands_add_up(ef.flow_layout(plant, rows))


def test_columns_from_sources_through_the_main_and_feeders_to_loads() -> None:
    layout = ef.flow_layout(PLANT, 20)
    assert layout.titles == ["Sources", "Main", "Feeders", "Loads"]
    assert [b.name for b in layout.columns[0]] == ["grid", "dg-1", "solar-1"]
    assert [b.rows for b in layout.columns[0]] == [12, 6, 2]  # 62 : 30 : 8 of 100 kW
    # The main takes 98 of the sources' 100 kW; 2 kW are lost before it.
    assert [(b.name, b.rows) for b in layout.columns[1]] == [("main", 19), ("loss", 1)]
    feeders = layout.children_of("main")
    assert [b.name for b in feeders] == ["feeder-1", "feeder-2", "feeder-3", "loss"]
    loss = feeders[-1]
    assert loss.label == "loss 5.0 kW 5.1 %" and loss.style == "bold yellow"  # the daemon's loss, in warning
    # A feeder's loss computed when the daemon has none: 40 - 38 kW.
    assert [b.label for b in layout.children_of("feeder-1")] == ["pump-1", "pump-2", "loss 2.0 kW 5.0 %"]


def test_a_main_without_reading_carries_its_sources() -> None:
    layout = ef.flow_layout(BUS, 50)
    assert layout.titles == ["Sources", "Main", "Feeders", "Loads"]
    assert [(b.name, b.rows) for b in layout.columns[0]] == [("grid", 35), ("dg", 10), ("solar", 5)]
    main = layout.band("main")
    assert main.kw == 100.0 and main.rows == 50
    kids = layout.children_of("main")
    assert [(b.name, b.rows) for b in kids] == [("feeder-1", 25), ("feeder-2", 15), ("feeder-3", 9), ("loss", 1)]
    assert kids[-1].label == "loss 2.0 kW 2.0 %" and kids[-1].style == ""  # normal: no colour
    assert [b.name for b in layout.children_of("feeder-1")] == ["load-1a", "load-1b", "loss"]


def test_no_main_and_a_zero_load() -> None:
    layout = ef.flow_layout(NO_MAIN, 10)
    assert layout.titles == ["Sources", "Feeders", "Loads"]
    assert [b.name for b in layout.columns[1]] == ["f1", "f2", "loss"]  # 50 - 47 kW lost before the feeders
    l2 = layout.band("l2")
    assert l2.rows == 0 and l2.kw == 0.0
    assert not any("l2" in n.plain for n in layout.notes)  # nothing flows: nothing to tell


def test_offline_and_bad_meters_draw_no_band_and_are_named() -> None:
    layout = ef.flow_layout(OFFLINE, 12)
    f1 = layout.band("f1")
    assert f1.rows == 0 and f1.kw is None and f1.style == "bold red"
    # f2's unread load: the rest of f2 is unmetered (not a loss), dim.
    kids = layout.children_of("f2")
    assert [b.kind for b in kids] == ["load", "load", "unknown"]
    assert kids[-1].label == "unmetered 25.0 kW" and kids[-1].rows == layout.band("f2").rows
    # main's 40 kW: f2 25 and an unknown 15 (f1 has no reading), so no loss is claimed.
    assert [b.kind for b in layout.children_of("main")] == ["feeder", "feeder", "unknown"]
    notes = [n.plain for n in layout.notes]
    assert "f1 offline" in notes and "l1 no reading" in notes
    lines = ef.render_flow(OFFLINE, 80, 12)
    assert "not drawn: f1 offline, l1 no reading" in lines[-1].plain


def test_children_above_their_parent_fill_it_and_say_suspect_ct() -> None:
    layout = ef.flow_layout(CHILDREN_ABOVE_PARENT, 10)
    assert [b.name for b in layout.children_of("main")] == ["a", "b"]
    assert (
        layout.notes
        and "suspect CT" in layout.notes[0].plain
        and "red" in str(layout.notes[0].style or "") + str(layout.notes[0].spans)
    )


def test_nothing_flowing_and_nothing_metered() -> None:
    dead = summary([meter("grid", "grid", None, None, status="offline"), meter("main", "main", "grid", 0.0)])
    layout = ef.flow_layout(dead, 8)
    assert all(b.rows == 0 for column in layout.columns for b in column)
    lines = ef.render_flow(dead, 60, 8)
    assert len(lines) == 8 and all(line.cell_len == 60 for line in lines)
    assert ef.render_flow(None, 40, 3)[0].plain.strip() == "no meters"
    assert ef.render_flow(summary([]), 40, 3)[0].plain.strip() == "no meters"


@pytest.mark.parametrize(("width", "height"), [(80, 10), (60, 6), (157, 30), (30, 5)])
def test_rendered_lines_are_exactly_the_size(width: int, height: int) -> None:
    lines = ef.render_flow(PLANT, width, height)
    assert len(lines) == height
    assert all(line.cell_len == width for line in lines), [line.cell_len for line in lines]
    text = "\n".join(line.plain for line in lines)
    if width >= 60:
        assert "grid" in text and "loss 5.0 kW 5.1 %" in text


def test_the_flow_reads_left_to_right() -> None:
    lines = [line.plain for line in ef.render_flow(PLANT, 80, 11)]
    assert lines[0].split() == ["Sources", "Main", "Feeders", "Loads"]
    assert lines[1].startswith(" grid") and "main" in lines[1] and "feeder-1" in lines[1]
    assert "62.0 kW" in lines[2] and "98.0 kW" in lines[2]
    # Band heights: grid's band is as many rows as its box.
    grid = ef.flow_layout(PLANT, 10).band("grid")
    band_col = len(lines[1].split("▓")[0])
    assert sum(1 for line in lines[1:] if line[band_col] in "▓▒" and line[:band_col].strip() != "solar-1") >= grid.rows
    # An abnormal loss carries colour; normal boxes do not.
    styled = ef.render_flow(PLANT, 80, 11)
    assert any("yellow" in str(span.style) for line in styled for span in line.spans) or any(
        "yellow" in str(line.style) for line in styled
    )


# ---------------------------------------------------------------------- panels and charts


def test_tree_cells_indent_by_depth_and_colour_only_the_abnormal() -> None:
    ok = ed.meter_cells({**meter("pump", "load", "f1", 12.345), "depth": 2})
    assert ok["name"].plain == "    pump" and ok["kw"].plain == "12.3" and ok["pf"].plain == "0.95"
    assert all(not str(c.style) for c in ok.values())
    off = ed.meter_cells(meter("f1", "feeder", "main", None, status="offline"))
    assert off["kw"].plain == "—" and "red" in str(off["status"].style)
    bad = ed.meter_cells(meter("l1", "load", "f1", 3.0, quality="BAD"))
    assert "red" in str(bad["kw"].style) and bad["status"].plain == "online BAD"
    assert [c.key for c in ed.tree_columns(78)] == ["name", "type", "kw", "pf", "kwh", "status"]
    assert "type" not in [c.key for c in ed.tree_columns(56)]


def test_panels_say_running_fuel_and_co2() -> None:
    gen = {"meter": "dg", "running": True, "kw": 150.0, "load_pct": 60.0, "fuel_level_pct": 12.0, "fuel_l": 120.0,
           "run_hours": 700.0, "starts": 3, "kwh_today": 300.0, "fuel_used_today_l": 81.0, "fuel_curve_today_l": 80.0,
           "l_per_kwh": 0.27, "co2_today_kg": 217.0, "rated_kw": 250.0, "tank_l": 1000.0,
           "events": [{"kind": "theft", "start": "2026-06-01T03:10:00+00:00", "end": "2026-06-01T03:20:00+00:00",
                       "litres": 40.0}]}  # fmt: skip
    panel = ed.dg_panel([gen], 0.0, UTC)
    assert "running  load 60 % (150.0 of 250.0 kW)" in panel.plain and "0.270 L/kWh" in panel.plain
    assert "fuel theft? 40 L at 03:10:00" in panel.plain
    line = ed.dg_line([gen])
    assert line.plain.startswith("DG dg running · load 60 % · fuel 12 %")
    styles = [str(s.style) for s in line.spans]
    assert "bold yellow" in styles and "bold red" in styles  # fuel low, theft
    assert ed.dg_panel([], 0.0, UTC).plain == "No generator configured."
    ren = {"sources": [{"meter": "pv", "kind": "solar", "capacity_kwp": 100.0, "kw": 42.0, "kwh": 210.5,
                        "co2_avoided_kg": 153.0, "diesel_avoided_l": None, "emission_factor_kg_per_kwh": 0.727,
                        "factor_source": "CEA"}]}  # fmt: skip
    assert "today 210.5 kWh  CO₂ avoided 153.0 kg" in ed.solar_panel(ren).plain
    assert ed.solar_line(ren).plain == "Solar pv 42.0 kW · today 210.5 kWh · CO₂ avoided 153.0 kg"


def test_chart_slots_by_local_hour_and_day() -> None:
    tz = ZoneInfo("Asia/Kolkata")
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()  # 17:30 there
    assert ed.local_midnight(now, tz).isoformat() == "2026-06-01T00:00:00+05:30"

    def point(start: str, imp: float, exp: float = 0.0) -> dict[str, Any]:
        return {"start": start, "import_kwh": imp, "export_kwh": exp, "net_kwh": imp - exp, "avg_kw": None,
                "max_kw": None, "estimated": False, "quality": "GOOD", "intervals": 4}  # fmt: skip

    result = {"series": [
        {"meter": "grid", "total_kwh": 0, "points": [point("2026-05-31T18:30:00+00:00", 5.0),  # 00:00 local
                                                     point("2026-06-01T11:30:00+00:00", 7.0)]},  # 17:00 local
        {"meter": "solar", "total_kwh": 0, "points": [point("2026-06-01T06:30:00+00:00", 0.0, 9.0)]},  # 12:00
    ]}  # fmt: skip
    labels, series = ed.hour_slots(result, ["grid", "solar", "dg"], now, tz)
    assert labels[0] == "00" and len(labels) == 24
    grid, solar, dg = (v for _, v in series)
    assert grid[0] == 5.0 and grid[17] == 7.0 and grid[1] is None
    assert solar[12] == 9.0  # an inverter counting export: what it delivered
    assert dg == [None] * 24
    labels, series = ed.day_slots(result, ["grid"], now, tz)
    assert labels[0] == "19" and labels[-1] == "01" and series[0][1][-1] == 12.0
    assert ed.chart_meters(BUS) == ["grid", "dg", "solar"] and ed.chart_meters(CHILDREN_ABOVE_PARENT) == ["main"]
    bars = render_bars(labels, series, 40, 8)
    assert "┌" in bars.plain and "█" in bars.plain
    assert "no consumption" in render_bars(labels, [("grid", [None] * 14)], 40, 8).plain


# ---------------------------------------------------------------------- against the daemon

PASSWORD = "brisk-otter-lantern-47"
# A main without a reading joining its grid incomer (as the simulated plant), two feeders, a load.
METERS = [
    ("bus", "main", None, None),
    ("inc", "grid", "bus", 100.0),
    ("fd-a", "feeder", "bus", 60.0),
    ("pmp", "load", "fd-a", 50.0),
    ("fd-b", "feeder", "bus", 35.0),
]


@dataclass
class Site:
    daemon: RunningDaemon
    admin: str
    blind: str  # a user without energy.read


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    d = start_daemon(tmp_path_factory.mktemp("energy") / "home", auth="mfa_required_roles = []\n")
    try:
        with Client(d.socket) as c:
            c.call("Users.Create", {"username": "chief", "password": PASSWORD, "roles": ["admin"]})
            c.token = admin = c.call("Auth.Login", {"username": "chief", "password": PASSWORD})["token"]
            c.call("Roles.Create", {"name": "tagreader", "permissions": ["system.read", "tags.read"]})
            c.call("Users.Create", {"username": "tina", "password": PASSWORD, "roles": ["tagreader"]})
            blind = c.call("Auth.Login", {"username": "tina", "password": PASSWORD})["token"]
            for name, kind, parent, kw in METERS:
                points = {}
                if kw is not None:
                    tag = f"energy/{name}/kw"
                    c.call("Tags.Create", {"path": tag, "source": "memory", "data_type": "float64", "writable": True,
                                           "units": "kW"})  # fmt: skip
                    c.call("Tags.Write", {"path": tag, "value": kw})
                    points = {"power_total": tag}
                c.call("Meters.Create", {"name": name, "type": kind, "parent": parent, "points": points})
        yield Site(d, admin, blind)
    finally:
        code = d.stop()
    assert code == 0, d.log_text()


def kw_cell(app: ConsoleApp, name: str) -> str:
    try:
        return app.screen.query_one("#meter-tree", LiveTable).get_cell(name, "kw").plain  # type: ignore[union-attr]
    except KeyError:
        return ""


def test_tree_flow_and_chart_toggle(site: Site) -> None:
    async def go() -> None:
        app = ConsoleApp(site.daemon.socket, site.admin, start="energy")
        async with app.run_test(size=(130, 40)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, EnergyScreen) and app.screen.loaded, what="loaded")
            await wait_for(pilot, lambda: kw_cell(app, "pmp") == "50.0", what="pmp at 50 kW")
            table = app.screen.query_one("#meter-tree", LiveTable)
            assert table.keys[0] == "bus" and set(table.keys) == {m[0] for m in METERS}
            assert [kw_cell(app, n) for n in ("inc", "fd-a", "fd-b")] == ["100.0", "60.0", "35.0"]
            assert table.get_cell("pmp", "name").plain == "    pmp"  # type: ignore[union-attr]
            # The flow: the incomer as the source, the main's 5 kW loss as its own band.
            await wait_text(pilot, "loss 5.0 kW")
            text = screen_text(app)
            assert "Sources" in text and " inc " in text and "fd-a" in text and "5.0 %" in text
            assert "loss 10.0 kW" in text and "16.7 %" in text  # fd-a: 60 - 50
            # Wide: the chart beside the flow; c switches it between by hour and by day.
            await wait_text(pilot, "Consumption by hour, today (kWh)")
            await pilot.press("c")
            await wait_text(pilot, "Consumption by day, last 14 days (kWh)")
            await pilot.press("c")
            await wait_text(pilot, "Consumption by hour, today (kWh)")
            # A new value arrives in place.
            with Client(site.daemon.socket) as c:
                c.token = site.admin
                c.call("Tags.Write", {"path": "energy/pmp/kw", "value": 42.5})
            await wait_for(pilot, lambda: kw_cell(app, "pmp") == "42.5", what="pmp at 42.5 kW")
            # Narrow: the flow or the chart; c shows the chart, f the flow again.
            await pilot.resize_terminal(80, 24)
            await pilot.pause(0.3)
            assert "Flow: sources" in screen_text(app) and "Consumption by" not in screen_text(app)
            await pilot.press("c")
            await wait_text(pilot, "Consumption by hour")
            assert "Flow: sources" not in screen_text(app)
            await pilot.press("f")
            await wait_text(pilot, "Flow: sources")
            assert "DG none configured" in screen_text(app)
            with Client(site.daemon.socket) as c:
                c.token = site.admin
                c.call("Tags.Write", {"path": "energy/pmp/kw", "value": 50.0})

    run(go())


def test_without_energy_read_it_says_so(site: Site) -> None:
    async def go() -> None:
        app = ConsoleApp(site.daemon.socket, site.blind, start="energy")
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_text(pilot, "Energy not shown: permission denied")
            assert any(n.title == "Permission denied" for n in app._notifications)
            assert isinstance(app.screen, EnergyScreen) and not app.screen.query_one("#meter-tree", LiveTable).keys
            await pilot.pause(0.5)
            polls = app.screen.polls
            app.screen._poll()  # the 15 s poll, now
            await pilot.pause(0.5)
            assert app.screen.polls == polls  # refused: not asked again on every poll (r asks again)
            assert sum(1 for n in app._notifications if n.title == "Permission denied") == 1

    run(go())
