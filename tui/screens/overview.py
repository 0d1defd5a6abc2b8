"""The plant at a glance: devices online, tag quality, site power, today's energy, the
last hour of the biggest feeders as sparklines, and recent events.

What counts as site power and energy is a fixed, visible rule, not configuration:

* **Site power** is the sum of every tag named ``power_total`` (a meter's total active
  power) whose units are W, kW or MW, shown in kW. Per-phase powers are not added: they
  are already in the total. Computed tags are not added either: they are made from
  others (the energy meters' grid incomer and loads of the simulated plant), which
  would count the same power twice.
* **Energy today** is, for every tag whose name starts with ``import`` and whose units
  are Wh, kWh or MWh (a meter's imported-energy counter), its latest value minus the
  first value recorded since local midnight at the site, summed in kWh. A counter with
  no sample since midnight, or one that went backwards (replaced meter), is left out.

Either figure shows "—" when no tag follows the rule. Device and tag counts come from
`Devices.Status` (polled every 2 s while the screen is on show); live values from one
`Tags.Watch`. Recent events are the audit trail (for users who may read it) and the
device state changes this console sees (`_system/devices/*/state`).
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.widgets import RichLog, Static

from scadad.api.errors import PermissionDenied, ScadaError
from tui import format as fmt
from tui.link import LinkState, Subscription
from tui.screens.base import ConsoleScreen
from tui.trend_data import (
    LIVE_SPAN_S,
    Pen,
    bucket_s,
    history_params,
    iso,
    live_point,
    local_midnight,
    merge_tail,
    numeric,
    pen_from_history,
)
from tui.widgets.plot import TrendPlot

POWER_POINT = "power_total"
ENERGY_PREFIX = "import"
POWER_UNITS = {"W": 0.001, "kW": 1.0, "MW": 1000.0}  # factor to kW
ENERGY_UNITS = {"Wh": 0.001, "kWh": 1.0, "MWh": 1000.0}  # factor to kWh
SPARKLINES = 4
STATE_PATTERN = "_system/devices/*/state"
POLL_S = 2.0
FLUSH_S = 1.0
MAX_EVENTS = 500
# Ask again for counters with no sample since midnight yet (just started, or not
# recorded): soon at first, then less and less often.
BASELINE_RETRY_S = (2.0, 60.0)
NOT_ONLINE = {"offline": 3, "degraded": 2, "connecting": 1}  # how bad, for the tile's colour


# ---------------------------------------------------------------------- pure rules


def point_name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def is_power_tag(path: str, units: str) -> bool:
    return point_name(path) == POWER_POINT and units in POWER_UNITS


def is_energy_tag(path: str, units: str) -> bool:
    return point_name(path).startswith(ENERGY_PREFIX) and units in ENERGY_UNITS


def site_power(tags: dict[str, str], values: dict[str, dict[str, Any]]) -> tuple[float | None, int, int]:
    """(sum in kW, tags added, tags BAD or without a value) over power tags {path: units}."""
    total, used, bad = 0.0, 0, 0
    for path, units in tags.items():
        v = values.get(path)
        x = numeric(v.get("value")) if v and v.get("quality") != "BAD" else None
        if x is None:
            bad += 1
            continue
        total += x * POWER_UNITS[units]
        used += 1
    return (total if used else None), used, bad


def energy_today(
    tags: dict[str, str], baselines: dict[str, float], values: dict[str, dict[str, Any]]
) -> tuple[float | None, int]:
    """(kWh since midnight, counters used): latest minus the first value since midnight."""
    total, used = 0.0, 0
    for path, units in tags.items():
        v = values.get(path)
        base = baselines.get(path)
        x = numeric(v.get("value")) if v and v.get("quality") != "BAD" else None
        if x is None or base is None or x < base:
            continue
        total += (x - base) * ENERGY_UNITS[units]
        used += 1
    return (total if used else None), used


def device_counts(devices: list[dict[str, Any]]) -> dict[str, int]:
    """Devices by state, plus 'total'."""
    counts: dict[str, int] = {"total": len(devices)}
    for d in devices:
        counts[d.get("state", "")] = counts.get(d.get("state", ""), 0) + 1
    return counts


def tag_counts(devices: list[dict[str, Any]]) -> tuple[int, int, int]:
    """(GOOD, BAD, other) over the device tags of a `Devices.Status` result."""
    good = sum(d.get("tags_good", 0) for d in devices)
    bad = sum(d.get("tags_bad", 0) for d in devices)
    total = sum(d.get("tags", 0) for d in devices)
    return good, bad, max(0, total - good - bad)


def short_path(path: str) -> str:
    """The last two segments (device/point): what tells feeders apart on a small tile."""
    parts = path.split("/")
    return "/".join(parts[-2:]) if len(parts) > 2 else path


def power_text(kw: float) -> str:
    return f"{kw / 1000:.2f} MW" if abs(kw) >= 10_000 else f"{kw:.1f} kW"


def energy_text(kwh: float) -> str:
    return f"{kwh / 1000:.2f} MWh" if abs(kwh) >= 10_000 else f"{kwh:.1f} kWh"


def audit_event(rec: dict[str, Any], tz: Any) -> Text:
    """One audit record as an event line."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(fmt.local_time(fmt.parse_time(rec.get("time")), tz) + "  ")
    who = rec.get("scada_user") or rec.get("unix_user") or "?"
    t.append(f"{who} {rec.get('method', '')}")
    if rec.get("target"):
        t.append(f" {rec['target']}")
    if rec.get("outcome") != "ok":
        t.append(f"  {rec.get('error_code') or 'error'}", style="bold red")
    return t


