"""drivers.read_plan: merging a device's points into few Modbus read requests."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.read_plan import Limits, PlanError, Point, Request, plan, slice_values, split


def synthetic_response(request: Request) -> list[int | bool]:
    """What the device would answer: register i holds i; bit i is set when i % 3 == 0."""
    if request.function in (1, 2):
        # pymodbus returns whole bytes of bits, so pad like it does.
        padded = -(-request.count // 8) * 8
        return [(request.address + i) % 3 == 0 for i in range(padded)]
    return list(range(request.address, request.end))


def expected_values(point: Point) -> list[int | bool]:
    if point.function in (1, 2):
        return [a % 3 == 0 for a in range(point.address, point.end)]
    return list(range(point.address, point.end))


def float32s(function: int, start: int, n: int, prefix: str) -> list[Point]:
    return [Point(f"{prefix}{i}", function, start + 2 * i, 2) for i in range(n)]


def test_adjacent_points_merge_into_one_request() -> None:
    points = float32s(4, 0, 3, "v")
    assert plan(points, Limits()) == [Request(4, 0, 6, ("v0", "v1", "v2"))]


def test_empty_map_gives_no_requests() -> None:
    assert plan([], Limits()) == []


@pytest.mark.parametrize(("second", "expected"), [(12, 1), (13, 2)])
def test_gap_up_to_max_gap_merges_larger_splits(second: int, expected: int) -> None:
    # First point ends at 2; a point at 12 leaves a gap of exactly 10.
    points = [Point("a", 3, 0, 2), Point("b", 3, second, 2)]
    requests = plan(points, Limits(max_gap=10))
    assert len(requests) == expected
    if expected == 1:
        assert requests == [Request(3, 0, second + 2, ("a", "b"))]
    else:
        assert requests == [Request(3, 0, 2, ("a",)), Request(3, second, 2, ("b",))]


def test_max_gap_zero_merges_only_touching_points() -> None:
    points = [Point("a", 3, 0, 2), Point("b", 3, 2, 2), Point("c", 3, 5, 1)]
    assert plan(points, Limits(max_gap=0)) == [Request(3, 0, 4, ("a", "b")), Request(3, 5, 1, ("c",))]


def test_register_limit_is_never_exceeded() -> None:
    # 63 contiguous float32 = 126 registers: one more register than a request may hold.
    requests = plan(float32s(3, 0, 63, "f"), Limits())
    assert [(r.address, r.count) for r in requests] == [(0, 124), (124, 2)]
    requests = plan(float32s(3, 0, 63, "f"), Limits(max_registers=40))
    assert all(r.count <= 40 for r in requests)
    assert len(requests) == 4


def test_bit_limit_is_never_exceeded() -> None:
    coils = [Point(f"c{i}", 1, i, 1) for i in range(2001)]
    requests = plan(coils, Limits())
    assert [(r.address, r.count, len(r.keys)) for r in requests] == [(0, 2000, 2000), (2000, 1, 1)]


def test_functions_never_mix() -> None:
    points = [Point(f"fc{fc}", fc, 100, 2 if fc > 2 else 1) for fc in (4, 3, 2, 1)]
    requests = plan(points, Limits())
    assert [(r.function, r.keys) for r in requests] == [(1, ("fc1",)), (2, ("fc2",)), (3, ("fc3",)), (4, ("fc4",))]


def test_overlapping_and_duplicate_spans() -> None:
    points = [
        Point("block", 3, 10, 8),
        Point("inside", 3, 12, 2),  # lies inside "block"
        Point("same", 3, 10, 8),  # same span, another key
        Point("tail", 3, 16, 4),  # overlaps the end of "block"
    ]
    [request] = plan(points, Limits())
    assert (request.address, request.count) == (10, 10)
    assert request.keys == ("block", "same", "inside", "tail")


@pytest.mark.parametrize(
    ("point", "limits", "message"),
    [
        (
            Point("pm.energy_log", 3, 0, 126),
            Limits(),
            "point 'pm.energy_log': count 126 exceeds the 125-register limit",
        ),
        (Point("ir.block", 4, 0, 50), Limits(max_registers=40), "point 'ir.block': count 50 exceeds the 40-register"),
        (Point("di.all", 2, 0, 2001), Limits(), "point 'di.all': count 2001 exceeds the 2000-bit limit"),
    ],
)
def test_point_larger_than_limit_raises_naming_it(point: Point, limits: Limits, message: str) -> None:
    with pytest.raises(PlanError, match="exceeds") as exc:
        plan([Point("ok", point.function, 500, 1), point], limits)
    assert message in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_duplicate_key_raises() -> None:
    with pytest.raises(PlanError, match="duplicate point key 'v1'"):
        plan([Point("v1", 4, 0, 2), Point("v1", 4, 2, 2)], Limits())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_registers": 0}, "max_registers must be 1..125, got 0"),
        ({"max_registers": 126}, "max_registers must be 1..125, got 126"),
        ({"max_bits": 0}, "max_bits must be 1..2000, got 0"),
        ({"max_bits": 2001}, "max_bits must be 1..2000, got 2001"),
        ({"max_gap": -1}, "max_gap must be >= 0, got -1"),
    ],
)
def test_limits_are_validated(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Limits(**kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", 5, 0, 1), "point 'x': function 5 is not one of 1, 2, 3, 4"),
        (("x", 3, -1, 1), "point 'x': address -1 out of range 0..65535"),
        (("x", 3, 65536, 1), "point 'x': address 65536 out of range"),
        (("x", 3, 0, 0), "point 'x': count must be >= 1, got 0"),
        (("x", 3, 65535, 2), "point 'x': 65535+2 runs past address 65535"),
    ],
)
def test_points_are_validated(args: tuple[str, int, int, int], message: str) -> None:
    with pytest.raises(PlanError) as exc:
        Point(*args)
    assert message in str(exc.value)


def test_split_returns_one_request_per_point() -> None:
    points = [Point("a", 3, 0, 2), Point("b", 3, 4, 4), Point("inside", 3, 5, 1), Point("c", 3, 12, 2)]
    by_key = {p.key: p for p in points}
    [merged] = plan(points, Limits())
    parts = split(merged, by_key, Limits())
    assert parts == [
        Request(3, 0, 2, ("a",)),
        Request(3, 4, 4, ("b",)),
        Request(3, 5, 1, ("inside",)),
        Request(3, 12, 2, ("c",)),
    ]
    # Each part reads exactly its point, and slice_values works on it unchanged.
    for part in parts:
        [key] = part.keys
        assert slice_values(part, synthetic_response(part), by_key[key]) == expected_values(by_key[key])


def test_split_rejects_points_not_in_the_request() -> None:
    request = Request(3, 0, 4, ("a", "ghost"))
    with pytest.raises(PlanError, match="unknown point 'ghost'"):
        split(request, {"a": Point("a", 3, 0, 2)}, Limits())
    with pytest.raises(PlanError, match="point 'a' is function 4, request is function 3"):
        split(Request(3, 0, 4, ("a",)), {"a": Point("a", 4, 0, 2)}, Limits())
    with pytest.raises(PlanError, match=r"point 'a' \(2..5\) lies outside the request \(0..3\)"):
        split(Request(3, 0, 4, ("a",)), {"a": Point("a", 3, 2, 4)}, Limits())


def test_slice_values_checks_the_response() -> None:
    request = Request(3, 100, 6, ("a", "b"))
    a, b = Point("a", 3, 100, 2), Point("b", 3, 104, 2)
    values = [10, 11, 12, 13, 14, 15]
    assert slice_values(request, values, a) == [10, 11]
    assert slice_values(request, values, b) == [14, 15]
    with pytest.raises(PlanError, match="response has 5 registers, request asked for 6"):
        slice_values(request, values[:5], a)
    with pytest.raises(PlanError, match="response has 7 registers"):
        slice_values(request, [*values, 16], a)
    with pytest.raises(PlanError, match="lies outside the request"):
        slice_values(request, values, Point("c", 3, 105, 2))
    # Bit responses may carry padding bits up to a whole byte, but not be short.
    coils = Request(1, 3, 5, ("k",))
    bits = [True, False, True, True, False, False, False, False]
    assert slice_values(coils, bits, Point("k", 1, 5, 2)) == [True, True]
    with pytest.raises(PlanError, match="response has 4 bits, request asked for 5"):
        slice_values(coils, bits[:4], Point("k", 1, 5, 2))


@st.composite
def point_maps(draw: st.DrawFn) -> tuple[list[Point], Limits]:
    limits = Limits(
        max_registers=draw(st.integers(1, 125)),
        max_bits=draw(st.sampled_from([1, 8, 100, 2000])),
        max_gap=draw(st.integers(0, 20)),
    )
    n = draw(st.integers(0, 60))
    points = []
    for i in range(n):
        function = draw(st.sampled_from([1, 2, 3, 4]))
        limit = limits.limit_for(function)
        # A narrow address range so overlaps, duplicates and adjacency are common.
        address = draw(st.integers(0, 300 if function > 2 else 3000))
        count = draw(st.integers(1, min(limit, 8 if function > 2 else 300)))
        points.append(Point(f"p{i}", function, address, count))
    return points, limits


@settings(max_examples=300, deadline=None)
@given(point_maps(), st.randoms(use_true_random=False))
def test_plan_properties(case: tuple[list[Point], Limits], rnd: random.Random) -> None:
    points, limits = case
    requests = plan(points, limits)
    by_key = {p.key: p for p in points}

    # Deterministic and independent of input order.
    shuffled = points[:]
    rnd.shuffle(shuffled)
    assert plan(shuffled, limits) == requests
    assert requests == sorted(requests, key=lambda r: (r.function, r.address))

    covering: dict[str, Request] = {}
    for r in requests:
        assert 1 <= r.count <= limits.limit_for(r.function)
        members = [by_key[k] for k in r.keys]
        assert members, "a request with no points"
        # Functions never mix, and the span is exactly the union's hull.
        assert {p.function for p in members} == {r.function}
        assert r.address == min(p.address for p in members)
        assert r.end == max(p.end for p in members)
        # No run of unrequested registers/bits inside a request is longer than max_gap.
        covered = sorted((p.address, p.end) for p in members)
        reach = covered[0][1]
        for start, end in covered[1:]:
            assert start - reach <= limits.max_gap
            reach = max(reach, end)
        response = synthetic_response(r)
        for p in members:
            assert p.key not in covering, f"{p.key} listed by two requests"
            covering[p.key] = r
            assert slice_values(r, response, p) == expected_values(p)
        assert split(r, by_key, limits) == [Request(p.function, p.address, p.count, (p.key,)) for p in members]
    assert covering.keys() == by_key.keys()


def realistic_meter_map() -> list[Point]:
    """One energy meter's 500 tags, laid out like a real map (SDM630-style FC4, PM-style FC3)."""
    points: list[Point] = []
    # FC4 float32 measurements: contiguous blocks with the holes real maps have
    # (small reserved gaps, and a couple of large ones between sections).
    blocks = [(0x0000, 42), (0x0054, 10), (0x0070, 20), (0x00C8, 30), (0x0108, 40), (0x0160, 8), (0x0200, 100)]
    for b, (start, n) in enumerate(blocks):
        points += float32s(4, start, n, f"ir{b}.")
    assert sum(n for _, n in blocks) == 250
    # FC3 int64 energy counters (4 registers each), a 2-register reserved gap after every 8th.
    address = 0x0BB8
    for i in range(100):
        points.append(Point(f"energy{i}", 3, address, 4))
        address += 4 + (2 if i % 8 == 7 else 0)
    # FC1 relay outputs and FC2 digital inputs in groups with small gaps.
    points += [Point(f"coil{i}", 1, i, 1) for i in range(100)]
    points += [Point(f"di{i}", 2, (i // 10) * 16 + i % 10, 1) for i in range(50)]
    return points


def test_realistic_500_tag_map() -> None:
    points = realistic_meter_map()
    assert len(points) == 500
    assert len({p.key for p in points}) == 500
    limits = Limits()
    requests = plan(points, limits)
    assert len(requests) <= len(points) / 10
    assert {r.function for r in requests} == {1, 2, 3, 4}
    assert all(r.count <= limits.limit_for(r.function) for r in requests)
    by_key = {p.key: p for p in points}
    assert sorted(k for r in requests for k in r.keys) == sorted(by_key)
    for r in requests:
        response = synthetic_response(r)
        for k in r.keys:
            assert slice_values(r, response, by_key[k]) == expected_values(by_key[k])
    # A strict device (no reading over holes) still needs far fewer requests than tags.
    assert len(plan(points, Limits(max_gap=0))) <= len(points) / 10
