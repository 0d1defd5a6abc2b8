"""scadad.alarms.conditions: whether an alarm's condition is true for one value, and its message."""

from __future__ import annotations

import math
from typing import Any

import pytest

from scadad.alarms.conditions import Rule, condition, render_message

GOOD, UNCERTAIN, BAD = "GOOD", "UNCERTAIN", "BAD"
TAG = "plant/tank1/level"


def rule(kind: str, limit: float | None = None, deadband: float = 0.0, **kw: Any) -> Rule:
    return Rule(id=1, tag_id=1, tag_path=TAG, kind=kind, limit=limit, deadband=deadband, **kw)


# ------------------------------------------------------------- limits with hysteresis


@pytest.mark.parametrize(
    "x, active, expected",
    [
        (100.0, False, False),  # trips above 100…
        (100.1, False, True),
        (99.0, False, False),
        (100.0, True, True),  # …and clears at or below 100 - 5
        (95.1, True, True),
        (95.0, True, False),
        (90.0, True, False),
    ],
)
@pytest.mark.parametrize("kind", ["hi", "hihi"])
def test_high_limit_with_deadband(kind: str, x: float, active: bool, expected: bool) -> None:
    assert condition(rule(kind, 100.0, 5.0), x, GOOD, active) is expected


@pytest.mark.parametrize(
    "x, active, expected",
    [
        (10.0, False, False),  # trips below 10…
        (9.9, False, True),
        (11.0, False, False),
        (10.0, True, True),  # …and clears at or above 10 + 5
        (14.9, True, True),
        (15.0, True, False),
        (20.0, True, False),
    ],
)
@pytest.mark.parametrize("kind", ["lo", "lolo"])
def test_low_limit_with_deadband(kind: str, x: float, active: bool, expected: bool) -> None:
    assert condition(rule(kind, 10.0, 5.0), x, GOOD, active) is expected


@pytest.mark.parametrize(
    "kind, x, active, expected",
    [
        ("hi", 100.0, True, False),  # no deadband: clears at the limit itself
        ("hi", 100.1, True, True),
        ("lo", 10.0, True, False),
        ("lo", 9.9, True, True),
    ],
)
def test_limit_without_deadband(kind: str, x: float, active: bool, expected: bool) -> None:
    limit = 100.0 if kind == "hi" else 10.0
    assert condition(rule(kind, limit), x, GOOD, active) is expected


@pytest.mark.parametrize("quality", [GOOD, UNCERTAIN])
def test_usable_quality_is_evaluated(quality: str) -> None:
    assert condition(rule("hi", 100.0), 150.0, quality, False) is True
    assert condition(rule("hi", 100.0), 50.0, quality, True) is False


@pytest.mark.parametrize("value, expected", [(1, True), (True, True), (0, False), (False, False)])
def test_limit_on_int_and_bool_values(value: Any, expected: bool) -> None:
    assert condition(rule("hi", 0.5), value, GOOD, False) is expected


# ------------------------------------------------------------- deviation and rate of change


@pytest.mark.parametrize(
    "x, active, expected",
    [
        (55.0, False, False),  # |5| is not over 5
        (55.5, False, True),
        (44.5, False, True),  # below the setpoint counts too
        (45.0, False, False),
        (54.1, True, True),  # clears at or below 5 - 1
        (54.0, True, False),
        (45.9, True, True),
        (46.0, True, False),
    ],
)
def test_deviation_from_setpoint(x: float, active: bool, expected: bool) -> None:
    r = rule("deviation", 5.0, 1.0, setpoint_path="plant/tank1/level_sp")
    assert condition(r, x, GOOD, active, setpoint=50.0) is expected


@pytest.mark.parametrize("setpoint", [None, "auto", math.nan, math.inf])
@pytest.mark.parametrize("active", [False, True])
def test_deviation_without_a_usable_setpoint_holds(setpoint: Any, active: bool) -> None:
    # 80 is far from any plausible setpoint: only holding explains the result.
    assert condition(rule("deviation", 5.0), 80.0, GOOD, active, setpoint=setpoint) is active


def test_deviation_setpoint_follows_the_setpoint_tag() -> None:
    r = rule("deviation", 5.0)
    assert condition(r, 80.0, GOOD, False, setpoint=78.0) is False
    assert condition(r, 80.0, GOOD, False, setpoint=70.0) is True


@pytest.mark.parametrize(
    "rate, active, expected",
    [
        (2.0, False, False),
        (2.1, False, True),
        (-2.1, False, True),  # falling fast counts too
        (-2.0, False, False),
        (1.6, True, True),  # clears at or below 2 - 0.5
        (1.5, True, False),
        (-1.5, True, False),
        (None, False, False),  # no rate yet: hold
        (None, True, True),
    ],
)
def test_rate_of_change(rate: float | None, active: bool, expected: bool) -> None:
    # The value itself plays no part: a huge one must not trip it.
    assert condition(rule("rate_of_change", 2.0, 0.5), 1e9, GOOD, active, rate=rate) is expected


# ------------------------------------------------------------- discrete


