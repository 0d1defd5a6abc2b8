"""Pure display rules of the console: numbers, ages, qualities, times.

Kept free of Textual so they are unit-tested on their own and shared by every screen.
High-performance HMI (ISA-101): normal values are plain grey text; colour is kept for
what is abnormal (BAD red, UNCERTAIN amber, stale dim), so it means something.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.text import Text

QUALITY_STYLE = {"GOOD": "", "UNCERTAIN": "bold yellow", "BAD": "bold red"}
STALE_STYLE = "dim"


def parse_time(value: Any) -> datetime | None:
    """An ISO-8601 wire time (or None) as an aware datetime."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def zone(name: str | None) -> tzinfo:
    try:
        return ZoneInfo(name) if name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def format_value(value: Any, digits: int = 6) -> str:
    """A live value for a table cell: booleans as ON/OFF, floats to 6 significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "ON" if value else "OFF"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        if value == 0:
            return "0"
        mag = abs(value)
        if mag >= 10**digits or mag < 1e-3:
            return f"{value:.{digits - 1}g}"
        decimals = max(0, digits - 1 - int(math.floor(math.log10(mag))))
        return f"{value:.{decimals}f}".rstrip("0").rstrip(".") if decimals else f"{value:.0f}"
    return str(value)


def format_age(seconds: float | None) -> str:
    """Age of a value, short: 0s, 42s, 7m, 3h, 2d; — when unknown."""
    if seconds is None:
        return "—"
    s = max(0.0, seconds)
    if s < 60:
        return f"{int(s)}s"
    if s < 3600:
        return f"{int(s // 60)}m"
    if s < 86400:
        return f"{int(s // 3600)}h"
    return f"{int(s // 86400)}d"


def age_s(now: float, server_time: Any) -> float | None:
    t = parse_time(server_time)
    return None if t is None else now - t.timestamp()


def quality_text(quality: str, reason: str | None = None) -> Text:
    """GOOD is plain; UNCERTAIN and BAD carry their colour and reason."""
    label = quality if not reason or quality == "GOOD" else f"{quality} {reason}"
    return Text(label, style=QUALITY_STYLE.get(quality, "bold red"))


def value_text(value: Any, quality: str, stale: bool = False) -> Text:
    style = STALE_STYLE if stale else QUALITY_STYLE.get(quality, "")
    return Text(format_value(value), style=style, justify="right")


def local_time(t: datetime | None, tz: tzinfo, with_date: bool = False) -> str:
    if t is None:
        return "—"
    t = t.astimezone(tz)
    return t.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def duration(seconds: float) -> str:
    """A span for people: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def parse_span(text: str) -> timedelta:
    """A trend span typed by a person: 90m, 8h, 2d, 1w (a bare number is minutes)."""
    t = text.strip().lower()
    if not t:
        raise ValueError("empty span: type e.g. 90m, 8h, 2d")
    unit = t[-1]
    number = t[:-1] if unit.isalpha() else t
    factor = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}.get(unit if unit.isalpha() else "m")
    if factor is None:
        raise ValueError(f"unknown unit {unit!r} in {text!r}: use s, m, h, d or w")
    try:
        n = float(number)
    except ValueError:
        raise ValueError(f"{text!r} is not a span: type e.g. 90m, 8h, 2d") from None
    if n <= 0 or n * factor > 366 * 86400:
        raise ValueError(f"{text!r} is out of range: between 1 s and 366 d")
    return timedelta(seconds=n * factor)


def local_time_text(value: Any, now: float, tz: tzinfo) -> str:
    """A time in the site's zone: the time of day when it is today, else date and time."""
    t = parse_time(value)
    if t is None:
        return "—"
    local = t.astimezone(tz)
    today = datetime.fromtimestamp(now, tz).date()
    return local.strftime("%H:%M:%S" if local.date() == today else "%m-%d %H:%M")
