"""The site's energy: the meter tree live, the flow from sources to loads, the diesel set
and the solar plant, and consumption by hour (today) and by day (last 14 days).

An `Energy.Watch` stream (one summary a second) feeds the tree, the flow and the line
under the tree while the screen is shown; it is closed while another screen is, and
opened again (its first summary at once) on return. The handler keeps only the newest
summary; a 0.25 s tick draws it: tree cells in place, rows set again only when the
meters or their order change. `Energy.Generators`, `Energy.Renewables` and the chart's
`Energy.Consumption` are polled every 15 s while shown (`r` now).

Layout: the tree above, the DG and solar panels beside it (below it when narrow); the
flow and the chart side by side from 120 columns, else one of them (`f` flow, `c` chart).
`c` again switches the chart between by hour and by day.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from scadad.api.errors import PermissionDenied, ResourceExhausted, ScadaError
from tui import energy_data as ed
from tui.energy_flow import render_flow
from tui.link import Subscription
from tui.screens.base import ConsoleScreen
from tui.widgets.bar_plot import BarPlot
from tui.widgets.live_table import Column, LiveTable
from tui.widgets.plot import pen_color

WATCH_MS = 1000
FLUSH_S = 0.25
POLL_S = 15.0
REOPEN_S = 1.0
FIRST_WAIT_S = 3.0  # how long the first load waits for the first summary ("loaded" means drawn)
WIDE_AT = 120  # from this width the flow and the chart are side by side
PANELS_W = 46  # the DG and solar panels beside the tree (wide)
SCROLLBAR_W = 1
TREE_MAX_ROWS = 16


class EnergyFlow(Widget):
    """The sankey-like flow (`tui.energy_flow`), drawn to the widget's size."""

    DEFAULT_CSS = "EnergyFlow { height: 1fr; min-height: 4; color: $text-muted; }"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.summary: dict[str, Any] | None = None
        self.message = ""
        self._key: tuple[Any, ...] | None = None
        self._lines: list[Text] = []

    def show(self, summary: dict[str, Any] | None, message: str = "") -> None:
        self.summary, self.message = summary, message
        self._key = None
        self.refresh()

    def render(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        if self.message:
            return Text(self.message, style="bold red")
        key = (w, h, id(self.summary))
        if key != self._key:
            self._lines = render_flow(self.summary, w, h) if self.summary else []
            self._key = key
        if not self.summary:
            return Text("Waiting for the energy summary …", style="dim")
        return Text("\n").join(self._lines)


class EnergyScreen(ConsoleScreen):
    """Meters, flow, DG, solar and consumption; `c` chart (by hour / by day), `f` flow, `r` refresh."""

    TITLE = "Energy"
    BINDINGS = [
        Binding("c", "chart", "Hour/day chart"),
        Binding("f", "flow", "Flow"),
        Binding("r", "refresh", "Refresh"),
    ]
    DEFAULT_CSS = f"""
    EnergyScreen #energy-top {{ height: auto; max-height: 45%; }}
    EnergyScreen #tree-box {{ width: 1fr; height: auto; }}
    EnergyScreen #meter-tree {{ height: auto; max-height: {TREE_MAX_ROWS + 1}; scrollbar-size-vertical: {SCROLLBAR_W}; }}
    EnergyScreen #energy-status {{ height: 1; padding: 0 1; color: $text-muted; }}
    EnergyScreen #panels {{ width: {PANELS_W}; height: auto; }}
    EnergyScreen #panels > Vertical {{ height: auto; }}
    EnergyScreen .energy-panel {{ height: auto; padding: 0 1; }}
    EnergyScreen #energy-bottom {{ height: 1fr; }}
    EnergyScreen #flow-box, EnergyScreen #chart-box {{ width: 1fr; height: 1fr; }}
    EnergyScreen #energy-flow {{ padding: 0 1; }}
    EnergyScreen #chart-legend {{ height: 1; padding: 0 1; }}
    EnergyScreen #chart-box {{ display: none; }}
    EnergyScreen.-wide #chart-box {{ display: block; }}
    EnergyScreen.-charting #chart-box {{ display: block; }}
    EnergyScreen.-charting #flow-box {{ display: none; }}
    EnergyScreen.-wide #flow-box {{ display: block; }}
    EnergyScreen.-narrow #energy-top {{ layout: vertical; max-height: 65%; }}
    EnergyScreen.-narrow #tree-title, EnergyScreen.-narrow #panels .panel-title {{ display: none; }}
    EnergyScreen.-narrow #panels {{ width: 1fr; }}
    """

    def __init__(self) -> None:
        super().__init__()
        self.summary: dict[str, Any] | None = None
        self._pending: dict[str, Any] | None = None
        self.generators: list[dict[str, Any]] | None = None
        self.renewables: dict[str, Any] | None = None
        self.consumption: dict[str, Any] | None = None
        self.chart_by = "hour"  # or "day"
        self.refused = ""  # why the daemon will not give this user energy figures, if it will not
        self._told = ""  # the refusal last said to the operator (said once, not at every reload)
        self.sub: Subscription | None = None
        self.plan: tuple[Column, ...] = ()
        self.polls = 0
        self._timer: Timer | None = None
        self._poll: Callable[[], None] = lambda: None
        self._first = asyncio.Event()  # the stream's first summary (or its refusal) came

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="energy-top"):
            with Vertical(id="tree-box"):
                yield Static("Meters", id="tree-title", classes="panel-title")
                yield LiveTable(id="meter-tree", classes="live")
                yield Static(id="energy-status", classes="live")
            with Vertical(id="panels"):
                with Vertical():
                    yield Static("Diesel generator", classes="panel-title")
                    yield Static(Text("—", style="dim"), id="dg-panel", classes="energy-panel live")
                with Vertical():
                    yield Static("Solar", classes="panel-title")
                    yield Static(Text("—", style="dim"), id="solar-panel", classes="energy-panel live")
        with Horizontal(id="energy-bottom"):
            with Vertical(id="flow-box"):
                yield Static("Flow: sources → main → feeders → loads (band height ∝ kW)", classes="panel-title")
                yield EnergyFlow(id="energy-flow", classes="live")
            with Vertical(id="chart-box"):
                yield Static(self._chart_title(), id="chart-title", classes="panel-title")
                yield Static(id="chart-legend", classes="live")
                yield BarPlot(id="energy-chart", classes="live")

    @property
    def tree(self) -> LiveTable:
        return self.query_one("#meter-tree", LiveTable)

    def on_mount(self) -> None:
        self._timer = self.set_interval(FLUSH_S, self.flush)
        self._poll = self.poll_while_shown(POLL_S, self._fetch)
        self.tree.focus()

    def on_unmount(self) -> None:
        self._close_stream()

    # (Textual calls ConsoleScreen's handlers of these too: its shown-only timers.)
    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()
        self._close_stream()  # hidden: cost the daemon nothing

    def on_screen_resume(self) -> None:
        if self._timer is not None:
            self._timer.resume()
        if self.loaded and not self.refused:
            self._open_stream()

    def on_resize(self) -> None:
        width = self.size.width
        self.set_class(width >= WIDE_AT, "-wide")
        self.set_class(width < WIDE_AT, "-narrow")
        tree_w = (width if width < WIDE_AT else width - PANELS_W) - SCROLLBAR_W
        plan = ed.tree_columns(tree_w)
        if plan != self.plan:
            self.plan = plan
            self.tree.set_columns(plan)
            self._fill_tree(rebuild=True)
        self._show_panels()
        self.refresh_bindings()

    # ------------------------------------------------------------------ data

    async def on_link_up(self) -> None:
        self.refused = ""
        self._first.clear()
        self._open_stream()
        try:
            await asyncio.wait_for(self._first.wait(), FIRST_WAIT_S)
        except TimeoutError:
            pass  # a slow daemon: drawn when the summary comes
        self.flush()
        try:
            await self._fetch()
        except Exception as exc:  # noqa: BLE001 - the panels wait for the next poll; the rest is shown
            self.console.report_error(exc)

    def _open_stream(self) -> None:
        self._close_stream()
        self.sub = self.link.subscribe("Energy.Watch", {"interval_ms": WATCH_MS}, self.on_summary, self._stream_failed)

    def _close_stream(self) -> None:
        if self.sub is not None:
            self.sub.cancel()
            self.sub = None

    def on_summary(self, summary: dict[str, Any]) -> None:
        """Stream handler: keep only the newest summary; `flush` draws it."""
        self._pending = summary
        self._told = ""
        self._first.set()

    def _stream_failed(self, exc: ScadaError) -> None:
        if isinstance(exc, ResourceExhausted) and self.sub is not None:
            self.set_timer(REOPEN_S, self._reopen)
            return
        self._refuse(exc)

    def _refuse(self, exc: BaseException) -> None:
        """The daemon will not give energy figures (no energy.read, no energy service): say
        it once, in place of the figures, and stop asking until the next login."""
        message = exc.message if isinstance(exc, ScadaError) else str(exc)
        if isinstance(exc, PermissionDenied):
            message = f"permission denied ({message})"
        first = message != self._told
        self._told = self.refused = message
        self._first.set()
        self._close_stream()
        self.summary = self._pending = None
        self._show_all()
        if first:
            self.console.report_error(exc)

    def _reopen(self) -> None:
        if self.sub is not None:
            self.link.restart(self.sub)

    async def _fetch(self) -> None:
        """Generators, renewables and the chart's consumption (polled while shown)."""
        if self.refused:
            return
        self.polls += 1
        try:
            gens = await self.call("Energy.Generators")
            self.renewables = await self.call("Energy.Renewables")
            self.generators = gens.get("generators") or []
            await self._fetch_chart()
        except PermissionDenied as exc:
            self._refuse(exc)
            return
        self._show_panels()

    async def _fetch_chart(self) -> None:
        summary = self.summary or self._pending
        if summary is None:
            summary = await self.call("Energy.Summary")
        meters = ed.chart_meters(summary)
        now, tz = self.now(), self.tz
        params: dict[str, Any] = {"meters": meters, "by": self.chart_by}
        if self.chart_by == "day":
            params["start"] = ed.local_midnight(now, tz, ed.CHART_DAYS - 1).isoformat()
        else:
            params["start"] = ed.local_midnight(now, tz).isoformat()
            params["end"] = (ed.local_midnight(now, tz) + timedelta(days=1)).isoformat()
        self.consumption = {"by": self.chart_by, "meters": meters, **(await self.call("Energy.Consumption", params))}
        self._show_chart()

    # ------------------------------------------------------------------ drawing

    def flush(self) -> None:
        if self._pending is None:
            return
        summary, self._pending = self._pending, None
        old = self.summary
        self.summary = summary
        self._fill_tree(rebuild=old is None or [m["name"] for m in old.get("meters") or []]
                        != [m["name"] for m in summary.get("meters") or []])  # fmt: skip
        self._show_status()
        self.query_one(EnergyFlow).show(summary)

    def _show_all(self) -> None:
        self._fill_tree(rebuild=True)
        self._show_status()
        self.query_one(EnergyFlow).show(self.summary, f"Energy not shown: {self.refused}" if self.refused else "")
        self._show_panels()
        self._show_chart()

    def _fill_tree(self, rebuild: bool = False) -> None:
        if not self.plan:
            return  # not laid out yet: the first resize fills it
        table = self.tree
        meters = (self.summary or {}).get("meters") or []
        rows = [(m["name"], ed.meter_cells(m)) for m in meters]
        if rebuild or tuple(k for k, _ in rows) != table.keys:
            table.set_rows((k, [cells[c.key] for c in self.plan]) for k, cells in rows)
            return
        for key, cells in rows:
            for c in self.plan:
                if _look(table.get_cell(key, c.key)) != _look(cells[c.key]):
                    table.update_cell(key, c.key, cells[c.key])

    def _show_status(self) -> None:
        self.query_one("#energy-status", Static).update(ed.status_line(self.summary, self.refused))

    def _show_panels(self) -> None:
        gens, ren = (None, None) if self.refused else (self.generators, self.renewables)
        if self.has_class("-narrow"):  # one line each, under the tree
            dg, solar = ed.dg_line(gens), ed.solar_line(ren)
        else:
            dg, solar = ed.dg_panel(gens, self.now(), self.tz), ed.solar_panel(ren)
        self.query_one("#dg-panel", Static).update(dg)
        self.query_one("#solar-panel", Static).update(solar)

    def _chart_title(self) -> str:
        if self.chart_by == "day":
            return f"Consumption by day, last {ed.CHART_DAYS} days (kWh)"
        return "Consumption by hour, today (kWh)"

    def _show_chart(self) -> None:
        self.query_one("#chart-title", Static).update(self._chart_title())
        chart = self.query_one(BarPlot)
        legend = Text(no_wrap=True, overflow="ellipsis")
        data = self.consumption
        if self.refused:
            chart.set_message(f"Energy not shown: {self.refused}")
        elif data is None or data.get("by") != self.chart_by:
            chart.set_message("Loading …")
        else:
            now, tz = self.now(), self.tz
            slots = ed.day_slots if self.chart_by == "day" else ed.hour_slots
            labels, series = slots(data, data["meters"], now, tz)
            if series:
                chart.set_bars(labels, series)
            else:
                chart.set_message("No meter to chart.")
            dark = bool(self.app.current_theme.dark)
            for i, (name, values) in enumerate(series):
                if i:
                    legend.append("  ")
                legend.append("■ ", style=pen_color(i, dark))
                legend.append(f"{name} {sum(v or 0.0 for v in values):,.0f} kWh")
        self.query_one("#chart-legend", Static).update(legend)

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "flow" and self.has_class("-wide"):
            return False  # the flow is always shown there
        return True

    def action_chart(self) -> None:
        """Show the chart; when it is shown, switch it between by hour and by day."""
        if self.has_class("-wide") or self.has_class("-charting"):
            self.chart_by = "day" if self.chart_by == "hour" else "hour"
            self._show_chart()
            self._poll()
        if not self.has_class("-wide"):
            self.add_class("-charting")

    def action_flow(self) -> None:
        self.remove_class("-charting")

    def action_refresh(self) -> None:
        if self.refused:
            self.refused = ""
            self.run_worker(self._load, exclusive=True, group="load")
            return
        self._poll()


def _look(cell: Text | str) -> tuple[Any, ...]:
    """What a cell shows (a Text's equality ignores its own style)."""
    if isinstance(cell, Text):
        return (cell.plain, str(cell.style), cell.spans)
    return (cell,)