@pytest.mark.parametrize(
    "op, limit, value, expected",
    [
        ("eq", 1.0, 1, True),
        ("eq", 1.0, 1.0, True),
        ("eq", 1.0, True, True),
        ("eq", 1.0, 0, False),
        ("eq", 1.0, False, False),
        ("eq", 1.0, 2, False),
        ("eq", 0.0, False, True),
        ("eq", 0.0, True, False),
        ("eq", 3.0, 3, True),
        ("eq", 3.0, 1, False),
        ("eq", None, True, True),  # no limit: abnormal while true
        ("eq", None, False, False),
        ("ne", 1.0, 1, False),
        ("ne", 1.0, True, False),
        ("ne", 1.0, 0, True),
        ("ne", 1.0, False, True),
        ("ne", 3.0, 2, True),
        ("ne", 3.0, 3.0, False),
        ("ne", None, False, True),
        ("ne", None, True, False),
    ],
)
@pytest.mark.parametrize("active", [False, True])
def test_discrete(op: str, limit: float | None, value: Any, expected: bool, active: bool) -> None:
    # No hysteresis: the previous condition plays no part.
    assert condition(rule("discrete", limit, discrete_op=op), value, GOOD, active) is expected


@pytest.mark.parametrize("value", [None, math.nan, math.inf])
@pytest.mark.parametrize("op", ["eq", "ne"])
@pytest.mark.parametrize("active", [False, True])
def test_discrete_unusable_value_holds(value: Any, op: str, active: bool) -> None:
    assert condition(rule("discrete", 1.0, discrete_op=op), value, GOOD, active) is active


# ------------------------------------------------------------- quality


@pytest.mark.parametrize(
    "quality, active, expected",
    [(BAD, False, True), (BAD, True, True), (GOOD, True, False), (UNCERTAIN, True, False), (GOOD, False, False)],
)
def test_bad_quality(quality: str, active: bool, expected: bool) -> None:
    assert condition(rule("bad_quality"), 42.0, quality, active) is expected


@pytest.mark.parametrize(
    "r, value, kw",
    [
        pytest.param(rule("hi", 100.0), 150.0, {}, id="hi above"),
        pytest.param(rule("hi", 100.0), 50.0, {}, id="hi below"),
        pytest.param(rule("lo", 10.0), 0.0, {}, id="lo below"),
        pytest.param(rule("deviation", 5.0), 80.0, {"setpoint": 50.0}, id="deviation"),
        pytest.param(rule("rate_of_change", 2.0), 0.0, {"rate": 10.0}, id="rate"),
        pytest.param(rule("discrete", 1.0), 1, {}, id="discrete matching"),
        pytest.param(rule("discrete", 1.0), 0, {}, id="discrete not matching"),
    ],
)
@pytest.mark.parametrize("active", [False, True])
def test_bad_quality_holds_the_previous_condition(r: Rule, value: Any, kw: dict[str, Any], active: bool) -> None:
    assert condition(r, value, BAD, active, **kw) is active


@pytest.mark.parametrize("value", [None, "n/a", math.nan, math.inf, -math.inf, [1.0]])
@pytest.mark.parametrize("kind", ["hi", "hihi", "lo", "lolo", "deviation"])
@pytest.mark.parametrize("active", [False, True])
def test_unusable_value_holds(value: Any, kind: str, active: bool) -> None:
    assert condition(rule(kind, 100.0), value, GOOD, active, setpoint=0.0) is active


@pytest.mark.parametrize("value", [1e9, -1e9])
@pytest.mark.parametrize("kind", ["hi", "lo", "deviation", "rate_of_change"])
@pytest.mark.parametrize("active", [False, True])
def test_limit_kind_without_a_limit_holds(value: float, kind: str, active: bool) -> None:
    assert condition(rule(kind, None), value, GOOD, active, setpoint=0.0, rate=value) is active


# ------------------------------------------------------------- messages


@pytest.mark.parametrize(
    "kind, limit, value, expected",
    [
        ("hihi", 110.0, 112.5, "Tank 1 level very high: 112.5 % > 110 %"),
        ("hi", 100.0, 101.25, "Tank 1 level high: 101.25 % > 100 %"),
        ("lo", 10.0, 9.5, "Tank 1 level low: 9.5 % < 10 %"),
        ("lolo", 5.0, 4, "Tank 1 level very low: 4 % < 5 %"),
        ("discrete", 1.0, True, "Tank 1 level is True"),
        ("rate_of_change", 2.0, 40.0, "Tank 1 level changing faster than 2 %/s"),
        ("deviation", 5.0, 80.0, "Tank 1 level 80 % more than 5 % from plant/tank1/level_sp"),
        ("bad_quality", None, None, "Tank 1 level bad quality / communication lost"),
        ("mystery", None, 1.0, f"{TAG} mystery"),
    ],
)
def test_default_message(kind: str, limit: float | None, value: Any, expected: str) -> None:
    r = rule(kind, limit, units="%", description="Tank 1 level", setpoint_path="plant/tank1/level_sp")
    assert render_message(r, value) == expected


def test_default_message_falls_back_to_the_tag_path_and_formats_values() -> None:
    r = rule("hi", 100.0)
    assert render_message(r, 3.14159265) == f"{TAG} high: 3.14159  > 100 "
    assert render_message(r, None) == f"{TAG} high: —  > 100 "


def test_custom_message() -> None:
    r = rule(
        "hi",
        100.0,
        units="%",
        priority="high",
        area="north",
        message="{tag} at {value}{units} ({priority}, {area}) over {limit}",
    )
    assert render_message(r, 101.5) == f"{TAG} at 101.5% (high, north) over 100"


@pytest.mark.parametrize("template", ["{tag} is {nope}", "{tag} {0}", "{tag", "{value.real}"])
def test_message_with_an_unknown_field_is_returned_as_written(template: str) -> None:
    assert render_message(rule("hi", 100.0, message=template), 101.0) == template