def state_event(device: str, old: str | None, new: str, when: float, tz: Any) -> Text:
    """A device state change as an event line (colour only when it is not online)."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(fmt.local_time(datetime.fromtimestamp(when, tz), tz) + "  ")
    t.append(f"device {device} ")
    t.append(f"{old or '?'} → ")
    style = {"offline": "bold red", "degraded": "bold yellow", "connecting": "bold yellow", "disabled": "dim"}
    t.append(new, style=style.get(new, "" if new == "online" else "bold red"))
    return t


# ---------------------------------------------------------------------- widgets


class Tile(Static):
    """A bordered figure with a title; CSS classes `-alarm` / `-warn` when abnormal."""

    def __init__(self, title: str, id: str) -> None:
        super().__init__("—", id=id, classes="tile live")
        self.border_title = title

    def show(self, text: str | Text, note: str = "", level: str = "") -> None:
        self.update(text)
        self.border_subtitle = note
        self.set_class(level == "alarm", "-alarm")
        self.set_class(level == "warn", "-warn")


class Spark(Vertical):
    """A label (tag, value, range) over a sparkline of the last hour."""

    def __init__(self, index: int) -> None:
        super().__init__(classes="spark", id=f"spark-{index}")

    def compose(self) -> ComposeResult:
        yield Static("", classes="spark-label")
        yield TrendPlot(compact=True, classes="live")


# ---------------------------------------------------------------------- screen


class OverviewScreen(ConsoleScreen):
    TITLE = "Overview"
    BINDINGS = [
        Binding("r", "reload", "Reload"),
        Binding("c", "clear_events", "Clear events"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.power_tags: dict[str, str] = {}  # path -> units
        self.energy_tags: dict[str, str] = {}
        self.spark_paths: list[str] = []
        self.pens: dict[str, Pen] = {}
        self.values: dict[str, dict[str, Any]] = {}
        self.baselines: dict[str, float] = {}
        self.baseline_day = 0.0
        self._audit_refused = False  # the "not readable" line is shown once per refusal
        self._baselines_at = 0.0  # monotonic time of the last baseline query
        self._baseline_retry_s = BASELINE_RETRY_S[0]
        self.device_states: dict[str, str] = {}
        self.devices: list[dict[str, Any]] = []
        self.seen_audit: set[int] = set()
        self._pending: dict[str, dict[str, Any]] = {}
        self._watch: Subscription | None = None
        self._watch_patterns: list[str] = []
        self._audit: Subscription | None = None

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="tiles"):
            yield Tile("Devices", "tile-devices")
            yield Tile("Tags", "tile-tags")
            yield Tile("Site power", "tile-power")
            yield Tile("Energy today", "tile-energy")
        yield Static("Last hour", classes="panel-title")
        with Grid(id="sparks"):
            for i in range(SPARKLINES):
                yield Spark(i)
        yield Static("Recent events", classes="panel-title")
        yield RichLog(id="events", max_lines=MAX_EVENTS, wrap=False, markup=False, classes="live")

    def on_mount(self) -> None:
        self.poll_while_shown(POLL_S, self._fetch_devices)
        self.set_interval(FLUSH_S, self._flush)

    def on_unmount(self) -> None:
        for sub in (self._watch, self._audit):
            if sub is not None:
                sub.cancel()

    # ------------------------------------------------------------------ loading

    async def on_link_up(self) -> None:
        await self._fetch_devices()
        power = await self.call("Tags.List", {"pattern": f"**/{POWER_POINT}"})
        energy = await self.call("Tags.List", {"pattern": f"**/{ENERGY_PREFIX}*"})
        self.power_tags = {
            t["spec"]["path"]: t["spec"].get("units", "")
            for t in power["tags"]
            if is_power_tag(t["spec"]["path"], t["spec"].get("units", "")) and t["spec"].get("source") != "computed"
        }
        self.energy_tags = {
            t["spec"]["path"]: t["spec"].get("units", "")
            for t in energy["tags"]
            if is_energy_tag(t["spec"]["path"], t["spec"].get("units", "")) and t["spec"].get("source") != "computed"
        }
        for t in [*power["tags"], *energy["tags"]]:
            self.values[t["spec"]["path"]] = t["value"]  # until the watch's first batch
        self.spark_paths = sorted(self.power_tags)[:SPARKLINES]
        self._subscribe()
        await self._load_sparks()
        await self._load_baselines()
        await self._load_audit()
        self._show_figures()

    def _subscribe(self) -> None:
        patterns = sorted({*self.power_tags, *self.energy_tags}) + [STATE_PATTERN]
        if self._watch is None or patterns != self._watch_patterns:
            if self._watch is not None:
                self._watch.cancel()
            self._watch_patterns = patterns
            params = {"patterns": patterns, "initial": True, "min_interval_ms": 500}
            self._watch = self.link.subscribe("Tags.Watch", params, self._on_values, self._on_stream_error)

    def _on_values(self, event: dict[str, Any]) -> None:
        # Runs for every batch: only remember the newest value per tag; `_flush` draws.
        for v in event.get("values", []):
            path = v["path"]
            if path.startswith("_system/devices/"):
                self._device_state(path.split("/")[2], v)
            else:
                self._pending[path] = v

    def _on_stream_error(self, exc: ScadaError) -> None:
        self.console.report_error(exc)

    def _device_state(self, device: str, v: dict[str, Any]) -> None:
        # The first value of each device (the watch's initial batch) is only remembered;
        # after a reconnect, a state that changed meanwhile shows as one event.
        state = str(v.get("value") or "offline")
        old = self.device_states.get(device)
        self.device_states[device] = state
        if old is not None and old != state:
            t = fmt.parse_time(v.get("server_time"))
            self._event(state_event(device, old, state, t.timestamp() if t else self.now(), self.tz))

    async def _load_sparks(self) -> None:
        end = self.now()
        start = end - LIVE_SPAN_S
        for path in self.spark_paths:
            try:
                result = await self.call("History.Query", history_params(path, start, end))
            except ScadaError as exc:
                self.console.report_error(exc)
                continue
            fresh = pen_from_history(result, path)
            old = self.pens.get(path)
            self.pens[path] = merge_tail(fresh, old) if old else fresh
        self._draw_sparks()

    async def _load_baselines(self) -> None:
        """The first value of each energy counter since local midnight (once a day)."""
        now = self.now()
        midnight = local_midnight(now, self.tz)
        baselines: dict[str, float] = {}
        for path in self.energy_tags:
            params = {"path": path, "start": iso(midnight), "end": iso(now + 0.001), "limit": 1}
            try:
                result = await self.call("History.Query", params)
            except ScadaError as exc:
                self.console.report_error(exc)
                continue
            for s in result.get("samples") or []:
                if s.get("value") is not None:
                    baselines[path] = s["value"]
                    break
        self.baselines, self.baseline_day = baselines, midnight
        self._baselines_at = time.monotonic()

    async def _load_audit(self) -> None:
        try:
            result = await self.call("Audit.List", {"limit": 20})
        except PermissionDenied:
            if not self._audit_refused:  # said once, not after every reload or reconnect
                self._audit_refused = True
                self._event(Text("audit trail: not readable by this user (audit.read)", style="dim"))
            return
        self._audit_refused = False
        for rec in result.get("records", []):
            self._audit_record(rec)
        if self._audit is None:
            self._audit = self.link.subscribe("Audit.Watch", {}, self._audit_record, self._on_audit_error)

    def _on_audit_error(self, exc: ScadaError) -> None:
        if not isinstance(exc, PermissionDenied):
            self.console.report_error(exc)

    def _audit_record(self, rec: dict[str, Any]) -> None:
        if rec.get("id") in self.seen_audit:
            return
        self.seen_audit.add(rec.get("id", -1))
        self._event(audit_event(rec, self.tz))

    def _event(self, line: Text) -> None:
        self.query_one("#events", RichLog).write(line)

    # ------------------------------------------------------------------ live

    async def _fetch_devices(self) -> None:
        result = await self.call("Devices.Status")
        self.devices = result.get("devices") or []
        self._show_counts()

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        now = self.now()
        every = bucket_s(LIVE_SPAN_S)
        for path, v in pending.items():
            self.values[path] = v
            pen = self.pens.get(path)
            point = live_point(v)
            if pen is not None and point is not None:
                pen.add_live(*point, every, keep_after=now - LIVE_SPAN_S - every)
        new_day = self.baseline_day and local_midnight(now, self.tz) != self.baseline_day
        missing = len(self.baselines) < len(self.energy_tags)  # e.g. nothing recorded yet
        retry = missing and time.monotonic() - self._baselines_at >= self._baseline_retry_s
        if self.energy_tags and (new_day or retry):
            self._baselines_at = time.monotonic()  # once: the worker replaces the baselines
            if retry:
                self._baseline_retry_s = min(BASELINE_RETRY_S[1], self._baseline_retry_s * 2)
            self.run_guarded(self._load_baselines, "baselines")
        if pending:
            self._show_figures()
        self._draw_sparks()

    # ------------------------------------------------------------------ drawing

    def _show_counts(self) -> None:
        counts = device_counts(self.devices)
        total = counts["total"]
        online = counts.get("online", 0)
        worst = max((NOT_ONLINE.get(s, 0) for s in counts if s != "total" and counts[s]), default=0)
        notes = [f"{counts[s]} {s}" for s in ("offline", "degraded", "connecting", "disabled") if counts.get(s)]
        level = "alarm" if worst >= 3 else ("warn" if worst else "")
        self.query_one("#tile-devices", Tile).show(f"{online}/{total} online", ", ".join(notes), level)
        good, bad, other = tag_counts(self.devices)
        text = Text(f"{good} GOOD · ")
        text.append(f"{bad} BAD", style="bold" if bad else "")
        note = f"{other} UNCERTAIN" if other else "device tags"
        self.query_one("#tile-tags", Tile).show(text, note, "alarm" if bad else ("warn" if other else ""))

    def _show_figures(self) -> None:
        power = self.query_one("#tile-power", Tile)
        if not self.power_tags:
            power.show("—", f"no {POWER_POINT} tags")
        else:
            kw, used, bad = site_power(self.power_tags, self.values)
            note = f"{used}/{used + bad} tags" if bad else f"sum of {used}"
            power.show("—" if kw is None else power_text(kw), note, "warn" if bad else "")
        energy = self.query_one("#tile-energy", Tile)
        if not self.energy_tags:
            energy.show("—", f"no {ENERGY_PREFIX}* kWh counters")
        else:
            kwh, used = energy_today(self.energy_tags, self.baselines, self.values)
            midnight = datetime.fromtimestamp(self.baseline_day or local_midnight(self.now(), self.tz), self.tz)
            partial = f" {used}/{len(self.energy_tags)}" if used < len(self.energy_tags) else ""
            note = f"from {midnight:%H:%M}{partial}"
            energy.show("—" if kwh is None else energy_text(kwh), note)

    def _draw_sparks(self) -> None:
        now = self.now()
        for i, spark in enumerate(self.query(Spark)):
            label = spark.query_one(".spark-label", Static)
            plot = spark.query_one(TrendPlot)
            if i >= len(self.spark_paths):
                spark.display = False
                continue
            spark.display = True
            path = self.spark_paths[i]
            pen = self.pens.get(path) or Pen(path, self.power_tags.get(path, ""))
            label.update(self._spark_label(path, pen, now))
            plot.set_pens([pen], now - LIVE_SPAN_S, now)

    def _spark_label(self, path: str, pen: Pen, now: float) -> Text:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(short_path(path), style="bold")
        v = self.values.get(path)
        units = self.power_tags.get(path, pen.units)
        if v is not None:
            quality = v.get("quality", "GOOD")
            t.append(
                f" {fmt.format_value(v.get('value'), 4)} {units}", style=fmt.QUALITY_STYLE.get(quality, "bold red")
            )
            if quality != "GOOD":
                t.append(f" {quality}", style=fmt.QUALITY_STYLE.get(quality, "bold red"))
        shown = [x for tt, x in zip(pen.times, pen.values, strict=True) if x is not None and tt >= now - LIVE_SPAN_S]
        if shown:
            t.append(f"  {fmt.format_value(min(shown), 4)}–{fmt.format_value(max(shown), 4)}", style="dim")
        return t

    # ------------------------------------------------------------------ actions

    def action_reload(self) -> None:
        if self.link.state is LinkState.ONLINE:
            self.run_worker(self._load, exclusive=True, group="load")

    def action_clear_events(self) -> None:
        self.query_one("#events", RichLog).clear()
