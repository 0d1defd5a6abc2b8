"""The daemon's configuration file (scadad.toml): infrastructure only.

Plant content (sites, devices, tags, rules ...) is data in the store, edited through
the API. This file says where things live and how the daemon behaves. Every key is
optional; an unknown key or a wrong type is refused at start with the file, the key
and the reason, because a typo that is silently ignored is how a plant ends up
running on defaults nobody chose.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from scadad.api import protocol


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class SiteSettings(_Section):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "plant"
    timezone: str = "UTC"


class PathSettings(_Section):
    data_dir: str = ""  # default: $XDG_DATA_HOME/scada (a system install sets /var/lib/scada)


class ApiSettings(_Section):
    socket: str = ""  # default: $XDG_RUNTIME_DIR/scadad/scadad.sock (system: /run/scadad/scadad.sock)
    socket_mode: Annotated[str, msgspec.Meta(pattern=r"^0?[0-7]{3}$")] = "0660"
    socket_group: str = ""
    max_frame_bytes: Annotated[int, msgspec.Meta(ge=1024, le=64 * 1024 * 1024)] = protocol.DEFAULT_MAX_FRAME_BYTES
    idle_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 600.0
    max_inflight: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 256


class StoreSettings(_Section):
    url: str = ""  # default: sqlite:///<data_dir>/scada.db
    auto_migrate: bool = True


class AuthSettings(_Section):
    bcrypt_cost: Annotated[int, msgspec.Meta(ge=12, le=16)] = 12
    min_password_length: Annotated[int, msgspec.Meta(ge=8, le=64)] = 12
    mfa_required_roles: list[str] = msgspec.field(default_factory=lambda: ["admin"])
    session_idle_timeout_s: Annotated[float, msgspec.Meta(ge=1)] = 900.0
    session_lifetime_s: Annotated[float, msgspec.Meta(ge=1)] = 43200.0
    max_sessions_per_user: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    lockout_threshold: Annotated[int, msgspec.Meta(ge=1, le=100)] = 5
    lockout_base_s: Annotated[float, msgspec.Meta(ge=1)] = 60.0
    lockout_max_s: Annotated[float, msgspec.Meta(ge=1)] = 3600.0
    max_failures_per_hour: Annotated[int, msgspec.Meta(ge=1)] = 100
    login_attempts_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 20
    # How a Unix peer (SO_PEERCRED) becomes a SCADA user without logging in:
    # "off", "same_name" (Unix login = SCADA username) or "map" (the tables below).
    unix_identity: Literal["off", "same_name", "map"] = "off"
    unix_users: dict[str, str] = msgspec.field(default_factory=dict)
    unix_groups: dict[str, str] = msgspec.field(default_factory=dict)
    # Single-user demo: the daemon's own Unix user (and root) act as a built-in admin.
    local_admin: bool = False
    # Read-only methods for any local peer without a login.
    anonymous_viewer: bool = False
    audit_max_records: Annotated[int, msgspec.Meta(ge=1000)] = 10_000_000
    token_max_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 365


class HistorianSettings(_Section):
    enabled: bool = True
    path: str = ""  # default: <data_dir>/historian.db
    retention_days: Annotated[int, msgspec.Meta(ge=0)] = 0  # 0 = keep forever; tags may set their own
    max_queue: Annotated[int, msgspec.Meta(ge=1000, le=100_000_000)] = 500_000
    batch_size: Annotated[int, msgspec.Meta(ge=100, le=1_000_000)] = 20_000
    flush_interval_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.5


class AcquisitionSettings(_Section):
    # Reconnect backoff: doubles from min to max, with jitter in [d/2, d]. max bounds how
    # long a device that came back stays unread.
    reconnect_min_s: Annotated[float, msgspec.Meta(gt=0, le=60)] = 0.25
    reconnect_max_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 4.0


class SimulatorSettings(_Section):
    # The built-in simulated plant (also `scadad --simulate`): Modbus TCP devices on
    # loopback with real register maps, added as devices and tags under `site`.
    enabled: bool = False
    devices: Annotated[int, msgspec.Meta(ge=0, le=2000)] = 0  # 0 = one of each type
    types: list[str] = msgspec.field(default_factory=list)  # empty = every type
    tags_per_device: Annotated[int, msgspec.Meta(ge=0, le=2000)] = 0
    base_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0  # 0 = free ports
    site: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]+$")] = "sim"
    scan_ms: Annotated[int, msgspec.Meta(ge=50)] = 1000
    # Seed of the models' noise and per-device constants: same seed, same plant.
    seed: Annotated[int, msgspec.Meta(ge=0)] = 1
    alarms: bool = True  # the demo alarm rules (tank level, voltage, fuel, comm loss ...)
    meters: bool = True  # the demo meter hierarchy (grid, DG, solar, main bus, feeders, loads)
    # Stand the whole daemon's wall clock still at this instant (ISO-8601 with an offset):
    # every timestamp and the simulated plant's time; for repeatable tests and screenshots.
    fixed_clock: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["plain", "json"] = "plain"


class SmtpSettings(_Section):
    # The mail relay for alarm notifications (and later reports). Empty host: no e-mail.
    host: str = ""
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    # The password: here, or (better) in the OS keyring under service "scadad-smtp" and
    # the username, which `keyring set scadad-smtp <username>` stores.
    password: str = ""
    from_address: str = "scadad@localhost"
    timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0


class AlarmRoute(_Section):
    # Who gets mail for which alarms: area patterns ('*' one segment, '**' any depth)
    # and priorities; an alarm goes to every route it matches.
    areas: list[str] = msgspec.field(default_factory=lambda: ["**"])
    priorities: list[Literal["critical", "high", "medium", "low"]] = msgspec.field(
        default_factory=lambda: ["critical", "high"]
    )
    to: list[str] = msgspec.field(default_factory=list)


class AlarmEmailSettings(_Section):
    enabled: bool = True  # with [smtp] host set
    subject_prefix: str = "[SCADA]"
    routes: list[AlarmRoute] = msgspec.field(default_factory=list)
    # A critical alarm still unacknowledged this long is mailed again to escalate_to.
    escalate_after_s: Annotated[float, msgspec.Meta(ge=0)] = 900.0
    escalate_to: list[str] = msgspec.field(default_factory=list)
    # After a mail to a recipient, further alarms within this window go out as one digest.
    digest_window_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 60.0
    max_mails_per_hour: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 30
    retry_delays_s: list[Annotated[float, msgspec.Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: [10.0, 60.0, 300.0]
    )


class AlarmSettings(_Section):
    max_shelve_hours: Annotated[float, msgspec.Meta(gt=0, le=24 * 366)] = 24.0 * 7
    email: AlarmEmailSettings = msgspec.field(default_factory=AlarmEmailSettings)


class EnergySettings(_Section):
    # Feeder loss verdicts (parent against the sum of its children, per interval).
    loss_warn_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 3.0
    loss_alarm_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 6.0
    # Children reading more than the parent by this much: a reversed or mis-ratioed CT.
    loss_negative_tolerance_pct: Annotated[float, msgspec.Meta(ge=0, le=100)] = 1.0
    # Below this the parent's energy is too small to judge (meter rounding dominates).
    loss_min_parent_kwh: Annotated[float, msgspec.Meta(ge=0)] = 1.0
    # A counter step larger than this (kWh between two reads) is a glitch (a wrong
    # register, a counter that came back from a different base), not energy: it is left
    # out and the interval marked estimated. 10 MWh is an hour of a 10 MW site.
    max_counter_step_kwh: Annotated[float, msgspec.Meta(gt=0)] | None = 10_000.0
    # Grid emission factor for avoided CO2 when a source sets none (kg CO2 per kWh),
    # and where it comes from.
    grid_emission_factor_kg_per_kwh: Annotated[float, msgspec.Meta(ge=0)] = 0.727
    grid_factor_source: str = "India CEA CO2 Baseline Database, FY2023-24 (0.727 t/MWh)"


class Settings(_Section):
    site: SiteSettings = msgspec.field(default_factory=SiteSettings)
    paths: PathSettings = msgspec.field(default_factory=PathSettings)
    api: ApiSettings = msgspec.field(default_factory=ApiSettings)
    store: StoreSettings = msgspec.field(default_factory=StoreSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    historian: HistorianSettings = msgspec.field(default_factory=HistorianSettings)
    acquisition: AcquisitionSettings = msgspec.field(default_factory=AcquisitionSettings)
    simulator: SimulatorSettings = msgspec.field(default_factory=SimulatorSettings)
    smtp: SmtpSettings = msgspec.field(default_factory=SmtpSettings)
    alarms: AlarmSettings = msgspec.field(default_factory=AlarmSettings)
    energy: EnergySettings = msgspec.field(default_factory=EnergySettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)


class ConfigError(Exception):
    """The configuration cannot be used; the message names file, key and reason."""


@dataclass(frozen=True, slots=True)
class Config:
    """Settings with every default resolved to a concrete path or URL."""

    path: Path | None
    settings: Settings
    data_dir: Path
    socket_path: Path
    store_url: str

    @property
    def socket_mode(self) -> int:
        return int(self.settings.api.socket_mode, 8)


# Keys that SIGHUP can apply to a running daemon; every other change needs a restart.
RELOADABLE = frozenset(
    {
        "site.name",
        "site.timezone",
        "api.max_frame_bytes",
        "api.idle_timeout_s",
        "api.max_inflight",
        "log.level",
        "log.format",
        "auth.mfa_required_roles",
        "auth.session_idle_timeout_s",
        "auth.session_lifetime_s",
        "auth.max_sessions_per_user",
        "auth.lockout_threshold",
        "auth.lockout_base_s",
        "auth.lockout_max_s",
        "auth.max_failures_per_hour",
        "auth.login_attempts_per_minute",
        "auth.unix_identity",
        "auth.unix_users",
        "auth.unix_groups",
        "auth.local_admin",
        "auth.anonymous_viewer",
        "auth.audit_max_records",
        "auth.token_max_days",
        "auth.bcrypt_cost",
        "auth.min_password_length",
        "historian.retention_days",
        "acquisition.reconnect_min_s",
        "acquisition.reconnect_max_s",
    }
)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "scada"


def load(path: Path | None) -> Config:
    """Read, validate and resolve a config file (None: all defaults)."""
    raw: dict[str, object] = {}
    where = str(path) if path else "<defaults>"
    if path is not None:
        try:
            with open(path, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{where}: file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
    try:
        settings = msgspec.convert(raw, Settings)
    except msgspec.ValidationError as exc:
        key = protocol.field_of(exc) or "(top level)"
        reason = protocol.describe_validation_error(exc)
        if "unknown field" in reason:
            reason = "unknown key"
        raise ConfigError(f"{where}: {key}: {reason}") from None
    try:
        ZoneInfo(settings.site.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: site.timezone: unknown time zone {settings.site.timezone!r}") from None
    if settings.api.socket_group:
        import grp

        try:
            grp.getgrnam(settings.api.socket_group)
        except KeyError:
            raise ConfigError(f"{where}: api.socket_group: no such group {settings.api.socket_group!r}") from None
    base = path.parent if path else Path.cwd()
    data_dir = _resolve(settings.paths.data_dir, base) if settings.paths.data_dir else default_data_dir()
    socket_path = _resolve(settings.api.socket, base) if settings.api.socket else protocol.default_socket_path()
    store_url = settings.store.url or f"sqlite:///{data_dir / 'scada.db'}"
    if not store_url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise ConfigError(f"{where}: store.url: expected a sqlite:/// or postgresql:// URL, got {store_url!r}")
    return Config(path, settings, data_dir, socket_path, store_url)


def resolve_path(value: str, base: Path | None) -> Path:
    """A path from the config: ~ and $VARS expanded, relative to the config file's folder."""
    return _resolve(value, base or Path.cwd())


def _resolve(value: str, base: Path) -> Path:
    """Expand ~ and $VARS; a relative path is relative to the config file."""
    p = Path(os.path.expandvars(os.path.expanduser(value)))
    return p if p.is_absolute() else (base / p).resolve()


def changed_keys(old: Settings, new: Settings) -> list[str]:
    """Dotted keys whose values differ between two settings."""
    a, b = msgspec.to_builtins(old), msgspec.to_builtins(new)
    out = []
    for section in sorted(set(a) | set(b)):
        sa, sb = a.get(section, {}), b.get(section, {})
        for key in sorted(set(sa) | set(sb)):
            if sa.get(key) != sb.get(key):
                out.append(f"{section}.{key}")
    return out
