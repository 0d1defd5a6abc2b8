"""Whether one alarm's condition is true for a value: limits with hysteresis, discrete
states, rate of change, deviation from a setpoint, bad quality.

Plain functions of (rule, value, quality, previous condition): the engine calls them on
every value change, the tests call them directly. A limit alarm on a BAD value holds
its previous condition (the last usable value decided it; the bad_quality alarm is
what reports the loss), and so does a value of the wrong type.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from scadad.alarms.state import Timing
from scadad.tags.expr import Expression

BAD = "BAD"
LIMIT_KINDS = frozenset({"hihi", "hi", "lo", "lolo", "rate_of_change", "deviation"})
HIGH_KINDS = frozenset({"hihi", "hi"})
LOW_KINDS = frozenset({"lo", "lolo"})


@dataclass(slots=True)
class Rule:
    """An alarm rule compiled for the engine (times in µs)."""

    id: int
    tag_id: int
    tag_path: str
    kind: str
    limit: float | None = None
    discrete_op: str = "eq"
    setpoint_tag_id: int | None = None
    setpoint_path: str | None = None
    deadband: float = 0.0
    timing: Timing = field(default_factory=Timing)
    priority: str = "medium"
    message: str = ""
    area: str = ""
    open_work_order: bool = False
    suppress: Expression | None = None
    suppress_text: str | None = None
    enabled: bool = True
    units: str = ""
    description: str = ""

    @property
    def name(self) -> str:
        return f"{self.tag_path}:{self.kind}"


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and value == value and not math.isinf(value):
        return float(value)
    return None


def limit_condition(kind: str, limit: float, deadband: float, x: float, active: bool) -> bool:
    """hihi/hi trip above the limit and clear at or below limit - deadband; lo/lolo trip
    below it and clear at or above limit + deadband."""
    if kind in HIGH_KINDS:
        return x > limit - deadband if active else x > limit
    return x < limit + deadband if active else x < limit


def magnitude_condition(magnitude: float, limit: float, deadband: float, active: bool) -> bool:
    """Deviation and rate of change: |x| over the limit, cleared at limit - deadband."""
    return magnitude > limit - deadband if active else magnitude > limit


def discrete_condition(op: str, limit: float | None, value: Any) -> bool | None:
    """eq: abnormal while the value equals `limit` (true/false as 1/0); ne: while it
    differs. None when the value cannot be compared."""
    x = _num(value)
    if x is None:
        if isinstance(value, str) and limit is not None:
            return (value == str(limit)) == (op == "eq")
        return None
    target = 1.0 if limit is None else limit
    return (x == target) == (op == "eq")


def condition(
    rule: Rule,
    value: Any,
    quality: str,
    active: bool,
    setpoint: Any = None,
    rate: float | None = None,
) -> bool:
    """The raw condition for one value; `active` is the alarm's current raw condition,
    which the hysteresis needs and which a BAD or unusable value leaves as it is."""
    kind = rule.kind
    if kind == "bad_quality":
        return quality == BAD
    if quality == BAD:
        return active
    if kind == "discrete":
        c = discrete_condition(rule.discrete_op, rule.limit, value)
        return active if c is None else c
    limit = rule.limit
    if limit is None:
        return active
    if kind == "rate_of_change":
        return active if rate is None else magnitude_condition(abs(rate), limit, rule.deadband, active)
    x = _num(value)
    if x is None:
        return active
    if kind == "deviation":
        sp = _num(setpoint)
        if sp is None:
            return active
        return magnitude_condition(abs(x - sp), limit, rule.deadband, active)
    return limit_condition(kind, limit, rule.deadband, x, active)


def render_message(rule: Rule, value: Any) -> str:
    """The rule's message template filled in; a default one when it has none, and the
    template as written (not an error) when it names an unknown field."""
    template = rule.message or _DEFAULT.get(rule.kind, "{tag} {kind}")
    fields = {
        "tag": rule.tag_path,
        "kind": rule.kind,
        "value": _fmt(value),
        "units": rule.units,
        "limit": _fmt(rule.limit),
        "priority": rule.priority,
        "area": rule.area,
        "description": rule.description or rule.tag_path,
        "setpoint": rule.setpoint_path or "",
    }
    try:
        return template.format_map(fields)
    except (KeyError, ValueError, IndexError, AttributeError):
        return template


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


_DEFAULT = {
    "hihi": "{description} very high: {value} {units} > {limit} {units}",
    "hi": "{description} high: {value} {units} > {limit} {units}",
    "lo": "{description} low: {value} {units} < {limit} {units}",
    "lolo": "{description} very low: {value} {units} < {limit} {units}",
    "discrete": "{description} is {value}",
    "rate_of_change": "{description} changing faster than {limit} {units}/s",
    "deviation": "{description} {value} {units} more than {limit} {units} from {setpoint}",
    "bad_quality": "{description} bad quality / communication lost",
}
