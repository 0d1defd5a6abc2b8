"""Which driver talks which protocol; drivers are imported only when a device needs one."""

from __future__ import annotations

from drivers.base import DeviceConfig, Driver, PointConfig

PROTOCOLS = ("modbus_tcp", "modbus_rtu", "opcua")


def create_driver(config: DeviceConfig) -> Driver:
    """A new, unconnected driver for ``config.protocol``."""
    if config.protocol in ("modbus_tcp", "modbus_rtu"):
        from drivers.modbus import ModbusDriver

        return ModbusDriver(config)
    if config.protocol == "opcua":
        from drivers.opcua import OpcUaDriver

        return OpcUaDriver(config)
    raise ValueError(f"unknown protocol {config.protocol!r} (one of {', '.join(PROTOCOLS)})")


def check_point(config: DeviceConfig, point: PointConfig) -> str | None:
    """Why ``point`` could never be read from a device like ``config`` (None when it can).

    Asks the driver itself (its ``configure``), so the API refuses exactly what the
    poller would, with the driver's words.
    """
    errors = create_driver(config).configure({"check": [point]})
    return errors.get(point.key)
