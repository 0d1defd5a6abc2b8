"""scadactl meter and scadactl energy against a real daemon, checked on the numbers they print.

Every meter here reads memory tags the test writes (Tags.Write reaches the energy
engine synchronously, as it reaches the alarm engine), so live kW, PF and today's kWh
are exactly what the test wrote. One daemon serves the module. The tree:

    incomer (grid)  ── f1 (feeder)      dg1 (generator)    pv1 (solar)
                    └─ f2 (feeder)

Figures that need a reading interval to close (consumption rows, loss rows) would
need a minute or more (the shortest interval is 60 s), so those commands are checked
for their structure only.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from scadactl.main import app
from scadactl.meters import in_template_file, parse_interval, parse_ratio
from tests.conftest import RunningDaemon, memory_tag_daemon, wait_until

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent
WIDE = {"COLUMNS": "200"}  # human tables on one line per row
SHIPPED = ("carlo-gavazzi-em24", "deepsea-dg", "eastron-sdm630", "generic-solar-inverter", "schneider-pm5xxx")

TAGS = (
    "e/incomer/kw", "e/incomer/kwh", "e/incomer/pf", "e/f1/kw", "e/f1/kwh", "e/f2/kw", "e/f2/kwh",
    "e/dg1/kw", "e/dg1/kwh", "e/dg1/fuel", "e/dg1/run", "e/dg1/hours", "e/dg1/starts", "e/pv1/kw", "e/pv1/kwh",
    "e/spare/kw",
)  # fmt: skip


def run(d: RunningDaemon, *args: str):
    return runner.invoke(app, ["--socket", str(d.socket), *args], env=WIDE, catch_exceptions=False)


def ok(d: RunningDaemon, *args: str) -> str:
    r = run(d, *args)
    assert r.exit_code == 0, f"{args}: exit {r.exit_code}\n{r.stdout}\n{r.stderr}"
    return r.stdout


def run_json(d: RunningDaemon, *args: str) -> Any:
    return json.loads(ok(d, "--json", *args))


def run_csv(d: RunningDaemon, *args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ok(d, *args, "--csv"))))


def write(d: RunningDaemon, **values: float) -> None:
    """Write memory tags: e_f1_kw=12 writes e/f1/kw."""
    with d.client() as c:
        for key, v in values.items():
            c.call("Tags.Write", {"path": key.replace("_", "/"), "value": v, "confirm": False})


def line_with(text: str, *needles: str) -> str:
    found = [ln.rstrip() for ln in text.splitlines() if all(n in ln for n in needles)]
    assert len(found) == 1, f"{needles}: {len(found)} lines in\n{text}"
    return found[0]


@pytest.fixture(scope="module")
def d(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    """One daemon with float64 memory tags for the meters, and the meter tree above."""
    units = {"kw": "kW", "kwh": "kWh", "fuel": "%", "hours": "h"}
    home = tmp_path_factory.mktemp("energy") / "home"
    yield from memory_tag_daemon(home, {p: units.get(p.rsplit("/", 1)[1], "") for p in TAGS})


@pytest.fixture(scope="module")
def tree(d: RunningDaemon) -> RunningDaemon:
    """The meters (added through `meter add`, as a user would)."""
    ok(d, "meter", "add", "incomer", "--type", "grid", "--point", "power_total=e/incomer/kw",
       "--point", "import_kwh=e/incomer/kwh", "--point", "pf_total=e/incomer/pf", "--ct", "200/5",
       "--pt", "11000/110", "--ratio-in-meter", "--nominal-voltage", "11000", "--tariff-zone", "ht-1",
       "--interval", "15m", "-d", "HT incomer")  # fmt: skip
    for f in ("f1", "f2"):
        ok(d, "meter", "add", f, "--type", "feeder", "--parent", "incomer", "--point", f"power_total=e/{f}/kw",
           "--point", f"import_kwh=e/{f}/kwh")  # fmt: skip
    ok(d, "meter", "add", "dg1", "--type", "generator", "--point", "power_total=e/dg1/kw",
       "--point", "import_kwh=e/dg1/kwh", "--point", "fuel_level=e/dg1/fuel", "--point", "running=e/dg1/run",
       "--point", "run_hours=e/dg1/hours", "--point", "starts=e/dg1/starts")  # fmt: skip
    ok(d, "meter", "add", "pv1", "--type", "solar", "--point", "power_total=e/pv1/kw",
       "--point", "import_kwh=e/pv1/kwh")  # fmt: skip
    return d


# ---------------------------------------------------------------- pure helpers


def test_parse_ratio_interval_and_template_error_place() -> None:
    assert parse_ratio("200/5") == (200.0, 5.0) and parse_ratio(" 40 ") == (40.0, 1.0)
    for bad in ("200/0", "x/5", "-1/5", ""):
        with pytest.raises(ValueError):
            parse_ratio(bad)
    assert parse_interval("15m") == 900 and parse_interval("1h") == 3600 and parse_interval("60") == 60
    with pytest.raises(ValueError, match="one of 1m, 5m, 10m, 15m, 30m, 1h"):
        parse_interval("2m")
    assert in_template_file("<template>:12: points[3].type: unknown", "a.toml") == "a.toml:12: points[3].type: unknown"
    assert in_template_file("params.toml:3: name: bad", "a.toml") == "a.toml:3: name: bad"
    assert in_template_file("name: taken", "a.toml") == "a.toml: name: taken"


# ---------------------------------------------------------------- meters


def test_meter_add_list_show_edit_rm(tree: RunningDaemon) -> None:
    d = tree
    meters = run_json(d, "meter", "list")["meters"]
    by = {m["name"]: m for m in meters}
    assert [m["name"] for m in meters if m["name"] in ("incomer", "f1", "f2")] == ["incomer", "f1", "f2"]
    assert (by["f1"]["parent"], by["f1"]["depth"], by["incomer"]["depth"]) == ("incomer", 1, 0)
    assert sorted(by["incomer"]["children"]) == ["f1", "f2"]
    inc = by["incomer"]
    assert (inc["ct_primary"], inc["ct_secondary"], inc["pt_primary"], inc["pt_secondary"]) == (200, 5, 11000, 110)
    assert inc["ratio_applied_in_meter"] is True and inc["interval_s"] == 900 and inc["tariff_zone"] == "ht-1"
    assert inc["points"] == {"power_total": "e/incomer/kw", "import_kwh": "e/incomer/kwh", "pf_total": "e/incomer/pf"}

    out = ok(d, "meter", "list")
    assert line_with(out, "incomer ").split()[:2] == ["incomer", "grid"]
    assert line_with(out, "  f1 ").split()[:2] == ["f1", "feeder"]  # indented below its parent
    assert "200/5" in line_with(out, "incomer ") and "11000/110" in line_with(out, "incomer ")
    rows = run_csv(d, "meter", "list")
    assert {"name", "type", "parent", "depth", "interval_s", "status"} <= set(rows[0])
    assert {r["name"]: r["parent"] for r in rows}["f2"] == "incomer"

    write(d, e_incomer_kw=101.5)
    out = ok(d, "meter", "show", "incomer")
    assert line_with(out, "tariff zone").split() == ["tariff", "zone", "ht-1"]
    assert line_with(out, "ratios").split()[-3:] == ["in", "the", "meter"]
    assert line_with(out, "power_total").split()[:4] == ["power_total", "e/incomer/kw", "101.5", "kW"]
    assert run_json(d, "meter", "show", "f1")["parent"] == "incomer"

    edited = run_json(d, "meter", "edit", "f2", "--ct", "100/5", "--interval", "5m", "-d", "feeder 2")
    assert (edited["ct_primary"], edited["ct_secondary"], edited["interval_s"]) == (100, 5, 300)
    assert edited["description"] == "feeder 2" and edited["points"]["power_total"] == "e/f2/kw"
    assert "meter f2 updated (feeder under incomer" in ok(d, "meter", "edit", "f2", "--interval", "15m")

    r = run(d, "meter", "edit", "f2")
    assert r.exit_code == 2 and "nothing to change" in r.stderr
    r = run(d, "meter", "add", "x1", "--type", "bogus")
    assert r.exit_code == 2 and "--type" in r.stderr
    r = run(d, "meter", "add", "x1", "--type", "load", "--ct", "200/0")
    assert r.exit_code == 2 and "--ct" in r.stderr
    r = run(d, "meter", "add", "x1", "--type", "load", "--interval", "2m")
    assert r.exit_code == 2 and "--interval" in r.stderr
    r = run(d, "meter", "add", "x1", "--type", "load", "--point", "power_total")
    assert r.exit_code == 2 and "QUANTITY=TAG" in r.stderr
    r = run(d, "meter", "add", "x1", "--type", "load", "--template", "eastron-sdm630")
    assert r.exit_code == 2 and "--device" in r.stderr
    r = run(d, "--json", "meter", "show", "nope")
    assert r.exit_code == 1 and json.loads(r.stdout)["error"]["code"] == "NOT_FOUND"
    r = run(d, "meter", "add", "f1", "--type", "feeder")
    assert r.exit_code == 1 and "ALREADY_EXISTS" in r.stderr
    r = run(d, "meter", "rm", "incomer", "-y")  # it has children
    assert r.exit_code == 1, r.output

    spare = run_json(
        d, "meter", "add", "spare", "--type", "load", "--parent", "f1", "--point", "power_total=e/spare/kw"
    )
    assert (spare["parent"], spare["depth"]) == ("f1", 2)
    assert line_with(ok(d, "meter", "list"), "    spare ").split()[:2] == ["spare", "load"]
    moved = run_json(d, "meter", "edit", "spare", "--top-level", "--point", "power_total=e/f2/kw", "--disable")
    assert (moved["parent"], moved["depth"], moved["points"], moved["enabled"]) == (None, 0, {"power_total": "e/f2/kw"},
                                                                                    False)  # fmt: skip
    assert run_json(d, "meter", "edit", "spare", "--no-points")["points"] == {}
    assert line_with(ok(d, "meter", "list"), "spare ").split()[-1] == "disabled"
    assert "meter spare removed" in ok(d, "meter", "rm", "spare", "--yes")
    assert "spare" not in {m["name"] for m in run_json(d, "meter", "list")["meters"]}


def test_meter_status_history(tree: RunningDaemon) -> None:
    d = tree
    write(d, e_f1_kw=1, e_f1_kwh=1)

    def online() -> Any:
        res = run_json(d, "meter", "status", "f1")
        return res if any(c["status"] == "online" for c in res["changes"]) else None

    res = wait_until(online, "f1 online in its status history")
    assert res["meter"] == "f1"
    out = ok(d, "meter", "status", "f1")
    assert "online" in out
    rows = run_csv(d, "meter", "status", "f1")
    assert list(rows[0]) == ["time", "status", "reason"] and rows[-1]["time"].endswith("Z")


# ---------------------------------------------------------------- energy now


def test_summary_and_tree_show_what_the_meters_read(tree: RunningDaemon) -> None:
    d = tree
    write(d, e_incomer_kw=120.0, e_incomer_pf=0.95, e_f1_kw=70.0, e_f2_kw=44.0, e_dg1_kw=0.0, e_pv1_kw=0.0)
    write(d, e_incomer_kwh=5000.0, e_f1_kwh=3000.0, e_f2_kwh=1000.0)
    before = {m["name"]: m["today_kwh"] for m in run_json(d, "energy", "summary")["meters"]}
    write(d, e_incomer_kwh=5012.5, e_f1_kwh=3007.0, e_f2_kwh=1005.0)  # counters step: today's kWh

    s = run_json(d, "energy", "summary")
    by = {m["name"]: m for m in s["meters"]}
    assert (by["incomer"]["kw"], by["incomer"]["pf"], by["f1"]["kw"], by["f2"]["kw"]) == (120.0, 0.95, 70.0, 44.0)
    # Before its counter stepped the incomer's kWh came from integrating its kW; after, from
    # the counter alone (the first reading only sets the base).
    assert before["incomer"] < 1 and by["incomer"]["today_kwh"] == 12.5
    assert by["f1"]["today_kwh"] - before["f1"] == pytest.approx(7.0)
    assert by["f2"]["today_kwh"] - before["f2"] == pytest.approx(5.0)
    assert by["f1"]["depth"] == 1 and by["f1"]["parent"] == "incomer"
    sources = {m["name"]: m for m in s["sources"]}
    assert "incomer" in sources and "f1" not in sources
    assert s["source_kw"] == pytest.approx(sum(m["kw"] or 0 for m in s["sources"]))
    loss = next(x for x in s["losses"] if x["parent"] == "incomer")
    assert (loss["parent_kw"], loss["children_kw"]) == (120.0, 114.0)
    assert loss["loss_kw"] == pytest.approx(6.0) and loss["loss_pct"] == pytest.approx(5.0)

    out = ok(d, "energy", "summary")
    assert line_with(out, "incomer ", "grid").split()[:4] == ["incomer", "grid", "120.0", "12.5"]
    assert line_with(out, "f1 ").split()[:3] == ["f1", "feeder", "70.0"]
    assert line_with(out, "incomer ", "120.0", "114.0").split()[:5] == ["incomer", "120.0", "114.0", "6.0", "5.0"]
    total = line_with(out, "total ")
    assert f"sources {s['source_kw']:.1f} kW" in total and f"today {s['today_kwh']:.1f} kWh" in total

    out = ok(d, "energy", "tree")
    assert line_with(out, "incomer ").split()[:5] == ["incomer", "grid", "120.0", "0.95", "12.5"]
    f2_today = f"{by['f2']['today_kwh']:.1f}"
    assert line_with(out, "  f2 ").split()[:4] == ["f2", "feeder", "44.0", f2_today]  # no PF point: an empty cell
    tree_json = run_json(d, "energy", "tree")
    assert [m["name"] for m in tree_json] == [m["name"] for m in s["meters"]]
    rows = run_csv(d, "energy", "tree")
    assert {r["name"]: r["kw"] for r in rows}["f1"] == "70.0"

    # A meter below f2 without a power reading: f2's loss cannot be computed, and the total says so.
    ok(d, "meter", "add", "blind", "--type", "load", "--parent", "f2", "--point", "import_kwh=e/spare/kw")
    try:
        loss = next(x for x in run_json(d, "energy", "summary")["losses"] if x["parent"] == "f2")
        assert (loss["loss_kw"], loss["status"]) == (None, "incomplete")
        assert line_with(ok(d, "energy", "summary"), "total ").endswith("(loss unknown below f2)")
    finally:
        ok(d, "meter", "rm", "blind", "-y")


def test_watch_prints_a_line_per_update(tree: RunningDaemon) -> None:
    d = tree
    proc = subprocess.Popen(
        [sys.executable, "-m", "scadactl.main", "--socket", str(d.socket), "--json", "energy", "watch",
         "--interval", "250ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, **WIDE},
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=reader, daemon=True).start()
    try:
        first = json.loads(lines.get(timeout=10))
        write(d, e_f1_kw=75.0)
        second = json.loads(lines.get(timeout=10))
        assert {"source_kw", "load_kw", "loss_kw", "today_kwh", "meters"} <= set(first) and second["site"] == "test"
        third = json.loads(lines.get(timeout=10))
        assert {m["name"]: m["kw"] for m in third["meters"]}["f1"] == 75.0
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(10)
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    # People get one line per update: the time, then the balance.
    proc = subprocess.Popen(
        [sys.executable, "-m", "scadactl.main", "--socket", str(d.socket), "energy", "watch", "-i", "250ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, **WIDE},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert re.match(r"^\d\d:\d\d:\d\d  sources [\d.]+ kW  loads [\d.]+ kW  losses [\d.-]+ kW .*today [\d.]+ kWh$",
                        line), line  # fmt: skip
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    r = run(d, "energy", "watch", "--interval", "10ms")
    assert r.exit_code == 2 and "--interval" in r.stderr


# ---------------------------------------------------------------- over time


def test_consumption_and_loss_run_and_have_their_shape(tree: RunningDaemon) -> None:
    d = tree
    res = run_json(d, "energy", "consumption", "f1", "f2", "--from", "-1h", "--by", "hour")
    assert isinstance(res["series"], list)
    for s in res["series"]:
        assert s["meter"] in ("f1", "f2") and isinstance(s["points"], list) and "total_kwh" in s
    ok(d, "energy", "consumption", "--by", "day")
    out = ok(d, "energy", "consumption", "--csv")
    assert out.splitlines()[0] == "meter,start,import_kwh,export_kwh,net_kwh,avg_kw,max_kw,estimated,quality,intervals"
    r = run(d, "energy", "consumption", "--by", "week")
    assert r.exit_code == 2 and "--by" in r.stderr
    r = run(d, "--json", "energy", "consumption", "--csv")
    assert r.exit_code == 2

    res = run_json(d, "energy", "loss", "--parent", "incomer", "--from", "-2h", "--status", "ok", "--status", "alarm")
    assert isinstance(res["rows"], list) and all(x["parent"] == "incomer" for x in res["rows"])
    ok(d, "energy", "loss")
    out = ok(d, "energy", "loss", "--csv")
    assert out.splitlines()[0] == "parent,start,interval_s,parent_kwh,children_kwh,loss_kwh,loss_pct,status,note"
    r = run(d, "energy", "loss", "--status", "fine")
    assert r.exit_code == 2 and "--status" in r.stderr


# ---------------------------------------------------------------- generators, solar


def test_dg_set_and_generators(tree: RunningDaemon) -> None:
    d = tree
    st = run_json(d, "energy", "dg", "set", "dg1", "--rated-kw", "100", "--tank-l", "500", "--f0", "0.08",
                  "--f1", "0.25", "--co2", "2.7")  # fmt: skip
    assert (st["meter"], st["rated_kw"], st["tank_l"]) == ("dg1", 100.0, 500.0)
    assert "generator dg1 set: 100.0 kW rated, tank 500 L" in ok(d, "energy", "dg", "set", "dg1", "--rated-kw", "100",
                                                                "--tank-l", "500")  # fmt: skip
    write(d, e_dg1_run=1, e_dg1_kw=40.0, e_dg1_fuel=80.0, e_dg1_hours=1234.5, e_dg1_starts=17)

    gens = run_json(d, "energy", "dg")["generators"]
    g = next(x for x in gens if x["meter"] == "dg1")
    assert set(g) >= {"running", "kw", "load_pct", "fuel_level_pct", "fuel_l", "run_hours", "starts", "kwh_today",
                      "fuel_used_today_l", "fuel_curve_today_l", "l_per_kwh", "co2_today_kg", "events"}  # fmt: skip
    assert (g["running"], g["kw"], g["load_pct"], g["fuel_level_pct"]) == (True, 40.0, 40.0, 80.0)
    assert (g["fuel_l"], g["run_hours"], g["starts"]) == (400.0, 1234.5, 17)
    out = ok(d, "energy", "dg")
    assert line_with(out, "dg1 ").split()[:8] == ["dg1", "yes", "40.0", "40", "80", "400", "1234.5", "17"]
    rows = run_csv(d, "energy", "dg")
    assert rows[0]["meter"] == "dg1" and rows[0]["starts"] == "17" and rows[0]["events"] == "0"

    r = run(d, "energy", "dg", "set", "dg1")
    assert r.exit_code == 2 and "--rated-kw" in r.stderr
    r = run(d, "energy", "dg", "set", "nope", "--rated-kw", "10")
    assert r.exit_code == 1, r.output


def test_solar_set_and_renewables(tree: RunningDaemon) -> None:
    d = tree
    st = run_json(d, "energy", "solar", "set", "pv1", "--capacity-kwp", "50", "--factor", "0.8",
                  "--factor-source", "test grid")  # fmt: skip
    assert (st["meter"], st["kind"], st["capacity_kwp"]) == ("pv1", "solar", 50.0)
    assert (st["emission_factor_kg_per_kwh"], st["factor_source"]) == (0.8, "test grid")
    write(d, e_pv1_kw=30.0, e_pv1_kwh=100.0)
    write(d, e_pv1_kwh=150.0)

    res = run_json(d, "energy", "solar")
    pv = next(x for x in res["sources"] if x["meter"] == "pv1")
    assert pv["kw"] == 30.0 and pv["factor_source"] == "test grid"
    assert pv["co2_avoided_kg"] == pytest.approx(pv["kwh"] * 0.8)
    out = ok(d, "energy", "solar")
    assert line_with(out, "pv1 ").split()[:3] == ["pv1", "solar", "50.0"] and "test grid" in out
    rows = run_csv(d, "energy", "solar", "--from", "-1d")
    assert rows[0]["meter"] == "pv1" and rows[0]["emission_factor_kg_per_kwh"] == "0.8"
    r = run(d, "energy", "solar", "set", "pv1", "--kind", "tidal")
    assert r.exit_code == 2 and "--kind" in r.stderr


# ---------------------------------------------------------------- targets


def test_target_set_list_rm(tree: RunningDaemon) -> None:
    d = tree
    first = date.today().replace(day=1).isoformat()
    t = run_json(d, "energy", "target", "set", "f1", "--period", "month", "--start", first, "--kwh", "12000")
    assert (t["meter"], t["period"], t["start"], t["target_kwh"]) == ("f1", "month", first, 12000.0)
    out = ok(d, "energy", "target", "set", "f2", "--period", "month", "--start", first, "--kwh", "500")
    assert f"target f2 month {first} to" in out and "500.0 kWh" in out

    targets = run_json(d, "energy", "targets")["targets"]
    assert {(x["meter"], x["target_kwh"]) for x in targets} == {("f1", 12000.0), ("f2", 500.0)}
    assert [x["meter"] for x in run_json(d, "energy", "targets", "f1")["targets"]] == ["f1"]
    out = ok(d, "energy", "targets", "f1")
    assert line_with(out, "f1 ").split()[:5] == ["f1", "month", first, line_with(out, "f1 ").split()[3], "12000.0"]
    rows = run_csv(d, "energy", "targets", "--all")
    assert list(rows[0])[:5] == ["meter", "period", "start", "end", "target_kwh"]

    r = run(d, "energy", "target", "set", "f1", "--period", "fortnight", "--start", first, "--kwh", "1")
    assert r.exit_code == 2 and "--period" in r.stderr
    r = run(d, "energy", "target", "set", "f1", "--period", "month", "--start", "1st of May", "--kwh", "1")
    assert r.exit_code == 2 and "--start" in r.stderr

    assert f"target f2 month {first} removed" in ok(d, "energy", "target", "rm", "f2", "--period", "month",
                                                    "--start", first)  # fmt: skip
    assert [x["meter"] for x in run_json(d, "energy", "targets")["targets"]] == ["f1"]


# ---------------------------------------------------------------- templates


def test_template_list_show_import_rm(d: RunningDaemon, tmp_path: Path) -> None:
    templates = run_json(d, "meter", "template", "list")["templates"]
    names = {t["name"] for t in templates}
    assert set(SHIPPED) <= names and all(t["shipped"] for t in templates if t["name"] in SHIPPED)
    out = ok(d, "meter", "template", "list")
    assert line_with(out, "eastron-sdm630").split()[:2] == ["eastron-sdm630", "Eastron"]
    rows = run_csv(d, "meter", "template", "list")
    assert list(rows[0])[:3] == ["name", "manufacturer", "model"]

    pm = run_json(d, "meter", "template", "show", "schneider-pm5xxx")
    assert pm["manufacturer"].startswith("Schneider") and pm["points"]
    out = ok(d, "meter", "template", "show", "schneider-pm5xxx")
    assert "power_total" in out
    assert ok(d, "meter", "template", "show", "schneider-pm5xxx", "--toml") == pm["source_toml"].rstrip("\n") + "\n"

    broken = tmp_path / "broken.toml"
    broken.write_text(
        'name = "my-meter"\nmanufacturer = "Acme"\nmodel = "X1"\n\n[[points]]\nquantity = "power_total"\n'
        'address = 10\ntype = "float33"\nunit = "kW"\n'
    )
    r = run(d, "meter", "template", "import", str(broken))
    assert r.exit_code == 1, r.output
    # The line of the offending [[points]] entry, and the field.
    assert f"{broken}:5: points[0].type: unknown type 'float33'" in r.stderr
    err = json.loads(run(d, "--json", "meter", "template", "import", str(broken)).stdout)["error"]
    assert err["code"] == "INVALID_ARGUMENT" and err["message"].startswith(f"{broken}:5: points[0].type: ")
    assert err["details"]["file"] == str(broken)
    broken.write_text('name = "my-meter"\nmanufacturer = "Acme"\nmodel = X1\n')
    r = run(d, "meter", "template", "import", str(broken))
    assert r.exit_code == 1 and f"{broken}:3: TOML syntax" in r.stderr

    good = tmp_path / "good.toml"
    good.write_text(broken.read_text().replace("model = X1\n", 'model = "X1"\n') +
                    '\n[[points]]\nquantity = "power_total"\naddress = 10\ntype = "float32"\nunit = "kW"\n')  # fmt: skip
    t = run_json(d, "meter", "template", "import", str(good))
    assert (t["name"], t["shipped"], len(t["points"])) == ("my-meter", False, 1)
    r = run(d, "meter", "template", "import", str(good))
    assert r.exit_code == 1 and "ALREADY_EXISTS" in r.stderr
    assert "template my-meter imported" in ok(d, "meter", "template", "import", str(good), "--update")
    assert "template my-meter removed" in ok(d, "meter", "template", "rm", "my-meter", "-y")
    assert "my-meter" not in {x["name"] for x in run_json(d, "meter", "template", "list")["templates"]}
    r = run(d, "meter", "template", "import", str(tmp_path / "missing.toml"))
    assert r.exit_code == 2


def test_template_meter_creates_its_tags(d: RunningDaemon) -> None:
    with d.client() as c:
        c.call("Devices.Create", {"name": "sdm1", "protocol": "modbus_tcp", "host": "127.0.0.1", "port": 1,
                                  "enabled": False})  # fmt: skip
    m = run_json(d, "meter", "add", "tm1", "--type", "load", "--template", "eastron-sdm630", "--device", "sdm1",
                 "--ct", "100/5", "--prefix", "e/tm1")  # fmt: skip
    assert (m["template"], m["device"], m["tag_prefix"]) == ("eastron-sdm630", "sdm1", "e/tm1")
    assert m["points"]["power_total"] == "e/tm1/power_total"
    listed = run_json(d, "tag", "list", "e/tm1/**")["tags"]
    assert {t["spec"]["path"] for t in listed} == set(m["points"].values())
    out = ok(d, "meter", "show", "tm1")
    assert line_with(out, "template").split()[-1] == "eastron-sdm630"
    assert line_with(out, "e/tm1/power_total").split()[0] == "power_total"
    assert "meter tm1 removed with its template tags" in ok(d, "meter", "rm", "tm1", "--tags", "-y")
    assert run_json(d, "tag", "list", "e/tm1/**")["tags"] == []


@pytest.mark.parametrize(
    "args",
    [["energy"], ["meter"], ["meter", "template"], ["energy", "target"], ["energy", "dg", "--help"],
     ["energy", "solar", "--help"]],
)  # fmt: skip
def test_help_texts(args: list[str]) -> None:
    r = runner.invoke(app, [*args, "--help"] if args[-1] != "--help" else args)
    assert r.exit_code == 0 and "Usage" in r.stdout
