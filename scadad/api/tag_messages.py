"""Params and results of Devices.*, Tags.*, ScanGroups.*, History.* and Sim.*.

A DeviceSpec / TagSpec is the whole definition of one device / tag: what `Create`
takes, what `Export` returns and `Import` takes back, and what `scadactl` writes to
and reads from CSV and TOML files. Updates name the fields to change (UNSET = keep).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, UnsetType

from scadad.api.messages import LongText, Params, Result, Segment, ShortText

TagPath = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]+(/[a-z0-9_-]+){0,9}$", min_length=1, max_length=255)]
# Patterns: '*' one segment, '**' any depth (ARCHITECTURE.md); '*' inside a segment is a
# wildcard within it (`voltage_*`).
TagPattern = Annotated[str, msgspec.Meta(pattern=r"^([a-z0-9_*-]+)(/[a-z0-9_*-]+){0,15}$", max_length=255)]
Protocol = Literal["modbus_tcp", "modbus_rtu", "opcua"]
DataType = Literal["bool", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64", "string"]
Order = Literal["big", "little"]
Source = Literal["device", "computed", "memory"]
Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]
UnitId = Annotated[int, msgspec.Meta(ge=0, le=255)]
TimeoutMs = Annotated[int, msgspec.Meta(ge=10, le=60_000)]
Retries = Annotated[int, msgspec.Meta(ge=0, le=10)]
IntervalMs = Annotated[int, msgspec.Meta(ge=50, le=86_400_000)]
Value = bool | int | float | str

# ---------------------------------------------------------------- Devices


class DeviceSpec(Params):
    """One field device. Modbus TCP needs host (and port, default 502); RTU needs
    serial_port; OPC UA needs endpoint_url."""

    name: Segment
    protocol: Protocol
    description: LongText = ""
    host: ShortText | None = None
    port: Port | None = None
    unit_id: UnitId = 1
    serial_port: ShortText | None = None
    baudrate: Annotated[int, msgspec.Meta(ge=300, le=4_000_000)] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    endpoint_url: ShortText | None = None
    address_base: Literal[0, 1] = 0
    byte_order: Order = "big"
    word_order: Order = "big"
    timeout_ms: TimeoutMs = 1000
    retries: Retries = 0
    max_gap: Annotated[int, msgspec.Meta(ge=0, le=2000)] = 16
    max_registers: Annotated[int, msgspec.Meta(ge=1, le=125)] = 125
    opcua_mode: Literal["subscribe", "poll"] = "subscribe"
    enabled: bool = True


class Device(Result):
    name: str
    protocol: str
    description: str
    host: str | None
    port: int | None
    unit_id: int
    serial_port: str | None
    baudrate: int
    parity: str
    stopbits: int
    endpoint_url: str | None
    address_base: int
    byte_order: str
    word_order: str
    timeout_ms: int
    retries: int
    max_gap: int
    max_registers: int
    opcua_mode: str
    enabled: bool
    tag_count: int
    state: str
    created_at: datetime
    updated_at: datetime


class DeviceList(Result):
    devices: list[Device]


class DeviceRef(Params):
    name: Segment


class DeviceDelete(Params):
    name: Segment
    # Without it a device that still has tags is refused: its tags would go BAD.
    force: bool = False


class DeviceUpdate(Params):
    name: Segment
    description: LongText | UnsetType = UNSET
    host: ShortText | None | UnsetType = UNSET
    port: Port | None | UnsetType = UNSET
    unit_id: UnitId | UnsetType = UNSET
    serial_port: ShortText | None | UnsetType = UNSET
    baudrate: Annotated[int, msgspec.Meta(ge=300, le=4_000_000)] | UnsetType = UNSET
    parity: Literal["N", "E", "O"] | UnsetType = UNSET
    stopbits: Literal[1, 2] | UnsetType = UNSET
    endpoint_url: ShortText | None | UnsetType = UNSET
    address_base: Literal[0, 1] | UnsetType = UNSET
    byte_order: Order | UnsetType = UNSET
    word_order: Order | UnsetType = UNSET
    timeout_ms: TimeoutMs | UnsetType = UNSET
    retries: Retries | UnsetType = UNSET
    max_gap: Annotated[int, msgspec.Meta(ge=0, le=2000)] | UnsetType = UNSET
    max_registers: Annotated[int, msgspec.Meta(ge=1, le=125)] | UnsetType = UNSET
    opcua_mode: Literal["subscribe", "poll"] | UnsetType = UNSET
    enabled: bool | UnsetType = UNSET


class DeviceImport(Params):
    devices: list[DeviceSpec]
    # False: a device that already exists is an error; True: it is updated to match.
    update: bool = False
    dry_run: bool = False


class ImportResult(Result):
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    dry_run: bool


class DeviceExport(Result):
    devices: list[DeviceSpec]


class DeviceStatusParams(Params):
    name: Segment | None = None


class DeviceHealth(Result):
    name: str
    protocol: str
    enabled: bool
    state: str  # disabled | connecting | online | degraded | offline
    since: datetime | None
    last_good: datetime | None
    last_error: str
    last_error_at: datetime | None
    errors: dict[str, int]
    requests: int
    reconnects: int
    p50_ms: float | None
    p99_ms: float | None
    tags: int
    tags_good: int
    tags_bad: int
    scan_overruns: int
    jitter_p99_ms: float | None
    mode: str = ""  # OPC UA: subscribe | poll


class DeviceStatusResult(Result):
    devices: list[DeviceHealth]


# ---------------------------------------------------------------- Scan groups


class ScanGroup(Result):
    name: str
    interval_ms: int
    description: str
    tag_count: int


class ScanGroupList(Result):
    scan_groups: list[ScanGroup]


class ScanGroupSet(Params):
    """Create a scan group or change its rate (applied live to every poller)."""

    name: Segment
    interval_ms: IntervalMs
    description: LongText = ""


class ScanGroupRef(Params):
    name: Segment


# ---------------------------------------------------------------- Tags


class TagSpec(Params):
    """One tag. `address` is protocol text: Modbus register/coil number in the
    device's address base (`N`, or `N.B` for bit B of a register), OPC UA a node id.
    `function` is the Modbus table: 1 coils, 2 discrete inputs, 3 holding, 4 input
    registers (default: 3, or 1 for a bool without a bit). Scaling maps raw_low..raw_high
    to eng_low..eng_high (all four or none). `deadband` filters history and events
    (`percent` is of the engineering span, or of the value without scaling)."""

    path: TagPath
    data_type: DataType = "float32"
    source: Source = "device"
    device: Segment | None = None
    address: ShortText | None = None
    function: Literal[1, 2, 3, 4] | None = None
    string_length: Annotated[int, msgspec.Meta(ge=0, le=246)] = 0
    byte_order: Order | None = None
    word_order: Order | None = None
    scan_group: Segment = "default"
    expression: Annotated[str, msgspec.Meta(max_length=1000)] | None = None
    units: Annotated[str, msgspec.Meta(max_length=32)] = ""
    description: LongText = ""
    raw_low: float | None = None
    raw_high: float | None = None
    eng_low: float | None = None
    eng_high: float | None = None
    deadband: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    deadband_mode: Literal["absolute", "percent"] = "absolute"
    writable: bool = False
    initial_value: ShortText | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36_500)] | None = None
    # Raw values the device sends for "not available" (e.g. 0x8000 = -32768 on an int16):
    # the tag goes BAD (sensor_failure) instead of showing them as a reading.
    sentinels: Annotated[list[float], msgspec.Meta(max_length=8)] = []
    # A device encoding decoded after scaling: pf_4q is the four-quadrant power factor
    # of Schneider PM5000-family meters (-2..2 folded back to a signed PF in -1..1).
    transform: Literal["pf_4q"] | None = None


class TagValue(Result):
    path: str
    value: Value | None
    quality: str  # GOOD | UNCERTAIN | BAD
    reason: str | None = None  # comm_failure, device_exception, config_error, out_of_range ...
    detail: str = ""
    source_time: datetime | None = None
    server_time: datetime | None = None
    units: str = ""


class Tag(Result):
    """A tag's definition and its live value."""

    id: int
    spec: TagSpec
    value: TagValue
    created_at: datetime
    updated_at: datetime


