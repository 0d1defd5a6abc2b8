"""One tag up close: its definition, its live value and quality, the last hour's trend.

Pushed on the tag browser's stack (Enter), not a mode of its own, so Esc goes back to
the browser as it was. The write flow (`write_tag`) lives here and both screens use it.
"""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.markup import escape
from textual.widgets import Static

from scadad.api.errors import ScadaError
from tui import format as fmt
from tui.link import Subscription
from tui.screens.base import ConsoleScreen
from tui.trend_data import Pen, history_params, pen_from_history
from tui.widgets.confirm import ConfirmDialog
from tui.widgets.plot import TrendPlot
from tui.widgets.write_dialog import WriteValueDialog

TREND_SPAN_S = 3600.0


def is_scaled(spec: dict[str, Any]) -> bool:
    """Whether the tag maps raw register values to engineering units (so takes decimals)."""
    return all(spec.get(k) is not None for k in ("raw_low", "raw_high", "eng_low"))


def trend_point(v: dict[str, Any]) -> tuple[float, float | None] | None:
    """A live TagValue as a trend point: (time, value), None value for a BAD gap;
    None for values a trend cannot draw (strings, no time)."""
    t = fmt.parse_time(v.get("source_time") or v.get("server_time"))
    value = v.get("value")
    if t is None or isinstance(value, str):
        return None
    if v.get("quality") == "BAD" or value is None:
        return t.timestamp(), None
    return t.timestamp(), float(value)


async def write_tag(screen: ConsoleScreen, spec: dict[str, Any], current: dict[str, Any] | None) -> None:
    """Ask for a value, confirm "path: old → new units", write it, say what happened.

    Runs in a worker (it waits for dialogs). The console's permission check is only a
    hint in the dialog: scadad's PERMISSION_DENIED is the answer that counts.
    """
    path = spec["path"]
    app = screen.app
    if not spec.get("writable"):
        app.notify(f"{path} is read-only.", title="Write", severity="warning", timeout=4, markup=False)
        return
    units = spec.get("units") or ""
    old = fmt.format_value(current.get("value")) if current else "—"
    warning = (
        ""
        if screen.console.may("tags.write")
        else "You do not hold the tags.write permission: scadad will refuse this write."
    )
    dialog = WriteValueDialog(path, spec.get("data_type", ""), units, old, scaled=is_scaled(spec), warning=warning)
    value = await app.push_screen_wait(dialog)
    if value is None:
        return
    new = fmt.format_value(value)
    body = f"{path}:  {old} → {new} {units}".rstrip()
    if not await app.push_screen_wait(ConfirmDialog("Write this value to the device?", escape(body))):
        app.notify("Nothing written.", title="Write", timeout=3)
        return
    try:
        result = await screen.link.call("Tags.Write", {"path": path, "value": value, "confirm": True})
    except ScadaError as exc:
        screen.console.report_error(exc, unconfirmed=f"{path}: the write")
        return
    back = result.get("read_back") or {}
    back_text = f"{fmt.format_value(back.get('value'))} {units}".rstrip() if back else "not read back"
    if result.get("confirmed"):
        app.notify(f"{path} = {new} {units}; read back {back_text}.", title="Written", timeout=5, markup=False)
    else:
        app.notify(
            f"{path}: wrote {new} {units}, but the read-back is {back_text}.",
            title="Written, not confirmed",
            severity="warning",
            timeout=8,
            markup=False,
        )


def detail_table(spec: dict[str, Any], v: dict[str, Any] | None, tz: Any, wide: bool) -> Table:
    """The definition and live state as label/value pairs, two pairs a line when wide."""
    v = v or {}
    quality = v.get("quality", "BAD")
    value = fmt.value_text(v.get("value"), quality)
    value.justify = "left"
    value.append(f" {spec.get('units') or ''}".rstrip())
    q = fmt.quality_text(quality, v.get("reason"))
    if v.get("detail"):
        q.append(f"  {v['detail']}", style="")
    source = fmt.local_time(fmt.parse_time(v.get("source_time")), tz, with_date=True)
    server = fmt.local_time(fmt.parse_time(v.get("server_time")), tz, with_date=True)
    pairs: list[tuple[str, Text | str]] = [
        ("Value", value),
        ("Quality", q),
        ("Description", spec.get("description") or "—"),
        ("Device", spec.get("device") or spec.get("source", "—")),
        ("Data type", spec.get("data_type", "—")),
        ("Units", spec.get("units") or "—"),
        ("Writable", "yes (w writes)" if spec.get("writable") else "no"),
        ("Scan group", spec.get("scan_group") or "—"),
        ("Source time", source),
        ("Server time", server),
    ]
    grid = Table.grid(padding=(0, 2))
    per_line = 2 if wide else 1
    for _ in range(per_line):
        grid.add_column(style="dim", no_wrap=True)
        grid.add_column(ratio=1, overflow="fold")
    for i in range(0, len(pairs), per_line):
        cells: list[Text] = []
        for label, shown in pairs[i : i + per_line]:
            # Text, not str: a description with [brackets] is not Rich markup.
            cells += [Text(label), shown if isinstance(shown, Text) else Text(str(shown))]
        grid.add_row(*cells)
    return grid


