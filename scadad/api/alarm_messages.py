"""Params and results of AlarmRules.* and Alarms.*.

An AlarmRuleSpec is the whole definition of one alarm: what `AlarmRules.Create` takes,
what `Export` returns and `Import` takes back, and what `scadactl alarm rule` reads
from and writes to CSV and TOML files. An alarm is named by its tag and kind
(`sim/pm5xxx/voltage_l1:hi`), and numbered by its rule id; both are accepted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from scadad.api.messages import Params, Result
from scadad.api.tag_messages import TagPath, TagPattern

Kind = Literal["hihi", "hi", "lo", "lolo", "discrete", "rate_of_change", "deviation", "bad_quality"]
Priority = Literal["critical", "high", "medium", "low"]
State = Literal["normal", "unack_active", "ack_active", "rtn_unack", "latched"]
DiscreteOp = Literal["eq", "ne"]
# A return to normal is journalled as "cleared", a return to service as "in_service".
EventKind = Literal[
    "activated", "acknowledged", "cleared", "shelved", "unshelved", "suppressed", "unsuppressed",
    "out_of_service", "in_service", "comment", "notified", "notify_failed",
]  # fmt: skip
Area = Annotated[str, msgspec.Meta(pattern=r"^([a-z0-9_-]+(/[a-z0-9_-]+){0,9})?$", max_length=200)]
DelayMs = Annotated[int, msgspec.Meta(ge=0, le=86_400_000)]
Comment = Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
# An alarm named by rule id or by "<tag path>:<kind>".
AlarmRef = int | Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_/-]+:[a-z_]+$", max_length=300)]

PRIORITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
KINDS: tuple[str, ...] = ("hihi", "hi", "lo", "lolo", "discrete", "rate_of_change", "deviation", "bad_quality")

# ---------------------------------------------------------------- AlarmRules


class AlarmRuleSpec(Params):
    """One alarm on one tag.

    `limit` is the trip point for hihi/hi/lo/lolo, the allowed difference from
    `setpoint_tag` for deviation, units per second for rate_of_change, and the value
    compared (with `discrete_op`) for discrete; bad_quality needs none. `deadband`
    is the hysteresis a value must move back past before the alarm clears. `message`
    may name {tag} {kind} {value} {units} {limit} {priority} {area} {description}.
    `suppress_when` is an expression (the computed-tag language) that suppresses the
    alarm by design while true, e.g. `{sim/pump/running} == 0`. `area` defaults to the
    tag path's first segment."""

    tag: TagPath
    kind: Kind
    limit: float | None = None
    discrete_op: DiscreteOp = "eq"
    setpoint_tag: TagPath | None = None
    deadband: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    on_delay_ms: DelayMs = 0
    off_delay_ms: DelayMs = 0
    priority: Priority = "medium"
    latching: bool = False
    message: Annotated[str, msgspec.Meta(max_length=500)] = ""
    area: Area = ""
    open_work_order: bool = False
    suppress_when: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    enabled: bool = True


class AlarmRule(Result):
    id: int
    tag: str
    kind: str
    limit: float | None
    discrete_op: str
    setpoint_tag: str | None
    deadband: float
    on_delay_ms: int
    off_delay_ms: int
    priority: str
    latching: bool
    message: str
    area: str
    open_work_order: bool
    suppress_when: str | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class AlarmRuleRef(Params):
    alarm: AlarmRef


class AlarmRuleUpdate(Params):
    """Change the named fields of one rule; the alarm's state is kept unless the
    change makes it meaningless (a disabled rule returns to normal)."""

    alarm: AlarmRef
    limit: float | None | UnsetType = UNSET
    discrete_op: DiscreteOp | UnsetType = UNSET
    setpoint_tag: TagPath | None | UnsetType = UNSET
    deadband: Annotated[float, msgspec.Meta(ge=0)] | UnsetType = UNSET
    on_delay_ms: DelayMs | UnsetType = UNSET
    off_delay_ms: DelayMs | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    latching: bool | UnsetType = UNSET
    message: Annotated[str, msgspec.Meta(max_length=500)] | UnsetType = UNSET
    area: Area | UnsetType = UNSET
    open_work_order: bool | UnsetType = UNSET
    suppress_when: Annotated[str, msgspec.Meta(max_length=1000)] | None | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class AlarmRuleListParams(Params):
    pattern: TagPattern = "**"
    area: Area | None = None


class AlarmRuleList(Result):
    rules: list[AlarmRule]


class AlarmRuleImport(Params):
    """All or nothing: one bad rule refuses the whole file, naming the rule and field."""

    rules: Annotated[list[AlarmRuleSpec], msgspec.Meta(max_length=100_000)]
    update: bool = False
    dry_run: bool = False


class AlarmRuleExport(Result):
    rules: list[AlarmRuleSpec]


class AlarmOutOfService(Params):
    """Take an alarm out of service (engineering, with a reason), or back in."""

    alarm: AlarmRef
    out_of_service: bool = True
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""


# ---------------------------------------------------------------- Alarms


