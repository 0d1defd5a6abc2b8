"""Params and results of MeterTemplates.*, Meters.* and Energy.*.

A meter is a node of the site's energy hierarchy (grid incomer -> main -> feeders ->
loads; generators and solar as sources). Its readings come from tags: created from a
template for a device (`template` + `device`), or existing tags linked by quantity
(`points`), or both. Energy figures are kWh, power kW, times ISO-8601 on the wire.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from scadad.api.messages import LongText, Params, Result, Segment, ShortText
from scadad.api.tag_messages import TagPath

MeterType = Literal["grid", "main", "feeder", "load", "generator", "solar", "virtual"]
IntervalS = Literal[60, 300, 600, 900, 1800, 3600]
Ratio = Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]
TemplateName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]
Quantity = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]+$", max_length=64)]
Period = Literal["day", "week", "month", "year"]
SOURCE_TYPES: tuple[str, ...] = ("grid", "generator", "solar")

# ---------------------------------------------------------------- MeterTemplates


class TemplatePointInfo(Result):
    quantity: str
    address: int
    function: int
    type: str
    unit: str
    scale: float
    ratio: str
    word_order: str
    sentinels: list[float] = []
    transform: str | None = None


class MeterTemplate(Result):
    name: str
    manufacturer: str
    model: str
    description: str
    points: list[TemplatePointInfo]
    source_toml: str
    shipped: bool  # from etc/meter-templates (re-read at start), not imported by a user
    meters: int  # meters using it


class MeterTemplateList(Result):
    templates: list[MeterTemplate]


class MeterTemplateRef(Params):
    name: TemplateName


class MeterTemplateImport(Params):
    """A template as TOML text (see etc/meter-templates/); `update` replaces one of the
    same name. A template that does not parse is refused naming the line and field."""

    toml: Annotated[str, msgspec.Meta(max_length=1_000_000)]
    update: bool = False


# ---------------------------------------------------------------- Meters


class MeterSpec(Params):
    """One meter. With `template` and `device` its tags are created from the template
    under `tag_prefix` (default `<site>/energy/<name>`), CT/PT ratios folded into their
    scaling unless `ratio_applied_in_meter`. `points` links existing tags by quantity
    (`import_kwh`, `power_total`, `pf_total`, ...), overriding template ones."""

    name: Segment
    type: MeterType
    parent: Segment | None = None
    site: Segment | None = None  # default: the daemon's [site] name
    description: LongText = ""
    template: TemplateName | None = None
    device: Segment | None = None
    tag_prefix: TagPath | None = None
    points: dict[Quantity, TagPath] = {}
    ct_primary: Ratio = 1.0
    ct_secondary: Ratio = 1.0
    pt_primary: Ratio = 1.0
    pt_secondary: Ratio = 1.0
    ratio_applied_in_meter: bool = False
    nominal_voltage: Annotated[float, msgspec.Meta(gt=0)] | None = None
    tariff_zone: ShortText | None = None
    interval_s: IntervalS = 900
    enabled: bool = True


class MeterUpdate(Params):
    name: Segment
    type: MeterType | UnsetType = UNSET
    parent: Segment | None | UnsetType = UNSET
    description: LongText | UnsetType = UNSET
    points: dict[Quantity, TagPath] | UnsetType = UNSET
    ct_primary: Ratio | UnsetType = UNSET
    ct_secondary: Ratio | UnsetType = UNSET
    pt_primary: Ratio | UnsetType = UNSET
    pt_secondary: Ratio | UnsetType = UNSET
    ratio_applied_in_meter: bool | UnsetType = UNSET
    nominal_voltage: Annotated[float, msgspec.Meta(gt=0)] | None | UnsetType = UNSET
    tariff_zone: ShortText | None | UnsetType = UNSET
    interval_s: IntervalS | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class Meter(Result):
    id: int
    name: str
    type: str
    parent: str | None
    site: str
    description: str
    template: str | None
    device: str | None
    tag_prefix: str | None
    points: dict[str, str]  # quantity -> tag path (template tags and linked ones)
    ct_primary: float
    ct_secondary: float
    pt_primary: float
    pt_secondary: float
    ratio_applied_in_meter: bool
    nominal_voltage: float | None
    tariff_zone: str | None
    interval_s: int
    enabled: bool
    children: list[str]
    depth: int
    status: str  # online | degraded | offline
    created_at: datetime
    updated_at: datetime


class MeterList(Result):
    meters: list[Meter]  # tree order: parents before children, depth-first


class MeterRef(Params):
    name: Segment


class MeterDelete(Params):
    """Delete a meter (not one with children); `tags` also deletes the tags its template created."""

    name: Segment
    tags: bool = False


class MeterStatusChange(Result):
    time: datetime
    status: str
    reason: str | None


class MeterStatusHistory(Result):
    meter: str
    changes: list[MeterStatusChange]


# ---------------------------------------------------------------- Energy


class MeterNow(Result):
    """One meter's live figures."""

    name: str
    type: str
    parent: str | None
    depth: int
    kw: float | None
    pf: float | None
    today_kwh: float | None
    quality: str  # worst of its power and energy tags
    status: str  # online | degraded | offline


class LossNow(Result):
    parent: str
    parent_kw: float | None
    children_kw: float | None
    loss_kw: float | None
    loss_pct: float | None
    status: str