class TagListParams(Params):
    pattern: TagPattern = "**"
    device: Segment | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100_000


class TagList(Result):
    tags: list[Tag]
    total: int


class TagRef(Params):
    path: TagPath


class TagUpdate(Params):
    path: TagPath
    data_type: DataType | UnsetType = UNSET
    source: Source | UnsetType = UNSET
    device: Segment | None | UnsetType = UNSET
    address: ShortText | None | UnsetType = UNSET
    function: Literal[1, 2, 3, 4] | None | UnsetType = UNSET
    string_length: Annotated[int, msgspec.Meta(ge=0, le=246)] | UnsetType = UNSET
    byte_order: Order | None | UnsetType = UNSET
    word_order: Order | None | UnsetType = UNSET
    scan_group: Segment | UnsetType = UNSET
    expression: Annotated[str, msgspec.Meta(max_length=1000)] | None | UnsetType = UNSET
    units: Annotated[str, msgspec.Meta(max_length=32)] | UnsetType = UNSET
    description: LongText | UnsetType = UNSET
    raw_low: float | None | UnsetType = UNSET
    raw_high: float | None | UnsetType = UNSET
    eng_low: float | None | UnsetType = UNSET
    eng_high: float | None | UnsetType = UNSET
    deadband: Annotated[float, msgspec.Meta(ge=0)] | UnsetType = UNSET
    deadband_mode: Literal["absolute", "percent"] | UnsetType = UNSET
    writable: bool | UnsetType = UNSET
    initial_value: ShortText | None | UnsetType = UNSET
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36_500)] | None | UnsetType = UNSET
    sentinels: Annotated[list[float], msgspec.Meta(max_length=8)] | UnsetType = UNSET
    transform: Literal["pf_4q"] | None | UnsetType = UNSET


