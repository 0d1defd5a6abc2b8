"""The one interface every protocol driver implements (stdlib only).

The acquisition layer of ``scadad`` owns scheduling, reconnect policy and the tag
table; a driver only knows how to talk to one device:

    driver = create_driver(device_config)          # drivers.registry
    errors = driver.configure({"default": points, "fast": fast_points})
    await driver.connect()                          # DriverError(COMM_FAILURE) if it can't
    batch = await driver.read("default")            # one scan of one group
    await driver.write(point, 42.0)                 # raw (unscaled) value
    await driver.close()

* ``configure`` is synchronous and may be called again at any time (live edits); it
  returns, per point key, why a point can never be read (bad address, wrong type for
  the table ...). Those points are left out of every read.
* ``read`` returns a ``Batch`` aligned with the group's *configured* points (in the
  order given, config-error points included as None). A failure that affects only
  some points (a Modbus exception for one block) is reported per point in
  ``Batch.errors``; a failure of the transport itself raises ``DriverError`` and
  the caller closes, backs off and reconnects.
* ``health`` is updated by the driver on every request (response time, error kind).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from drivers.health import DeviceHealth

__all__ = [
    "Batch",
    "DeviceConfig",
    "Driver",
    "DriverError",
    "PointConfig",
    "Reason",
    "Value",
]

Value = bool | int | float | str


class Reason(StrEnum):
    """Why a point has no good value; the same words as a tag's quality reason."""

    COMM_FAILURE = "comm_failure"
    DEVICE_EXCEPTION = "device_exception"
    CONFIG_ERROR = "config_error"
    OUT_OF_RANGE = "out_of_range"
    SENSOR_FAILURE = "sensor_failure"


class DriverError(Exception):
    """A request or the connection failed; ``reason`` says how, the message says what."""

    def __init__(self, reason: Reason, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.code = code  # the device's exception code (Modbus) or status code (OPC UA)


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """Everything a driver needs to reach one device (a row of ``devices``)."""

    name: str
    protocol: str  # modbus_tcp | modbus_rtu | opcua
    host: str | None = None
    port: int | None = None
    unit_id: int = 1
    serial_port: str | None = None
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    endpoint_url: str | None = None
    address_base: int = 0  # 1: configured addresses count from 1 (vendor manuals)
    byte_order: str = "big"
    word_order: str = "big"
    timeout_s: float = 1.0
    retries: int = 0
    max_gap: int = 16  # registers/bits the read planner may read over
    max_registers: int = 125
    max_bits: int = 2000
    opcua_mode: str = "subscribe"  # subscribe | poll
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PointConfig:
    """One value to read from (or write to) a device.

    ``address`` is protocol text: for Modbus the register (or coil) number in the
    device's ``address_base``, optionally ``N.B`` for bit B of register N; for OPC
    UA a node id (``ns=2;s=Pump1.Flow``). ``function`` is the Modbus table (1 coils,
    2 discrete inputs, 3 holding, 4 input registers). ``byte_order`` / ``word_order``
    None means the device's.
    """

    key: int
    address: str
    data_type: str
    function: int | None = None
    string_length: int = 0
    byte_order: str | None = None
    word_order: str | None = None


@dataclass(slots=True)
class Batch:
    """One scan of one group: ``values[i]`` belongs to the group's i-th point.

    ``errors`` maps an index to (reason, detail) for points without a value (their
    ``values`` entry is None). ``time_us`` is when the answer arrived (UTC µs);
    ``source_us`` carries per-value device timestamps where the protocol has them
    (OPC UA), else None.
    """

    values: list[Value | None]
    errors: dict[int, tuple[Reason, str]]
    time_us: int
    source_us: list[int | None] | None = None


class Driver(ABC):
    """One connection to one device."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self.health = DeviceHealth()

    @abstractmethod
    def configure(self, groups: Mapping[str, Sequence[PointConfig]]) -> dict[int, str]:
        """Plan the reads of every scan group; return {point key: config error} for unreadable points."""

    @abstractmethod
    async def connect(self) -> None:
        """Open the connection; raises DriverError(COMM_FAILURE) when the device can't be reached."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while the transport is open."""

    @abstractmethod
    async def read(self, group: str) -> Batch:
        """Read every point of ``group`` once; raises DriverError when the transport fails."""

    @abstractmethod
    async def write(self, point: PointConfig, value: Value) -> None:
        """Write one raw value; raises DriverError (DEVICE_EXCEPTION, COMM_FAILURE, CONFIG_ERROR)."""

    @abstractmethod
    async def read_point(self, point: PointConfig) -> Value:
        """Read one point outside the scan (the read-back after a write); raises DriverError."""

    @abstractmethod
    async def close(self) -> None:
        """Close the transport; safe to call twice and when never connected."""