class EnergySummary(Result):
    """The site now: what the sources deliver, what the loads take, and the losses."""

    time: datetime
    site: str
    source_kw: float
    load_kw: float  # source_kw - loss_kw
    loss_kw: float  # the losses that could be computed (see `losses` for each one's status)
    sources: list[MeterNow]
    meters: list[MeterNow]  # tree order
    losses: list[LossNow]
    today_kwh: float  # delivered by the sources since local midnight


class SummaryParams(Params):
    site: Segment | None = None


class ConsumptionParams(Params):
    """Energy per meter in [start, end): per reading interval, per hour or per local day."""

    meters: list[Segment] | None = None  # default: every meter
    start: datetime | None = None  # default: local midnight today
    end: datetime | None = None  # default: now
    by: Literal["interval", "hour", "day"] = "interval"


class ConsumptionPoint(Result):
    start: datetime
    import_kwh: float
    export_kwh: float
    net_kwh: float
    avg_kw: float | None
    max_kw: float | None
    estimated: bool
    quality: str
    intervals: int


class ConsumptionSeries(Result):
    meter: str
    points: list[ConsumptionPoint]
    total_kwh: float


class ConsumptionResult(Result):
    series: list[ConsumptionSeries]


class LossParams(Params):
    parent: Segment | None = None
    start: datetime | None = None  # default: end - 24 h
    end: datetime | None = None
    status: list[Literal["ok", "warning", "alarm", "suspect_ct", "incomplete"]] | None = None


class LossRow(Result):
    parent: str
    start: datetime
    interval_s: int
    parent_kwh: float | None
    children_kwh: float | None
    loss_kwh: float | None
    loss_pct: float | None
    status: str
    note: str | None


class LossResult(Result):
    rows: list[LossRow]


class GeneratorSpec(Params):
    """A diesel set, named as its generator meter. Fuel in L/h = f0 * rated_kw + f1 * kW."""

    meter: Segment
    rated_kw: Annotated[float, msgspec.Meta(gt=0)]
    rated_kva: Annotated[float, msgspec.Meta(gt=0)] | None = None
    tank_l: Annotated[float, msgspec.Meta(gt=0)] | None = None
    f0: Annotated[float, msgspec.Meta(ge=0)] = 0.08415
    f1: Annotated[float, msgspec.Meta(ge=0)] = 0.246
    co2_kg_per_l: Annotated[float, msgspec.Meta(ge=0)] = 2.68


class FuelEventInfo(Result):
    kind: str  # refuel | theft
    start: datetime
    end: datetime
    litres: float


class GeneratorStatus(Result):
    meter: str
    running: bool | None
    kw: float | None
    load_pct: float | None
    fuel_level_pct: float | None
    fuel_l: float | None
    run_hours: float | None  # the controller's counter
    starts: int | None  # the controller's counter
    run_hours_today: float | None  # from the running state, else from kW above 1 % of rating
    starts_today: int | None  # off -> on changes of the running state today
    kwh_today: float | None
    fuel_used_today_l: float | None  # from the tank level (refuels excluded), as of the last closed interval
    fuel_curve_today_l: float | None  # from the fuel curve and the kW history
    l_per_kwh: float | None
    co2_today_kg: float | None
    events: list[FuelEventInfo]  # refuels and thefts found today, as of the last closed interval
    rated_kw: float
    tank_l: float | None


class GeneratorList(Result):
    generators: list[GeneratorStatus]


class RenewableSpec(Params):
    """A renewable source, named as its meter; the grid emission factor turns its kWh
    into avoided CO2 (default: India CEA, FY2023-24, 0.727 kg/kWh)."""

    meter: Segment
    kind: Literal["solar", "wind", "hydro", "other"] = "solar"
    capacity_kwp: Annotated[float, msgspec.Meta(gt=0)] | None = None
    emission_factor_kg_per_kwh: Annotated[float, msgspec.Meta(ge=0)] | None = None
    factor_source: ShortText | None = None


class RenewablesParams(Params):
    start: datetime | None = None  # default: local midnight today
    end: datetime | None = None


class RenewableStatus(Result):
    meter: str
    kind: str
    capacity_kwp: float | None
    kw: float | None
    kwh: float
    co2_avoided_kg: float
    diesel_avoided_l: float | None
    emission_factor_kg_per_kwh: float
    factor_source: str


class RenewableList(Result):
    start: datetime
    end: datetime
    sources: list[RenewableStatus]


class TargetSpec(Params):
    """A consumption budget for one meter and period (starting on `start`, a local date)."""

    meter: Segment
    period: Period
    start: date
    target_kwh: Annotated[float, msgspec.Meta(ge=0)]


class TargetRef(Params):
    meter: Segment
    period: Period
    start: date


class TargetsParams(Params):
    meter: Segment | None = None
    current: bool = True  # only targets whose period contains today


class TargetStatus(Result):
    meter: str
    period: str
    start: date
    end: date
    target_kwh: float
    consumed_kwh: float
    variance_kwh: float
    variance_pct: float | None
    projected_kwh: float | None
    projected_variance_pct: float | None
    on_track: bool


class TargetList(Result):
    targets: list[TargetStatus]


class EnergyWatch(Params):
    """The site summary every `interval_ms` (first one at once)."""

    site: Segment | None = None
    interval_ms: Annotated[int, msgspec.Meta(ge=250, le=3_600_000)] = 1000