class TagImport(Params):
    tags: list[TagSpec]
    update: bool = False
    dry_run: bool = False


class TagExportParams(Params):
    pattern: TagPattern = "**"
    device: Segment | None = None


class TagExport(Result):
    tags: list[TagSpec]


class TagReadParams(Params):
    paths: Annotated[list[TagPattern], msgspec.Meta(min_length=1, max_length=10_000)]


class TagReadResult(Result):
    values: list[TagValue]


class TagWrite(Params):
    path: TagPath
    value: Value
    # Read the value back from the device after writing (where the protocol can).
    confirm: bool = True


class TagWriteResult(Result):
    path: str
    written: Value  # the engineering value asked for
    raw: Value | None  # what went to the device (after reverse scaling)
    confirmed: bool  # the read-back matched
    read_back: TagValue | None


class TagWatch(Params):
    """Server-side filtering: only tags matching `patterns`, only changes beyond
    `deadband` (absolute, in engineering units; 0 = every change), only quality
    changes with `quality_only`, at most one batch per `min_interval_ms`."""

    patterns: Annotated[list[TagPattern], msgspec.Meta(min_length=1, max_length=1000)] = msgspec.field(
        default_factory=lambda: ["**"]
    )
    deadband: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    quality_only: bool = False
    min_interval_ms: Annotated[int, msgspec.Meta(ge=0, le=3_600_000)] = 0
    initial: bool = True  # first event: the current value of every matching tag


class TagEvent(Result):
    values: list[TagValue]
    initial: bool = False


# ---------------------------------------------------------------- History


class HistoryQuery(Params):
    """Raw samples of one tag in [start, end), or time-weighted aggregates per
    `every_s` bucket (aligned on the UTC epoch), or just the latest sample."""

    path: TagPath
    start: datetime | None = None  # default: end - 1 h
    end: datetime | None = None  # default: now
    every_s: Annotated[int, msgspec.Meta(ge=1, le=366 * 86400)] | None = None
    latest: bool = False
    limit: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 100_000


class HistorySample(Result):
    time: datetime
    value: float | None
    quality: str


class HistoryBucket(Result):
    time: datetime
    min: float | None
    max: float | None
    avg: float | None
    last: float | None
    count: int
    bad_count: int


class HistoryResult(Result):
    path: str
    units: str
    start: datetime
    end: datetime
    every_s: int | None
    samples: list[HistorySample] = []
    buckets: list[HistoryBucket] = []
    truncated: bool = False


# ---------------------------------------------------------------- Simulator


class SimStart(Params):
    """Start the built-in simulated plant and add its devices and tags (`sim/...`)."""

    devices: Annotated[int, msgspec.Meta(ge=1, le=2000)] | None = None  # default: one of each type
    types: list[Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]+$")]] = []
    tags_per_device: Annotated[int, msgspec.Meta(ge=0, le=2000)] = 0
    base_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    site: Segment = "sim"
    scan_ms: IntervalMs = 1000
    # Seed of the models (same seed, same plant); default: the daemon's [simulator] seed.
    seed: Annotated[int, msgspec.Meta(ge=0)] | None = None
    alarms: bool = True  # add the demo alarm rules (tank level, voltage, fuel, comm loss ...)
    meters: bool = True  # add the demo meter hierarchy (grid, DG, solar, main bus, feeders, loads)


class SimDevice(Result):
    name: str
    kind: str
    port: int
    tags: int
    fault: str


class SimStatus(Result):
    running: bool
    devices: list[SimDevice]


class SimFault(Params):
    """Inject a fault into one simulated device: timeout, exception[:CODE],
    disconnect, garbage, or clear."""

    device: Segment
    fault: ShortText
