"""Typed parameters and results of the API methods.

Shared by the daemon (which validates params against these types) and by clients
(which may decode results into them). Times on the wire are ISO-8601 with offset;
msgspec writes aware datetimes as RFC 3339 with `Z`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, UnsetType

# A tag-path segment: sites, areas, equipment and points all share it.
Segment = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
LongText = Annotated[str, msgspec.Meta(max_length=4000)]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180)]


class Params(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every params type: unknown fields are refused, naming the field."""


class Result(msgspec.Struct, kw_only=True):
    """Base of every result type."""


# ---------------------------------------------------------------- System


class Empty(Params):
    pass


class PingResult(Result):
    server_time: datetime
    version: str
    protocol: int
    pong: bool = True


class MethodInfo(Result):
    name: str
    kind: str  # "unary" or "stream"
    permission: str
    mutates: bool
    summary: str
    params: dict[str, Any]
    result: dict[str, Any]


class DescribeResult(Result):
    protocol: int
    version: str
    methods: list[MethodInfo]


class SubsystemStatus(Result):
    name: str
    state: str  # ok | degraded | down
    detail: str = ""
    info: dict[str, Any] = {}


class StatusResult(Result):
    version: str
    protocol: int
    pid: int
    site: str
    timezone: str
    started_at: datetime
    uptime_s: float
    config_path: str
    subsystems: list[SubsystemStatus]
    versions: dict[str, str]


class HeartbeatParams(Params):
    interval_s: Annotated[float, msgspec.Meta(ge=0.01, le=3600)] = 1.0
    count: Annotated[int, msgspec.Meta(ge=0)] = 0  # 0 = until cancelled


class Heartbeat(Result):
    seq: int
    server_time: datetime


class CancelParams(Params):
    stream: int | str


class CancelResult(Result):
    cancelled: bool


# ---------------------------------------------------------------- Db


class Migration(Result):
    version: int
    name: str
    applied_at: datetime | None
    modified: bool = False  # the file changed after it was applied


class DbStatusResult(Result):
    dialect: str
    url: str
    server_version: str
    current_version: int
    latest_version: int
    migrations: list[Migration]


class MigrateResult(Result):
    applied: list[Migration]
    current_version: int


# ---------------------------------------------------------------- Sites


class Site(Result):
    name: str
    display_name: str
    description: str
    timezone: str
    latitude: float | None
    longitude: float | None
    equipment_count: int
    created_at: datetime
    updated_at: datetime


class SiteList(Result):
    sites: list[Site]


class SiteRef(Params):
    name: Segment


class SiteCreate(Params):
    name: Segment
    display_name: ShortText = ""
    description: LongText = ""
    timezone: ShortText = "UTC"
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class SiteUpdate(Params):
    name: Segment
    display_name: ShortText | UnsetType = UNSET
    description: LongText | UnsetType = UNSET
    timezone: ShortText | UnsetType = UNSET
    latitude: Latitude | None | UnsetType = UNSET
    longitude: Longitude | None | UnsetType = UNSET


class Deleted(Result):
    deleted: bool = True


# ---------------------------------------------------------------- Equipment

EQUIPMENT_KINDS = (
    "meter", "generator", "inverter", "pump", "tank", "plc", "breaker",
    "transformer", "feeder", "motor", "sensor", "other",
)  # fmt: skip
EquipmentKind = Annotated[str, msgspec.Meta(pattern="^(" + "|".join(EQUIPMENT_KINDS) + ")$")]


class Equipment(Result):
    site: str
    name: str
    kind: str
    parent: str | None
    description: str
    manufacturer: str
    model: str
    serial_number: str
    location: str
    created_at: datetime
    updated_at: datetime


class EquipmentList(Result):
    equipment: list[Equipment]


class EquipmentListParams(Params):
    site: Segment | None = None
    kind: EquipmentKind | None = None


class EquipmentRef(Params):
    site: Segment
    name: Segment


class EquipmentCreate(Params):
    site: Segment
    name: Segment
    kind: EquipmentKind = "other"
    parent: Segment | None = None
    description: LongText = ""
    manufacturer: ShortText = ""
    model: ShortText = ""
    serial_number: ShortText = ""
    location: ShortText = ""


class EquipmentUpdate(Params):
    site: Segment
    name: Segment
    kind: EquipmentKind | UnsetType = UNSET
    parent: Segment | None | UnsetType = UNSET
    description: LongText | UnsetType = UNSET
    manufacturer: ShortText | UnsetType = UNSET
    model: ShortText | UnsetType = UNSET
    serial_number: ShortText | UnsetType = UNSET
    location: ShortText | UnsetType = UNSET
