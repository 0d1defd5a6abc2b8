"""Communication health per device; enable or disable one.

`Devices.Status` is polled every 2 s while the screen is on show (not while another
screen is): cells are updated in place, rows are added or removed only when the set of
devices changes. States other than online carry colour (offline red, degraded and
connecting amber, disabled dim); the selected device's last error is spelled out below.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static
from textual.widgets.data_table import RowDoesNotExist

from tui import format as fmt
from tui.screens.base import ConsoleScreen
from tui.widgets.confirm import ConfirmDialog

POLL_S = 2.0
PERMISSION = "devices.configure"

STATE_STYLE = {
    "online": "",
    "degraded": "bold yellow",
    "connecting": "bold yellow",
    "offline": "bold red",
    "disabled": "dim",
}

COLUMNS = (
    ("name", "Device"),
    ("protocol", "Protocol"),
    ("state", "State"),
    ("since", "Since"),
    ("last_good", "Last good"),
    ("errors", "Errors"),
    ("p99", "p99 ms"),
    ("tags", "Tags ok"),
)
# Below this width the protocol column goes (the detail below still names it).
PROTOCOL_FROM_W = 96


def columns_for(width: int) -> tuple[tuple[str, str], ...]:
    return COLUMNS if width >= PROTOCOL_FROM_W else tuple(c for c in COLUMNS if c[0] != "protocol")


# ---------------------------------------------------------------------- pure helpers


def state_text(state: str) -> Text:
    return Text(state, style=STATE_STYLE.get(state, "bold red"))


def error_total(device: dict[str, Any]) -> int:
    return sum((device.get("errors") or {}).values())


def ms_text(ms: float | None) -> str:
    if ms is None:
        return "—"
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def device_cells(d: dict[str, Any], now: float, tz: Any) -> dict[str, Any]:
    """The table cells of one device, by column key."""
    last_good = fmt.age_s(now, d.get("last_good"))
    errors = error_total(d)
    tags = Text(f"{d.get('tags_good', 0)}/{d.get('tags', 0)}", justify="right")
    if d.get("tags_bad") and d.get("state") != "disabled":
        tags.stylize("bold red")
    return {
        "name": d["name"],
        "protocol": d.get("protocol", ""),
        "state": state_text(d.get("state", "")),
        "since": fmt.local_time_text(d.get("since"), now, tz),
        "last_good": "—" if last_good is None else f"{fmt.format_age(last_good)} ago",
        "errors": Text(str(errors), justify="right"),
        "p99": Text(ms_text(d.get("p99_ms")), justify="right"),
        "tags": tags,
    }


def device_detail(d: dict[str, Any] | None, now: float, tz: Any) -> Text:
    """The lines below the table: last error with its time, error counts, timings."""
    if d is None:
        return Text("No device selected.", style="dim")
    t = Text(no_wrap=False)
    t.append(d["name"], style="bold")
    t.append(f"  {d.get('protocol', '')}")
    if d.get("mode"):
        t.append(f" ({d['mode']})")
    t.append("  ")
    t.append_text(state_text(d.get("state", "")))
    since = fmt.parse_time(d.get("since"))
    if since is not None:
        t.append(f" for {fmt.duration(now - since.timestamp())}")
    t.append("\n")
    if d.get("last_error"):
        at = fmt.parse_time(d.get("last_error_at"))
        when = fmt.local_time(at, tz, with_date=True) if at else "—"
        t.append("Last error ", style="bold")
        t.append(f"{when}: ")
        t.append(d["last_error"], style="bold red" if d.get("state") != "online" else "")
    else:
        t.append("No error since the daemon started.", style="dim")
    t.append("\n")
    kinds = d.get("errors") or {}
    t.append("Errors: " + (", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) if kinds else "none"))
    # Request counts and scan jitter move on every poll of a healthy device: left out so
    # the panel changes only when something does (scadactl device status shows them).
    t.append(f"   reconnects {d.get('reconnects', 0)}")
    t.append(f"   response p50 {ms_text(d.get('p50_ms'))} / p99 {ms_text(d.get('p99_ms'))} ms")
    t.append(f"   scan overruns {d.get('scan_overruns', 0)}")
    t.append(f"   tags {d.get('tags', 0)}: {d.get('tags_good', 0)} GOOD, {d.get('tags_bad', 0)} BAD")
    return t


# ---------------------------------------------------------------------- screen


class DevicesScreen(ConsoleScreen):
    """One row per device; `e` enables, `x` disables the selected one (after a yes)."""

    TITLE = "Devices"
    BINDINGS = [
        Binding("e", "set_enabled(True)", "Enable"),
        Binding("x", "set_enabled(False)", "Disable"),
        Binding("r", "refresh", "Refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.devices: dict[str, dict[str, Any]] = {}
        self._poll: Callable[[], None] = lambda: None  # polls Devices.Status now (set on mount)
        self.polls = 0  # Devices.Status calls made
        self.columns: tuple[tuple[str, str], ...] = ()

    def compose_body(self) -> ComposeResult:
        yield Static("Communication health", classes="panel-title")
        yield DataTable(id="devices-table", cursor_type="row", zebra_stripes=False, classes="live")
        yield Static("Selected device", classes="panel-title")
        yield Static(id="device-detail", classes="live")

    def on_mount(self) -> None:
        self._set_columns(self.app.size.width)
        self._poll = self.poll_while_shown(POLL_S, self._fetch)

    def _set_columns(self, width: int) -> None:
        """(Re)build the columns for the screen width; only when the set changes."""
        columns = columns_for(width)
        if columns == self.columns:
            return
        self.columns = columns
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for key, label in columns:
            table.add_column(label, key=key)
        devices, self.devices = self.devices, {}
        self.show_devices(list(devices.values()))

    def on_resize(self) -> None:
        self._set_columns(self.size.width)

    async def on_link_up(self) -> None:
        await self._fetch()

    # ------------------------------------------------------------------ data

    async def _fetch(self) -> None:
        self.polls += 1
        result = await self.call("Devices.Status")
        self.show_devices(result.get("devices") or [])

    def show_devices(self, devices: list[dict[str, Any]]) -> None:
        """Update the table in place from a `Devices.Status` result."""
        table = self.query_one(DataTable)
        now, tz = self.now(), self.tz
        fresh = {d["name"]: d for d in devices}
        for name in [n for n in self.devices if n not in fresh]:
            try:
                table.remove_row(name)
            except RowDoesNotExist:
                pass
        for name in sorted(fresh):
            cells = device_cells(fresh[name], now, tz)
            if name in self.devices:
                for key, _ in self.columns:
                    table.update_cell(name, key, cells[key], update_width=True)  # "online" → "connecting"
            else:
                table.add_row(*(cells[key] for key, _ in self.columns), key=name)
        self.devices = fresh
        self._show_detail()

    def selected(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except Exception:  # noqa: BLE001 - no row under the cursor
            return None
        return self.devices.get(key or "")

    def _show_detail(self) -> None:
        self.query_one("#device-detail", Static).update(device_detail(self.selected(), self.now(), self.tz))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    # ------------------------------------------------------------------ actions

    def action_refresh(self) -> None:
        self._poll()

    def action_set_enabled(self, enabled: bool) -> None:
        device = self.selected()
        if device is None:
            self.notify("No device selected.", severity="warning", timeout=3)
            return
        name = device["name"]
        if not self.console.may(PERMISSION):
            # Said before asking, not after a yes; the daemon checks again anyway.
            self.notify(f"Enabling or disabling a device needs permission '{PERMISSION}'.", severity="error")
            return
        if bool(device.get("enabled")) == enabled:
            self.notify(f"{name} is already {'enabled' if enabled else 'disabled'}.", timeout=3)
            return
        if enabled:
            title = f"Enable {name}?"
            body = f"scadad starts polling {name} again; its {device.get('tags', 0)} tags come back when it answers."
        else:
            title = f"Disable {name}?"
            body = (
                f"scadad stops polling {name}: its {device.get('tags', 0)} tags go BAD (disabled) "
                "until it is enabled again. This is recorded in the audit log."
            )

        def answered(yes: bool | None) -> None:
            if yes:
                self._update_device(name, enabled)

        self.app.push_screen(ConfirmDialog(title, body), answered)

    @work(group="update")
    async def _update_device(self, name: str, enabled: bool) -> None:
        verb = "enabled" if enabled else "disabled"
        try:
            await self.call("Devices.Update", {"name": name, "enabled": enabled})
        except Exception as exc:  # noqa: BLE001 - PERMISSION_DENIED, a lost link and the like: say it, go on
            self.console.report_error(exc, unconfirmed=f"{name}: {verb}")
            return
        self.notify(f"{name} {verb}.", timeout=3)
        try:
            await self._fetch()
        except Exception as exc:  # noqa: BLE001 - a screen must never take the console down
            self.console.report_error(exc)
