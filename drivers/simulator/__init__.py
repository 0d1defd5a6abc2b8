"""The simulated plant: Modbus TCP servers that behave like real field devices.

Each simulated device is its own Modbus TCP server (one port per device, as
on a real site where every meter or gateway has its own IP) whose registers
follow the map of a real product family (``profiles``), filled from
deterministic signal models (``model``) once per update interval. Faults
(``faults``) are switched on per device to exercise the acquisition side:
exception replies, silence, dropped connections and corrupt frames.

Used by the demo (``python -m drivers.simulator``), the tests and the
benchmarks. Only ``server`` imports pymodbus; the rest is plain data and
arithmetic that tests can recompute.
"""

from drivers.simulator.faults import Fault, FaultKind
from drivers.simulator.model import create_model, filler_values
from drivers.simulator.profiles import PROFILES, Function, PointSpec, Profile, decode_point, encode_point
from drivers.simulator.server import SimulatedDevice, Simulator

__all__ = [
    "PROFILES",
    "Fault",
    "FaultKind",
    "Function",
    "PointSpec",
    "Profile",
    "SimulatedDevice",
    "Simulator",
    "create_model",
    "decode_point",
    "encode_point",
    "filler_values",
]
