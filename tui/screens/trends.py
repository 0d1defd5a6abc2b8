"""Trends: one or more pens over 1 h, 8 h, 24 h, 7 d or a typed span.

Each pen is one `History.Query` of time-weighted averages (bucket width from
`trend_data.bucket_s`: 15 s for an hour). Spans up to an hour are live: values from
the screen's one `Tags.Watch` are merged into the last bucket and the window slides
every 2 s. Longer spans are queried again once a bucket (at least a minute) has passed.

The legend below the plot lists the pens with their colour, live value and units; the
pen under its cursor is the one `-` removes. The screen opens with one pen (the first
kW tag with a value) so it is never empty on a plant that has power meters.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.suggester import SuggestFromList
from textual.widgets import DataTable, Input, Static
from textual.widgets.data_table import RowDoesNotExist

from scadad.api.errors import ScadaError
from tui import format as fmt
from tui.link import LinkState, Subscription
from tui.screens.base import ConsoleScreen
from tui.trend_data import (
    LIVE_SPAN_S,
    SPANS,
    Pen,
    bucket_s,
    history_params,
    live_point,
    merge_tail,
    pen_from_history,
    span_label,
)
from tui.widgets.plot import PEN_COLORS_DARK, TrendPlot, axis_sides, pen_color, theme_is_dark

MAX_PENS = len(PEN_COLORS_DARK)
TICK_S = 2.0
REQUERY_MIN_S = 60.0
TAG_LIST_LIMIT = 50_000
DEFAULT_UNITS = ("kW", "W", "MW")
LEGEND_COLUMNS = (("pen", ""), ("tag", "Tag"), ("value", "Value"), ("units", "Units"), ("desc", "Description"))


# ---------------------------------------------------------------------- pure helpers


def default_pen(tags: list[dict[str, Any]]) -> str | None:
    """The pen a fresh trend opens with: the first power tag (W, kW, MW; a meter's
    `power_total` before others) with a non-zero GOOD value, else the first power tag,
    else the first numeric tag; None on an empty plant."""
    numeric = [t for t in tags if t["spec"].get("data_type", "float32") != "string"]
    power = [t for t in numeric if t["spec"].get("units") in DEFAULT_UNITS]
    power.sort(key=lambda t: (not t["spec"]["path"].endswith("/power_total"), t["spec"]["path"]))
    for t in power:
        v = t.get("value") or {}
        if v.get("quality") == "GOOD" and isinstance(v.get("value"), int | float) and v["value"]:
            return t["spec"]["path"]
    for group in (power, numeric):
        if group:
            return group[0]["spec"]["path"]
    return None


def resolve_path(text: str, known: list[str]) -> tuple[str | None, str]:
    """What a typed pen means: an exact path, or the one known path containing it.

    Returns (path, "") or (None, a message saying why not).
    """
    t = text.strip()
    if not t:
        return None, "type a tag path"
    if t in known:
        return t, ""
    hits = [p for p in known if t in p]
    if len(hits) == 1:
        return hits[0], ""
    if not hits:
        return None, f"no tag matches {t!r}"
    shown = ", ".join(hits[:3]) + (" …" if len(hits) > 3 else "")
    return None, f"{len(hits)} tags match {t!r}: {shown}"


class PenInput(Input):
    """The one-line input under the bar; Tab accepts the completion."""

    BINDINGS = [Binding("tab", "complete", "Complete", show=False)]

    def action_complete(self) -> None:
        if self._suggestion and self.value != self._suggestion:
            self.value = self._suggestion
            self.cursor_position = len(self.value)


# ---------------------------------------------------------------------- screen


class TrendsScreen(ConsoleScreen):
    TITLE = "Trends"
    BINDINGS = [
        Binding("h", "span(3600)", "1 h"),
        Binding("e", "span(28800)", "8 h"),
        Binding("d", "span(86400)", "24 h"),
        Binding("k", "span(604800)", "7 d"),
        Binding("c", "custom_span", "Custom span"),
        Binding("a,plus", "add_pen", "Add pen"),
        Binding("minus,delete", "remove_pen", "Remove pen"),
        Binding("r", "reload", "Reload", show=False),
        Binding("escape", "close_input", "Close input", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.paths: list[str] = []
        self.pens: dict[str, Pen] = {}
        self.tags: dict[str, dict[str, Any]] = {}  # path -> Tags.List entry (spec, value)
        self.values: dict[str, dict[str, Any]] = {}
        self.known: list[str] = []
        self.span_s: float = SPANS["1h"]
        self.every_s: int = bucket_s(self.span_s)
        self.window: tuple[float, float] = (0.0, 0.0)
        self.queries = 0  # History.Query calls answered so far
        self.last_query: dict[str, Any] = {}  # the params of the newest one
        self.loading = False
        self._queried_at = 0.0  # monotonic
        self._input_mode = ""
        self._pending: dict[str, dict[str, Any]] = {}
        self._watch: Subscription | None = None
        self._chose_default = False

    @property
    def live(self) -> bool:
        return self.span_s <= LIVE_SPAN_S

    def compose_body(self) -> ComposeResult:
        yield Static("", id="trend-bar", classes="panel-title")
        yield PenInput(id="trend-input")
        yield TrendPlot(id="trend-plot", classes="live")
        yield DataTable(id="pens", cursor_type="row", zebra_stripes=False, classes="live")

    def on_mount(self) -> None:
        table = self.query_one("#pens", DataTable)
        for key, label in LEGEND_COLUMNS:
            table.add_column(label, key=key)
        table.focus()
        self.every_while_shown(TICK_S, self._tick)  # hidden, it neither slides nor re-queries
        self.set_interval(0.5, self._flush)
        self._show_bar()
        self.watch(self.app, "theme", self._theme_changed, init=False)

    def on_unmount(self) -> None:
        if self._watch is not None:
            self._watch.cancel()

    # ------------------------------------------------------------------ loading

    async def on_link_up(self) -> None:
        result = await self.call("Tags.List", {"pattern": "**", "limit": TAG_LIST_LIMIT})
        tags = result.get("tags") or []
        self.known = [t["spec"]["path"] for t in tags if t["spec"].get("data_type") != "string"]
        self.tags = {t["spec"]["path"]: t for t in tags}
        for path in self.paths:
            if path in self.tags:
                self.values[path] = self.tags[path]["value"]
        self.query_one("#trend-input", PenInput).suggester = SuggestFromList(self.known)
        if not self.paths and not self._chose_default:
            self._chose_default = True
            first = default_pen(tags)
            if first is not None:
                self.add(first, query=False)
        self._subscribe()
        await self._query()

    def _spec(self, path: str) -> dict[str, Any]:
        tag = self.tags.get(path)
        return tag["spec"] if tag else {"path": path}

    def _subscribe(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        if self.paths:
            params = {"patterns": list(self.paths), "initial": True, "min_interval_ms": 500}
            self._watch = self.link.subscribe("Tags.Watch", params, self._on_values, self.console.report_error)

    def _on_values(self, event: dict[str, Any]) -> None:
        for v in event.get("values", []):
            self._pending[v["path"]] = v  # the newest per tag; `_flush` applies them

    def _requery(self) -> None:
        if self.link.state is LinkState.ONLINE:
            self.run_guarded(self._query, "query")

    async def _query(self) -> None:
        """Ask the historian for every pen over the current span, then draw."""
        span = self.span_s
        end = self.now()
        start = end - span
        self.every_s = bucket_s(span)
        self.loading = True
        self._show_bar()
        paths = list(self.paths)
        queries = [history_params(p, start, end) for p in paths]
        if queries:
            self.last_query = queries[-1]
        try:
            results = await asyncio.gather(*(self.call("History.Query", q) for q in queries), return_exceptions=True)
        finally:
            self.loading = False
        self.queries += len(paths)
        if span != self.span_s:
            return  # the operator chose another span meanwhile: its own query follows
        self._queried_at = time.monotonic()
        for path, result in zip(paths, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, ScadaError):
                    self.console.report_error(result)
                    continue
                raise result
            if path not in self.paths:
                continue  # removed meanwhile
            fresh = pen_from_history(result, path)
            old = self.pens.get(path)
            self.pens[path] = merge_tail(fresh, old) if old is not None else fresh  # keep live points
        self.window = (start, end)
        self._draw()

    # ------------------------------------------------------------------ live

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        start = self.window[0]
        for path, v in pending.items():
            if path not in self.pens and path not in self.paths:
                continue
            self.values[path] = v
            point = live_point(v)
            pen = self.pens.get(path)
            if self.live and pen is not None and point is not None:
                pen.add_live(*point, self.every_s, keep_after=start - self.every_s)
            self._update_legend_row(path)

    def _tick(self) -> None:
        if self.link.state is not LinkState.ONLINE or not self.paths:
            return
        if self.live:
            end = self.now()
            self.window = (end - self.span_s, end)
            for pen in self.pens.values():
                pen.trim(self.window[0] - self.every_s)
            self._draw()
        elif time.monotonic() - self._queried_at >= max(REQUERY_MIN_S, self.every_s):
            self._requery()

    # ------------------------------------------------------------------ drawing

    def _draw(self) -> None:
        start, end = self.window
        pens = [self.pens.get(p) or Pen(p, self._spec(p).get("units", "")) for p in self.paths]
        self.query_one(TrendPlot).set_pens(pens, start, end)
        self._show_bar()
        self._sync_legend()

    def _show_bar(self) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"Span {span_label(self.span_s)}")
        t.append(f" · avg per {span_label(self.every_s)}")
        if self.live:
            t.append(" · live")
        pens = [self.pens.get(p) or Pen(p, self._spec(p).get("units", "")) for p in self.paths]
        sides = axis_sides(pens)
        if 1 in sides:
            left = pens[0].units
            right = next(p.units for p, side in zip(pens, sides, strict=True) if side)
            t.append(f" · left axis {left or 'no units'}, right {right or 'no units'}")
        if self.loading:
            t.append(" · loading…")
        if not self.paths:
            t.append(" · no pens: press a to add one", style="bold")
        self.query_one("#trend-bar", Static).update(t)

    def _legend_cells(self, i: int, path: str) -> dict[str, Any]:
        spec = self._spec(path)
        v = self.values.get(path)
        value = fmt.value_text(v.get("value"), v.get("quality", "GOOD")) if v else Text("—", justify="right")
        if v and v.get("quality") not in (None, "GOOD"):
            value.append(f" {v['quality']}")
        return {
            "pen": Text("━━", style=pen_color(i, theme_is_dark(self))),
            "tag": path,
            "value": value,
            "units": spec.get("units", "") or (self.pens[path].units if path in self.pens else ""),
            "desc": spec.get("description", ""),
        }

    def _sync_legend(self) -> None:
        """Rows follow the pens (added/removed); cells are updated in place."""
        table = self.query_one("#pens", DataTable)
        present = {str(k.value) for k in table.rows}
        for path in present - set(self.paths):
            table.remove_row(path)
        for i, path in enumerate(self.paths):
            cells = self._legend_cells(i, path)
            if path in present:
                for key, _ in LEGEND_COLUMNS:
                    table.update_cell(path, key, cells[key], update_width=True)
            else:
                table.add_row(*(cells[key] for key, _ in LEGEND_COLUMNS), key=path)

    def _update_legend_row(self, path: str) -> None:
        table = self.query_one("#pens", DataTable)
        if path not in self.paths:
            return
        cells = self._legend_cells(self.paths.index(path), path)
        try:
            table.update_cell(path, "value", cells["value"], update_width=True)
        except (RowDoesNotExist, KeyError):
            pass

    def _theme_changed(self, theme: str) -> None:
        self._sync_legend()  # the legend's swatches follow the plot's colours

    # ------------------------------------------------------------------ pens

    def add(self, path: str, query: bool = True) -> None:
        """Put ``path`` on the trend (another screen may call it to open a tag here)."""
        if path in self.paths:
            self.notify(f"{path} is already on the trend.", timeout=3)
            return
        if len(self.paths) >= MAX_PENS:
            self.notify(f"A trend holds at most {MAX_PENS} pens: remove one first (-).", severity="warning")
            return
        self.paths.append(path)
        self.pens[path] = Pen(path, self._spec(path).get("units", ""))
        tag = self.tags.get(path)
        if tag is not None:
            self.values[path] = tag["value"]
        if query:
            self._subscribe()
            self._draw()
            self._requery()

    def remove(self, path: str) -> None:
        if path not in self.paths:
            return
        self.paths.remove(path)
        self.pens.pop(path, None)
        self._subscribe()
        self._draw()

    # ------------------------------------------------------------------ actions

    def action_span(self, seconds: float) -> None:
        self.set_span(float(seconds))

    def set_span(self, seconds: float) -> None:
        self.span_s = seconds
        self.every_s = bucket_s(seconds)
        end = self.now()
        self.window = (end - seconds, end)
        for path in self.paths:  # nothing of the old span is kept: its buckets differ
            self.pens[path] = Pen(path, self._spec(path).get("units", ""))
        self._draw()
        self._requery()

    def _open_input(self, mode: str, placeholder: str, value: str = "") -> None:
        box = self.query_one("#trend-input", PenInput)
        self._input_mode = mode
        box.placeholder = placeholder
        box.value = value
        box.add_class("-open")
        box.focus()

    def action_add_pen(self) -> None:
        self._open_input("pen", "tag path to add (Tab completes, Enter adds, Esc cancels)")

    def action_custom_span(self) -> None:
        self._open_input("span", "span back from now: 90m, 8h, 3d, 2w (Enter applies, Esc cancels)")

    def action_close_input(self) -> None:
        box = self.query_one("#trend-input", PenInput)
        if box.has_class("-open"):
            box.remove_class("-open")
            self._input_mode = ""
            self.query_one("#pens", DataTable).focus()

    @on(Input.Submitted, "#trend-input")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value
        if self._input_mode == "span":
            try:
                span = fmt.parse_span(text)
            except ValueError as exc:
                self.notify(str(exc), title="Span", severity="error", timeout=5)
                return
            self.action_close_input()
            self.set_span(span.total_seconds())
        elif self._input_mode == "pen":
            path, why = resolve_path(text, self.known)
            if path is None:
                self.notify(why, title="Add pen", severity="error", timeout=5)
                return
            self.action_close_input()
            self.add(path)

    def action_remove_pen(self) -> None:
        table = self.query_one("#pens", DataTable)
        if not table.row_count:
            self.notify("No pen to remove.", timeout=3)
            return
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no row under the cursor
            return
        if key:
            self.remove(key)

    def action_reload(self) -> None:
        if self.link.state is LinkState.ONLINE:
            self.run_worker(self._load, exclusive=True, group="load")
