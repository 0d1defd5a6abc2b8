"""The console's display rules, without Textual."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scadactl.console import console_argv
from tui import format as fmt


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (True, "ON"),
        (False, "OFF"),
        (0.0, "0"),
        (231.7, "231.7"),
        (49.98765432, "49.9877"),
        (1234567.0, "1.2346e+06"),
        (0.0001234, "0.0001234"),
        (-12.5, "-12.5"),
        (42, "42"),
        ("open", "open"),
        (float("nan"), "nan"),
    ],
)
def test_values_are_shown_to_six_significant_digits(value: object, text: str) -> None:
    assert fmt.format_value(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "—"), (-3, "0s"), (0.4, "0s"), (59.9, "59s"), (61, "1m"), (7200, "2h"), (200000, "2d")]
)
def test_ages_are_short(seconds: float | None, text: str) -> None:
    assert fmt.format_age(seconds) == text


def test_age_counts_from_the_server_time() -> None:
    t = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert fmt.age_s(t.timestamp() + 90, t.isoformat()) == 90
    assert fmt.age_s(0, None) is None


def test_only_abnormal_quality_has_colour() -> None:
    assert fmt.quality_text("GOOD", None).style == ""
    bad = fmt.quality_text("BAD", "comm_failure")
    assert bad.plain == "BAD comm_failure" and "red" in str(bad.style)
    assert "yellow" in str(fmt.quality_text("UNCERTAIN", "out_of_range").style)
    assert fmt.value_text(1.5, "GOOD", stale=True).style == "dim"


def test_local_time_uses_the_site_zone() -> None:
    t = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert fmt.local_time(t, fmt.zone("Asia/Kolkata")) == "17:30:00"
    assert fmt.local_time(t, fmt.zone("Nowhere/Atlantis"), with_date=True) == "2026-06-01 12:00:00"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90m", 5400), ("8h", 28800), ("2d", 172800), ("1w", 604800), ("30", 1800)]
)
def test_spans_typed_by_people(text: str, seconds: int) -> None:
    assert fmt.parse_span(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "why"), [("", "empty"), ("5y", "unknown unit"), ("xh", "not a span"), ("400d", "out of range")]
)
def test_bad_spans_say_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        fmt.parse_span(text)


def test_scada_console_moves_global_options_before_the_command() -> None:
    assert console_argv(["--socket", "/s", "--light"]) == ["--socket", "/s", "console", "--light"]
    assert console_argv(["-S", "/s", "--timeout=5", "--screen", "tags"]) == [
        "-S",
        "/s",
        "--timeout=5",
        "console",
        "--screen",
        "tags",
    ]
    assert console_argv([]) == ["console"]
