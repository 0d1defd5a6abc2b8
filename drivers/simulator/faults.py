"""Faults a simulated device can be told to show (pure, stdlib only).

One fault at a time per device; setting another replaces it, ``clear``
removes it. What each does on the wire (the server applies them):

* ``exception`` - reads (FC 1-4) touching the configured address range get a
  Modbus exception reply with the configured code (default 02, illegal data
  address); reads elsewhere and writes are served normally. This is what a
  meter does when a template asks for a register its firmware lacks. On the
  coil and discrete-input tables pymodbus reports a read as the 16-bit words
  it touches, so the match there is by word (a read of coil 0 also matches a
  range starting at coil 5).
* ``timeout`` - requests are received and processed but no reply is sent;
  the TCP connection stays open, like a hung device behind a gateway.
* ``disconnect`` - open connections are closed and new ones refused (the
  port stops listening) until the fault is cleared; then the device listens
  on the same port again with its registers intact.
* ``garbage`` - replies keep a valid MBAP header (transaction id, length,
  unit) but carry random bytes as the PDU: a frame that arrives on time and
  cannot be decoded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["EXCEPTION_CODES", "Fault", "FaultKind", "garble"]

EXCEPTION_CODES = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 10, 11})
"""Exception codes of the Modbus Application Protocol v1.1b3 (section 7)."""

_READ_FUNCTIONS = frozenset({1, 2, 3, 4})
_MBAP_LEN = 7


class FaultKind(StrEnum):
    EXCEPTION = "exception"
    TIMEOUT = "timeout"
    DISCONNECT = "disconnect"
    GARBAGE = "garbage"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault to set on one device. Build with the class methods or ``Fault.parse``."""

    kind: FaultKind
    start: int = 0
    count: int = 0x10000
    code: int = 2
    functions: frozenset[int] = _READ_FUNCTIONS

    def __post_init__(self) -> None:
        if not isinstance(self.kind, FaultKind):
            object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.kind is FaultKind.EXCEPTION:
            if self.code not in EXCEPTION_CODES:
                raise ValueError(f"exception code {self.code} is not a Modbus exception code")
            if not 0 <= self.start <= 0xFFFF or self.count < 1:
                raise ValueError(f"exception range start {self.start} count {self.count} is empty or out of 0..65535")
            if not self.functions or not set(self.functions) <= _READ_FUNCTIONS:
                raise ValueError(f"exception functions must be among 1-4, got {sorted(self.functions)}")

    @classmethod
    def exception(
        cls, start: int = 0, count: int = 0x10000, code: int = 2, functions: tuple[int, ...] = (1, 2, 3, 4)
    ) -> Fault:
        """Reads of [start, start+count) on ``functions`` answer exception ``code``."""
        return cls(FaultKind.EXCEPTION, start, count, code, frozenset(functions))

    @classmethod
    def timeout(cls) -> Fault:
        return cls(FaultKind.TIMEOUT)

    @classmethod
    def disconnect(cls) -> Fault:
        return cls(FaultKind.DISCONNECT)

    @classmethod
    def garbage(cls) -> Fault:
        return cls(FaultKind.GARBAGE)

    @classmethod
    def clear(cls) -> Fault:
        return cls(FaultKind.CLEAR)

    @classmethod
    def parse(cls, text: str) -> Fault:
        """Read a fault from text: ``timeout``, ``disconnect``, ``garbage``, ``clear`` or
        ``exception[:START[-END]][:CODE]`` (END inclusive, e.g. ``exception:3000-3010:4``)."""
        head, _, rest = text.strip().partition(":")
        try:
            kind = FaultKind(head.lower())
        except ValueError:
            raise ValueError(f"unknown fault {head!r} (one of {', '.join(k.value for k in FaultKind)})") from None
        if kind is not FaultKind.EXCEPTION:
            if rest:
                raise ValueError(f"fault {kind} takes no arguments, got {rest!r}")
            return cls(kind)
        start, count, code = 0, 0x10000, 2
        parts = rest.split(":") if rest else []
        if len(parts) > 2:
            raise ValueError(f"exception fault is exception[:START[-END]][:CODE], got {text!r}")
        try:
            if parts and parts[0]:
                lo, _, hi = parts[0].partition("-")
                start = int(lo, 0)
                count = (int(hi, 0) if hi else start) - start + 1
            if len(parts) == 2:
                code = int(parts[1], 0)
        except ValueError:
            raise ValueError(f"exception fault is exception[:START[-END]][:CODE], got {text!r}") from None
        return cls(kind, start, count, code)

    def read_exception(self, function: int, address: int, count: int) -> int | None:
        """The exception code to answer a read of ``count`` units at ``address``, or None to serve it."""
        if self.kind is not FaultKind.EXCEPTION or function not in self.functions:
            return None
        if address < self.start + self.count and self.start < address + count:
            return self.code
        return None

    def __str__(self) -> str:
        if self.kind is FaultKind.EXCEPTION:
            return f"exception:{self.start}-{self.start + self.count - 1}:{self.code}"
        return self.kind.value


def garble(packet: bytes, rng: random.Random) -> bytes:
    """The reply ``packet`` with its MBAP header kept and its PDU replaced by random bytes."""
    if len(packet) <= _MBAP_LEN:
        return packet
    body = bytes(rng.getrandbits(8) for _ in range(len(packet) - _MBAP_LEN))
    return packet[:_MBAP_LEN] + body
