"""BarPlot: stacked bars (plotext, through `tui.widgets.plot`) sized to the widget.

    chart = BarPlot(); chart.set_bars(["00", "01", ...], [("grid", [...]), ("solar", [...])])

Drawn again only when the size, the data or the theme change; deterministic (no clock),
so snapshot tests stay still. Frame, ticks and labels in the muted text colour; the parts
in the trend pens' muted colours (the caller's legend uses `pen_color` too).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widget import Widget

from tui.widgets.plot import render_bars, theme_is_dark


class BarPlot(Widget):
    DEFAULT_CSS = """
    BarPlot { height: 1fr; min-height: 5; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.labels: list[str] = []
        self.series: list[tuple[str, list[float | None]]] = []
        self.message = ""
        self._version = 0
        self._cache_key: tuple[Any, ...] | None = None
        self._cache = Text("")

    def set_bars(self, labels: list[str], series: list[tuple[str, list[float | None]]]) -> None:
        """Show one bar per label, stacked from ``series`` ((name, values) in label order)."""
        if (labels, series, "") == (self.labels, self.series, self.message):
            return
        self.labels, self.series, self.message = labels, series, ""
        self._version += 1
        self.refresh()

    def set_message(self, message: str) -> None:
        """No bars: say why instead (no permission, nothing metered)."""
        if message == self.message:
            return
        self.labels, self.series, self.message = [], [], message
        self._version += 1
        self.refresh()

    def render(self) -> Text:
        w, h = self.content_size.width, self.content_size.height
        dark = theme_is_dark(self)
        key = (w, h, self._version, dark)
        if key != self._cache_key:
            if self.message or not self.labels:
                self._cache = Text(self.message or "no data", style="dim")
            else:
                # A label every few bars: as many as fit, 4 cells each at least.
                every = max(1, -(-len(self.labels) * 4 // max(1, w - 8)))
                try:
                    self._cache = render_bars(self.labels, self.series, w, h, dark, tick_every=every)
                except Exception as exc:  # noqa: BLE001 - a plotting bug must not take the console down
                    self._cache = Text(f"cannot draw this chart: {type(exc).__name__}: {exc}", style="dim")
            self._cache_key = key
        return self._cache
