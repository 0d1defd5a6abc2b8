"""Energy through a real scadad with the simulated plant: the demo hierarchy adds up to
its known loss, a meter made from a template reads a simulated device with its CT/PT
ratios applied, and the API refuses what it cannot use, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from scadad.api.errors import InvalidArgument
from tests.conftest import RunningDaemon, wait_until
from tests.tui_support import start_sim_daemon


@pytest.fixture(scope="module")
def plant(tmp_path_factory: pytest.TempPathFactory) -> Any:
    d: RunningDaemon = start_sim_daemon(tmp_path_factory.mktemp("energy") / "home")
    yield d
    assert d.stop() == 0, d.log_text()


def test_the_demo_hierarchy_adds_up_to_its_known_loss(plant: RunningDaemon) -> None:
    with plant.client() as c:
        tree = c.call("Meters.List")["meters"]
        assert [(m["name"], m["depth"]) for m in tree] == [
            ("main", 0), ("dg", 1), ("grid", 1), ("solar", 1), ("feeder-1", 1), ("load-1a", 2), ("load-1b", 2),
            ("feeder-2", 1), ("feeder-3", 1),
        ]  # fmt: skip

        def settled() -> dict[str, Any] | None:
            s = c.call("Energy.Summary")
            ok = all(m["status"] == "online" for m in s["meters"] if m["name"] != "main")
            return s if ok and all(x["loss_pct"] is not None for x in s["losses"]) else None

        s = wait_until(settled, "every meter online")
        losses = {x["parent"]: x for x in s["losses"]}
        # The bus loses 2 % of what the feeders take: 2/102 of what comes in.
        assert losses["main"]["loss_pct"] == pytest.approx(100 * 0.02 / 1.02, abs=0.05)
        assert losses["feeder-1"]["loss_pct"] == pytest.approx(2.0, abs=0.05)
        kw = {m["name"]: m["kw"] for m in s["meters"]}
        assert kw["main"] == pytest.approx(kw["grid"] + kw["dg"] + kw["solar"], abs=0.01)
        assert s["source_kw"] == pytest.approx(kw["main"], abs=0.01)
        assert s["load_kw"] == pytest.approx(s["source_kw"] - s["loss_kw"], abs=0.01)
        assert {m["name"] for m in s["sources"]} == {"grid", "dg", "solar"}
        [dg] = c.call("Energy.Generators")["generators"]
        assert dg["meter"] == "dg" and dg["tank_l"] == 1000.0 and dg["fuel_level_pct"] is not None
        [pv] = c.call("Energy.Renewables")["sources"]
        assert pv["emission_factor_kg_per_kwh"] == 0.727 and "CEA" in pv["factor_source"]
        assert pv["co2_avoided_kg"] == pytest.approx(pv["kwh"] * 0.727, abs=0.01)


def test_a_template_meter_reads_a_simulated_device_with_its_ratios(plant: RunningDaemon) -> None:
    with plant.client() as c:
        c.call("Meters.Create", {"name": "pm-check", "type": "load", "template": "schneider-pm5xxx",
                                 "device": "pm5xxx-1", "ct_primary": 200, "ct_secondary": 5,
                                 "pt_primary": 11000, "pt_secondary": 110})  # fmt: skip
        pts = c.call("Meters.Get", {"name": "pm-check"})["points"]
        # The meter's site is the daemon's own ([site] name) unless it names one.
        assert pts["current_l1"] == "test/energy/pm-check/current_l1"

        def pair() -> tuple[float, float] | None:
            a, b = c.call("Tags.Read", {"paths": [pts["frequency"], "sim/pm5xxx-1/frequency"]})["values"]
            if a["quality"] == b["quality"] == "GOOD" and a["source_time"] == b["source_time"]:
                return a["value"], b["value"]
            return None

        f_meter, f_device = wait_until(pair, "the template's frequency read with the device's own")
        assert f_meter == f_device  # no ratio on frequency

        def currents() -> tuple[float, float] | None:
            a, b = c.call("Tags.Read", {"paths": [pts["current_l1"], "sim/pm5xxx-1/current_l1"]})["values"]
            if a["quality"] == b["quality"] == "GOOD" and a["source_time"] == b["source_time"]:
                return a["value"], b["value"]
            return None

        i_meter, i_device = wait_until(currents, "a current read in the same scan")
        assert i_meter == pytest.approx(i_device * 40, rel=1e-6)  # CT 200/5
        c.call("Meters.Delete", {"name": "pm-check", "tags": True})
        assert pts["current_l1"] not in {t["spec"]["path"] for t in c.call("Tags.List", {})["tags"]}


def test_refusals_name_the_field(plant: RunningDaemon) -> None:
    with plant.client() as c:
        for params, field in (
            ({"name": "x", "type": "load", "template": "nope", "device": "pm5xxx-1"}, "params.template"),
            ({"name": "x", "type": "load", "template": "schneider-pm5xxx"}, "params.device"),
            ({"name": "x", "type": "load", "points": {"import_kwh": "no/such/tag"}}, "params.points.import_kwh"),
            ({"name": "x", "type": "load", "parent": "nope"}, "params.parent"),
        ):
            with pytest.raises(InvalidArgument) as e:
                c.call("Meters.Create", params)
            assert e.value.details["field"] == field
        with pytest.raises(InvalidArgument) as e:
            c.call("MeterTemplates.Import", {"toml": 'name = "x"\nmanufacturer = "a"\nmodel = "b"\n[[points]]\n'
                                             'quantity = "voltage_l1"\naddress = 1\ntype = "float33"\nunit = "V"\n'})  # fmt: skip
        assert ":7:" in str(e.value) or "line" in str(e.value) or "points[0].type" in str(e.value)
        assert "float33" in str(e.value)


def test_feeder_loss_and_fuel_theft_are_alarms(plant: RunningDaemon) -> None:
    with plant.client() as c:
        for p, v in (("x/in/kw", "100"), ("x/out/kw", "90")):
            c.call("Tags.Create", {"path": p, "data_type": "float64", "source": "memory", "writable": True,
                                   "initial_value": v})  # fmt: skip
        c.call("Meters.Create", {"name": "x-in", "type": "main", "site": "x", "points": {"power_total": "x/in/kw"}})
        c.call("Meters.Create", {"name": "x-out", "type": "load", "parent": "x-in", "site": "x",
                                 "points": {"power_total": "x/out/kw"}})  # fmt: skip
        rules = {r["kind"]: r for r in c.call("AlarmRules.List", {"pattern": "x/energy/x-in/loss_pct"})["rules"]}
        assert (rules["hi"]["limit"], rules["hihi"]["limit"], rules["lo"]["limit"]) == (3.0, 6.0, -1.0)

        def alarm() -> Any:
            listed = c.call("Alarms.List", {"pattern": "x/**"})["alarms"]
            return [(a["name"], a["state"], a["priority"]) for a in listed] or None

        # 10 % lost: above both thresholds, until the first interval closes on the live figure.
        got = wait_until(alarm, "the loss alarm")
        assert sorted(got) == [("x/energy/x-in/loss_pct:hi", "unack_active", "medium"),
                               ("x/energy/x-in/loss_pct:hihi", "unack_active", "high")]  # fmt: skip
        c.call("Tags.Write", {"path": "x/out/kw", "value": 99.5})
        wait_until(lambda: all(s == "rtn_unack" for _, s, _ in (alarm() or [("", "", "")])), "the loss back to normal")
        theft = c.call("AlarmRules.Get", {"alarm": "sim/energy/dg/fuel_theft_l:hi"})
        assert theft["priority"] == "high" and theft["limit"] == 0.0