class Alarm(Result):
    """One alarm's current state. `annunciated` means it is shown and notified: not
    normal, and not shelved, suppressed or out of service."""

    id: int
    name: str  # <tag>:<kind>
    tag: str
    kind: str
    priority: str
    area: str
    state: str
    active: bool
    annunciated: bool
    message: str
    value: float | str | None
    limit: float | None
    units: str
    active_since: datetime | None
    last_change: datetime | None
    acked_by: str | None = None
    acked_at: datetime | None = None
    shelved_until: datetime | None = None
    shelved_by: str | None = None
    shelve_reason: str | None = None
    suppressed: bool = False
    out_of_service: bool = False
    oos_reason: str | None = None
    open_work_order: bool = False


class AlarmCounts(Result):
    """What the console header shows: annunciated alarms, and unacknowledged ones by priority."""

    active: int = 0
    unacked: int = 0
    unacked_by_priority: dict[str, int] = {}
    shelved: int = 0
    suppressed: int = 0
    out_of_service: int = 0


class AlarmListParams(Params):
    """Current alarms, most urgent first (priority, then newest). By default only the
    annunciated ones; `all` adds shelved, suppressed and out-of-service ones, and
    `include_normal` every rule in normal state too."""

    pattern: TagPattern = "**"
    area: Area | None = None
    priority: list[Priority] | None = None
    all: bool = False
    include_normal: bool = False


class AlarmList(Result):
    alarms: list[Alarm]
    counts: AlarmCounts


class AlarmAck(Params):
    """Acknowledge the named alarms (ack of a latched alarm resets it), or with `all`
    every unacknowledged annunciated alarm matching the filters."""

    alarms: Annotated[list[AlarmRef], msgspec.Meta(max_length=100_000)] = []
    all: bool = False
    pattern: TagPattern = "**"
    area: Area | None = None
    comment: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class AlarmAckResult(Result):
    acknowledged: list[str]
    skipped: list[str]  # named alarms that were not unacknowledged


class AlarmShelve(Params):
    """Shelve alarms for `duration_s` (ISA-18.2: always time-limited and with a reason);
    they keep evaluating and journalling but are not annunciated, and unshelve themselves."""

    alarms: Annotated[list[AlarmRef], msgspec.Meta(min_length=1, max_length=10_000)]
    duration_s: Annotated[int, msgspec.Meta(ge=1)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class AlarmUnshelve(Params):
    alarms: Annotated[list[AlarmRef], msgspec.Meta(min_length=1, max_length=10_000)]


class AlarmChanged(Result):
    alarms: list[Alarm]


class AlarmComment(Params):
    alarm: AlarmRef
    comment: Comment


class AlarmHistoryParams(Params):
    """Journal rows in [start, end), oldest first, at most `limit` (the newest `limit`
    when `newest` is set)."""

    start: datetime | None = None  # default: end - 24 h
    end: datetime | None = None  # default: now
    alarm: AlarmRef | None = None
    pattern: TagPattern = "**"
    area: Area | None = None
    priority: list[Priority] | None = None
    events: list[EventKind] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 10_000
    newest: bool = False


class AlarmEvent(Result):
    """One journal row. `state` is the alarm's state after the event."""

    time: datetime
    alarm_id: int | None
    tag: str
    kind: str | None
    event: str
    state: str | None
    priority: str | None
    area: str | None
    value: float | None
    message: str
    user: str | None
    comment: str | None
    id: int | None = None  # the journal row id; None on a live event not yet stored


class AlarmHistory(Result):
    events: list[AlarmEvent]
    truncated: bool


class AlarmWatch(Params):
    """A stream of alarm changes: each event carries the alarms whose state changed, the
    journal rows behind them, the ids of alarms whose rule was deleted, and the new
    counts (always for the whole site, whatever the filter). `initial` first sends every
    alarm not in normal state."""

    pattern: TagPattern = "**"
    area: Area | None = None
    initial: bool = True


class AlarmWatchEvent(Result):
    alarms: list[Alarm]
    events: list[AlarmEvent]
    counts: AlarmCounts
    initial: bool = False
    removed: list[int] = []  # alarm ids whose rule was deleted


class AlarmKpiParams(Params):
    """ISA-18.2 / EEMUA 191 figures over [start, end) from the journal."""

    start: datetime | None = None  # default: end - 24 h
    end: datetime | None = None  # default: now
    area: Area | None = None
    operators: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    top: Annotated[int, msgspec.Meta(ge=1, le=100)] = 10


class AlarmCount(Result):
    name: str  # <tag>:<kind>
    tag: str
    kind: str | None
    priority: str | None
    count: int


class StandingAlarm(Result):
    name: str
    tag: str
    kind: str | None
    priority: str | None
    active_since: datetime
    hours: float


class AlarmKpis(Result):
    start: datetime
    end: datetime
    operators: int
    activations: int
    per_operator_per_10min_avg: float
    per_operator_per_10min_max: float
    per_operator_per_day: float
    flood_pct: float  # share of 10-min windows with more than 10 activations per operator
    flood_windows: int
    windows: int
    bad_actors: list[AlarmCount]
    chattering: list[AlarmCount]  # >= 3 activations within 60 s, with the most in any minute
    standing: list[StandingAlarm]  # active longer than 24 h at `end`
    priority_distribution: dict[str, float]  # share of activations per priority, percent
    priority_counts: dict[str, int]
