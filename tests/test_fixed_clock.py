"""A fixed daemon clock (`[simulator] fixed_clock`, `seed`): repeatable values and timestamps.

The clock override itself is tested as plain code; the rest against real daemons polling
the built-in simulated plant, as the console's snapshot tests use them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drivers import clock as drivers_clock
from scadad import clock, config
from scadad.api.client import Client
from tests.conftest import RunningDaemon, start_daemon

FIXED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FIXED_US = 1_780_315_200_000_000
SIM = '[simulator]\nenabled = true\nseed = 7\nfixed_clock = "2026-06-01T12:00:00+00:00"\n'


# ---------------------------------------------------------------------- the clock (pure)


@pytest.fixture
def running_clock() -> Iterator[None]:
    yield
    clock.set_fixed(None)


def test_set_fixed_stands_the_daemon_and_driver_clocks_still(running_clock: None) -> None:
    assert clock.to_us(FIXED) == FIXED_US
    assert clock.fixed_us() is None and drivers_clock.fixed_us() is None
    clock.set_fixed(FIXED_US)
    time.sleep(0.01)
    assert clock.now_us() == drivers_clock.now_us() == FIXED_US
    assert clock.now() == FIXED and clock.fixed_us() == FIXED_US
    assert drivers_clock.now_s() == FIXED.timestamp()
    clock.set_fixed(None)
    assert drivers_clock.fixed_us() is None
    before = time.time_ns() // 1000
    now = clock.now_us()
    assert before <= now <= time.time_ns() // 1000 and before <= drivers_clock.now_us()


def test_the_drivers_clock_alone(running_clock: None) -> None:
    drivers_clock.set_fixed(5)
    assert drivers_clock.now_us() == 5 and clock.now_us() > FIXED_US // 2  # scadad's runs on
    drivers_clock.set_fixed(None)
    assert abs(drivers_clock.now_s() - time.time()) < 1


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "scadad.toml"
    p.write_text(text)
    return p


def test_config_keys(tmp_path: Path) -> None:
    s = config.load(None).settings.simulator
    assert (s.seed, s.fixed_clock) == (1, None)
    s = config.load(_write(tmp_path, '[simulator]\nseed = 7\nfixed_clock = "2026-06-01T14:00:00+02:00"\n')).settings
    assert s.simulator.seed == 7 and clock.to_us(s.simulator.fixed_clock) == FIXED_US
    # A TOML date-time works as well as a string.
    s = config.load(_write(tmp_path, "[simulator]\nfixed_clock = 2026-06-01T12:00:00Z\n")).settings
    assert s.simulator.fixed_clock == FIXED
    assert s.simulator.fixed_clock.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('fixed_clock = "2026-06-01T12:00:00"', "simulator.fixed_clock: Expected `datetime` with a timezone"),
        ("fixed_clock = 2026-06-01T12:00:00", "simulator.fixed_clock: Expected `datetime` with a timezone"),
        ('fixed_clock = "noon"', "simulator.fixed_clock: Invalid RFC3339"),
        ("seed = -1", "simulator.seed: Expected `int` >= 0"),
        ("seeds = 1", "simulator.seeds: unknown key"),
    ],
)
def test_bad_keys_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    p = _write(tmp_path, f"[simulator]\n{text}\n")
    with pytest.raises(config.ConfigError) as err:
        config.load(p)
    assert str(err.value).startswith(f"{p}: {expected}"), str(err.value)


# ---------------------------------------------------------------------- a daemon with a fixed clock


def _sim_values(c: Client) -> dict[str, dict]:
    return {v["path"]: v for v in c.call("Tags.Read", {"paths": ["sim/**"]})["values"]}


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _cpu_s(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _settle(c: Client, pred=lambda values: True, timeout: float = 20.0) -> dict[str, dict]:
    """The sim tags once every one is GOOD (and ``pred`` holds)."""
    deadline = time.monotonic() + timeout
    while True:
        values = _sim_values(c)
        if len(values) > 60 and all(v["quality"] == "GOOD" for v in values.values()) and pred(values):
            return values
        if time.monotonic() > deadline:
            bad = sorted(p for p, v in values.items() if v["quality"] != "GOOD")
            raise AssertionError(f"{len(values)} sim tags, not GOOD: {bad[:5]}")
        time.sleep(0.1)


def _start_settled(home: Path) -> tuple[RunningDaemon, dict[str, dict]]:
    """A daemon with the frozen plant, once every sim tag is GOOD and it has run 2 s."""
    started = time.monotonic()
    d = start_daemon(home, extra=SIM)
    try:
        with d.client() as c:
            _settle(c)
            time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))
            return d, _sim_values(c)
    except BaseException:
        d.stop()
        raise


@pytest.fixture(scope="module")
def frozen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningDaemon, dict[str, dict]]]:
    d, values = _start_settled(tmp_path_factory.mktemp("frozen") / "home")
    yield d, values
    code = d.stop()
    assert code == 0, f"scadad exited {code}\n{d.log_text()}"


def test_values_and_timestamps_stand_still(frozen: tuple[RunningDaemon, dict[str, dict]]) -> None:
    d, first = frozen
    with d.client() as c:
        time.sleep(1.5)
        second = _sim_values(c)
        ping = c.call("System.Ping")
        status = c.call("System.Status")
    assert second == first
    for path, v in first.items():
        assert _at(v["server_time"]) == FIXED and _at(v["source_time"]) == FIXED, (path, v)
    assert _at(ping["server_time"]) == FIXED and _at(status["started_at"]) == FIXED
    assert "wall clock fixed" in d.log_text()


def test_devices_stay_online(frozen: tuple[RunningDaemon, dict[str, dict]]) -> None:
    d, _ = frozen
    with d.client() as c:
        devices = c.call("Devices.Status", {})["devices"]
    assert len(devices) == 6
    for dev in devices:
        assert dev["state"] == "online" and dev["requests"] > 0 and dev["tags_bad"] == 0, dev
        assert _at(dev["last_good"]) == FIXED and _at(dev["since"]) == FIXED, dev


def test_no_busy_loop(frozen: tuple[RunningDaemon, dict[str, dict]]) -> None:
    d, _ = frozen
    before = _cpu_s(d.proc.pid)
    time.sleep(3.0)
    used = _cpu_s(d.proc.pid) - before
    assert used < 0.5, f"the daemon used {used:.2f} s of CPU in 3 s with a fixed clock"


def test_same_seed_and_clock_give_the_same_plant(frozen: tuple[RunningDaemon, dict[str, dict]], tmp_path: Path) -> None:
    _, first = frozen
    d, again = _start_settled(tmp_path / "home")
    try:
        assert again == first
        # A write under the frozen clock is stamped with the fixed instant too, and is the
        # value the historian keeps for that instant (not the one it replaced).
        path = "sim/pump-plc-5/level_high_sp"
        assert first[path]["value"] != 85.5
        with d.client() as c:
            res = c.call("Tags.Write", {"path": path, "value": 85.5})
            assert res["confirmed"] is True
            assert _at(res["read_back"]["source_time"]) == FIXED
            deadline = time.monotonic() + 10
            while True:
                latest = c.call("History.Query", {"path": path, "latest": True})["samples"]
                if latest and latest[-1]["value"] == 85.5:
                    break
                assert time.monotonic() < deadline, f"history keeps {latest} for {path}"
                time.sleep(0.2)
            assert _at(latest[-1]["time"]) == FIXED
            assert c.call("Tags.Read", {"paths": [path]})["values"][0]["value"] == 85.5
    finally:
        code = d.stop()
    assert code == 0, f"scadad exited {code}\n{d.log_text()}"


def test_sim_start_takes_a_seed_defaulting_to_the_configured_one(
    frozen: tuple[RunningDaemon, dict[str, dict]],
) -> None:
    d, first = frozen
    probes = [f"sim/{dev}/voltage_l1" for dev in ("sdm630-0", "pm5xxx-1", "em24-2")]
    with d.client() as c:
        c.call("Sim.Stop")
        c.call("Sim.Start", {"seed": 8})
        other = _settle(c, lambda v: all(v[p]["value"] != first[p]["value"] for p in probes))
        assert all(_at(v["source_time"]) == FIXED for v in other.values())
        c.call("Sim.Stop")
        c.call("Sim.Start", {})  # no seed: [simulator] seed = 7 again
        _settle(c, lambda v: v == first)
