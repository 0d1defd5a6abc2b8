"""The Modbus read planner: which requests read a device's points (pure, stdlib only).

Every request is a network round trip (and on RS-485 a bus turn-around), so
the planner merges neighbouring points into as few requests as the protocol
allows, reading over small holes of unrequested registers when one bigger
request is cheaper than two. The future driver calls ``plan`` per device and
function, ``slice_values`` to hand each point its registers, and ``split``
when a device rejects a merged request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BIT_FUNCTIONS",
    "FUNCTIONS",
    "MAX_BITS",
    "MAX_REGISTERS",
    "Limits",
    "PlanError",
    "Point",
    "Request",
    "plan",
    "slice_values",
    "split",
]

# Protocol maxima per request (Modbus Application Protocol v1.1b3, 6.1-6.4).
MAX_REGISTERS = 125
MAX_BITS = 2000
ADDRESS_SPACE = 0x10000

# 1 coils, 2 discrete inputs (bits); 3 holding, 4 input registers (16-bit words).
FUNCTIONS = frozenset({1, 2, 3, 4})
BIT_FUNCTIONS = frozenset({1, 2})


class PlanError(ValueError):
    """A point or request the planner cannot read as asked."""


@dataclass(frozen=True, slots=True)
class Point:
    """One thing to read: ``count`` registers (FC 3/4) or bits (FC 1/2) from 0-based ``address``."""

    key: str
    function: int
    address: int
    count: int

    def __post_init__(self) -> None:
        if self.function not in FUNCTIONS:
            raise PlanError(f"point {self.key!r}: function {self.function!r} is not one of 1, 2, 3, 4")
        if not 0 <= self.address < ADDRESS_SPACE:
            raise PlanError(f"point {self.key!r}: address {self.address} out of range 0..65535")
        if self.count < 1:
            raise PlanError(f"point {self.key!r}: count must be >= 1, got {self.count}")
        if self.address + self.count > ADDRESS_SPACE:
            raise PlanError(f"point {self.key!r}: {self.address}+{self.count} runs past address 65535")

    @property
    def end(self) -> int:
        """One past the last register/bit of the point."""
        return self.address + self.count


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-request ceilings; a device may need lower ones than the protocol's.

    ``max_gap`` is the largest run of unrequested registers/bits the planner
    may read over to merge two neighbours (0 = merge only touching or
    overlapping points). Lower it for devices that answer "illegal data
    address" for holes in their map.
    """

    max_registers: int = MAX_REGISTERS
    max_bits: int = MAX_BITS
    max_gap: int = 10

    def __post_init__(self) -> None:
        if not 1 <= self.max_registers <= MAX_REGISTERS:
            raise ValueError(f"max_registers must be 1..{MAX_REGISTERS}, got {self.max_registers}")
        if not 1 <= self.max_bits <= MAX_BITS:
            raise ValueError(f"max_bits must be 1..{MAX_BITS}, got {self.max_bits}")
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {self.max_gap}")

    def limit_for(self, function: int) -> int:
        """Largest count one request of ``function`` may ask for."""
        return self.max_bits if function in BIT_FUNCTIONS else self.max_registers


@dataclass(frozen=True, slots=True)
class Request:
    """One Modbus read and the keys of the points it covers (in address order)."""

    function: int
    address: int
    count: int
    keys: tuple[str, ...]

    @property
    def end(self) -> int:
        """One past the last register/bit read."""
        return self.address + self.count


def _check_fits(point: Point, limits: Limits) -> None:
    limit = limits.limit_for(point.function)
    if point.count > limit:
        unit = "bit" if point.function in BIT_FUNCTIONS else "register"
        raise PlanError(f"point {point.key!r}: count {point.count} exceeds the {limit}-{unit} limit of one request")


def plan(points: Iterable[Point], limits: Limits | None = None) -> list[Request]:
    """Merge points into the fewest requests the greedy rule allows.

    Per function, points are sorted by address and added to the current
    request while (a) the run of unrequested registers/bits between the
    request's end and the next point is <= ``limits.max_gap`` and (b) the
    merged span stays within the function's limit. Overlapping and duplicate
    spans are fine; a point inside another adds nothing to the span. Output is
    ordered by function, then address, so the same map always gives the same
    requests.

    Raises PlanError for a duplicate key or a point larger than one request.
    """
    limits = limits or Limits()
    by_function: dict[int, list[Point]] = {}
    seen: set[str] = set()
    for p in points:
        if p.key in seen:
            # Keys identify points in responses and in split(); two with one key is ambiguous.
            raise PlanError(f"duplicate point key {p.key!r}")
        seen.add(p.key)
        _check_fits(p, limits)
        by_function.setdefault(p.function, []).append(p)

    requests: list[Request] = []
    for function in sorted(by_function):
        limit = limits.limit_for(function)
        # Key as a last tiebreak so equal spans come out in a stable order whatever the input order.
        group = sorted(by_function[function], key=lambda p: (p.address, p.end, p.key))
        start, end, keys = group[0].address, group[0].end, [group[0].key]
        for p in group[1:]:
            new_end = max(end, p.end)
            if p.address - end <= limits.max_gap and new_end - start <= limit:
                end = new_end
                keys.append(p.key)
            else:
                requests.append(Request(function, start, end - start, tuple(keys)))
                start, end, keys = p.address, p.end, [p.key]
        requests.append(Request(function, start, end - start, tuple(keys)))
    return requests


def split(request: Request, points_by_key: Mapping[str, Point], limits: Limits | None = None) -> list[Request]:
    """Break a rejected request into one request per point it covers.

    For when a device answers a merged request with an exception (typically
    02 illegal data address because the block reads over a hole in its map):
    retrying each point alone lets the driver mark only the offending points
    BAD and keep the rest. Returned in the request's key order. The driver
    should remember the outcome rather than re-merge the same block next scan.

    Raises PlanError if a key is unknown or its point does not belong to the
    request (other function, or outside its span).
    """
    limits = limits or Limits()
    out: list[Request] = []
    for key in request.keys:
        try:
            p = points_by_key[key]
        except KeyError:
            raise PlanError(f"request lists unknown point {key!r}") from None
        _check_inside(request, p)
        _check_fits(p, limits)
        out.append(Request(p.function, p.address, p.count, (p.key,)))
    return out


def _check_inside(request: Request, point: Point) -> None:
    if point.function != request.function:
        raise PlanError(f"point {point.key!r} is function {point.function}, request is function {request.function}")
    if point.address < request.address or point.end > request.end:
        raise PlanError(
            f"point {point.key!r} ({point.address}..{point.end - 1}) lies outside the request "
            f"({request.address}..{request.end - 1})"
        )


def slice_values(request: Request, values: Sequence[int | bool], point: Point) -> list[int | bool]:
    """A point's registers or bits out of the response to ``request``.

    Register responses must hold exactly ``request.count`` values; bit
    responses may hold more, because the protocol packs bits into whole bytes
    and pymodbus returns the padding bits too.

    Raises PlanError if the point is not inside the request or the response
    is short (or, for registers, long).
    """
    _check_inside(request, point)
    n = len(values)
    if request.function in BIT_FUNCTIONS:
        if n < request.count:
            raise PlanError(f"response has {n} bits, request asked for {request.count}")
    elif n != request.count:
        raise PlanError(f"response has {n} registers, request asked for {request.count}")
    offset = point.address - request.address
    return list(values[offset : offset + point.count])