class TagDetailScreen(ConsoleScreen):
    """One tag: definition, live value, quality with reason and detail, 1 h trend."""

    TITLE = "Tag"
    DEFAULT_CSS = """
    TagDetailScreen #detail-info { padding: 0 1; height: auto; }
    TagDetailScreen #detail-trend { height: 1fr; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("w", "write", "Write"),
    ]

    def __init__(self, path: str, spec: dict[str, Any] | None = None, value: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.path = path
        self.spec: dict[str, Any] = spec or {"path": path}
        self.value = value
        self.pen = Pen(path, self.spec.get("units", ""))
        self._pending: dict[str, Any] | None = None
        self._sub: Subscription | None = None
        self._trend_note = ""

    def compose_body(self) -> ComposeResult:
        yield Static(Text(self.path, style="bold"), id="detail-path", classes="panel-title")
        yield Static(id="detail-info", classes="live")
        yield Static("Last hour", id="detail-trend-title", classes="panel-title")
        yield TrendPlot(id="detail-trend", classes="live")

    def on_mount(self) -> None:
        self._show_info()
        self._sub = self.link.subscribe(
            "Tags.Watch", {"patterns": [self.path], "initial": True, "min_interval_ms": 250}, self._on_watch
        )
        self.set_interval(0.5, self._flush)
        self.set_interval(5.0, self._slide_window)

    def on_unmount(self) -> None:
        if self._sub is not None:
            self._sub.cancel()

    def on_resize(self) -> None:
        self._show_info()

    # ------------------------------------------------------------------ data

    async def on_link_up(self) -> None:
        found = await self.call("Tags.List", {"pattern": self.path})
        for tag in found.get("tags", []):
            if tag["spec"]["path"] == self.path:
                self.spec = tag["spec"]
                self.value = self._pending or tag["value"]
        self._show_info()
        await self._load_trend()

    async def _load_trend(self) -> None:
        end = self.now()
        start = end - TREND_SPAN_S
        try:
            result = await self.call("History.Query", history_params(self.path, start, end))
        except ScadaError as exc:
            self._trend_note = f"no history: {exc.message}"
            pen = Pen(self.path, self.spec.get("units", ""))
        else:
            self._trend_note = ""
            pen = pen_from_history(result, self.path)
        # Keep live points that arrived while the history was on its way.
        last = pen.times[-1] if pen.times else float("-inf")
        for t, x in zip(self.pen.times, self.pen.values, strict=True):
            if t > last:
                pen.append(t, x)
        self.pen = pen
        self._draw_trend()

    def _on_watch(self, event: dict[str, Any]) -> None:
        for v in event.get("values", []):
            if v.get("path") == self.path:
                self._pending = v
                point = trend_point(v)
                if point is not None:
                    self.pen.append(*point, keep_after=self.now() - TREND_SPAN_S)

    def _flush(self) -> None:
        if self._pending is None:
            return
        self.value, self._pending = self._pending, None
        self._show_info()
        self._draw_trend()

    def _slide_window(self) -> None:
        self._draw_trend()

    def _show_info(self) -> None:
        if not self.is_mounted:
            return
        wide = self.size.width >= 70
        self.query_one("#detail-info", Static).update(detail_table(self.spec, self.value, self.tz, wide))

    def _draw_trend(self) -> None:
        end = self.now()
        title = "Last hour"
        if self.spec.get("units"):
            title += f" ({self.spec['units']})"
        if self._trend_note:
            title += f" — {self._trend_note}"
        self.query_one("#detail-trend-title", Static).update(Text(title))
        self.query_one(TrendPlot).set_pens([self.pen], end - TREND_SPAN_S, end)

    # ------------------------------------------------------------------ actions

    def action_back(self) -> None:
        self.dismiss()

    def action_write(self) -> None:
        self.run_worker(self._write(), exclusive=True, group="write")

    async def _write(self) -> None:
        try:
            await write_tag(self, self.spec, self._pending or self.value)
        except Exception as exc:  # noqa: BLE001 - a failed write must not take the console down
            self.console.report_error(exc)
