"""The same migrations and the same daemon code against the real PostgreSQL server."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import inspect

from scadad.store import migrations
from scadad.store.database import Database
from tests.conftest import SEED_TABLES, spawn, start_daemon, write_config


def test_migrations_run_on_postgresql(pg_schema: str) -> None:
    db = Database(pg_schema)
    try:
        assert db.dialect == "postgresql"
        applied = migrations.migrate(db)
        assert len(applied) == len(migrations.discover())
        schema = pg_schema.rsplit("%3D", 1)[1]
        tables = set(inspect(db.engine).get_table_names(schema=schema))
        assert SEED_TABLES <= tables
        assert migrations.migrate(db) == []
        assert all(s.applied_us and s.checksum_ok for s in migrations.status(db))
        assert db.server_version().startswith("PostgreSQL ")
    finally:
        db.close()


def test_daemon_serves_sites_from_postgresql_and_holds_the_store(pg_schema: str, tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "a", store_url=pg_schema)
    try:
        with d.client() as c:
            c.call("Sites.Create", {"name": "pg-site", "timezone": "Europe/Berlin"})
            c.call("Equipment.Create", {"site": "pg-site", "name": "m1", "kind": "meter"})
            st = c.call("Db.Status")
            assert st["dialect"] == "postgresql" and st["current_version"] == st["latest_version"] >= 1
            status = c.call("System.Status")
            assert {s["name"]: s["state"] for s in status["subsystems"]}["store"] == "ok"
        # A second daemon on the same PostgreSQL schema is refused, naming the holder.
        cfg = write_config(tmp_path / "b", store_url=pg_schema)
        proc = spawn(cfg, tmp_path / "b")
        assert proc.wait(20) == 3
        log = (tmp_path / "b" / "scadad.log").read_text()
        assert f"scadad pid={d.proc.pid}" in log
    finally:
        assert d.stop() == 0
    # Restarted on the same store, the plant is still there.
    d2 = start_daemon(tmp_path / "c", store_url=pg_schema)
    try:
        with d2.client() as c:
            site = c.call("Sites.Get", {"name": "pg-site"})
            assert site["timezone"] == "Europe/Berlin" and site["equipment_count"] == 1
            audit = c.call("Db.Status")
            assert audit["dialect"] == "postgresql"
    finally:
        assert d2.stop() == 0


def test_devices_and_tags_on_postgresql_survive_a_restart(pg_schema: str, tmp_path: Path) -> None:
    """The acquisition catalog (devices, scan groups, tags) round-trips through PostgreSQL."""
    sim = '[simulator]\nenabled = true\ntypes = ["pump_plc"]\n'
    d = start_daemon(tmp_path / "a", store_url=pg_schema, extra=sim)
    try:
        with d.client() as c:
            deadline = time.monotonic() + 10
            while c.call("Tags.Read", {"paths": ["sim/pump-plc-0/tank_level"]})["values"][0]["quality"] != "GOOD":
                assert time.monotonic() < deadline, d.log_text()
                time.sleep(0.1)
            c.call("ScanGroups.Set", {"name": "slow", "interval_ms": 5000})
            c.call("Tags.Create", {"path": "ops/target", "source": "memory", "data_type": "float64",
                                   "initial_value": "3.5", "scan_group": "slow", "retention_days": 30})  # fmt: skip
            exported = c.call("Tags.Export", {"pattern": "**"})["tags"]
            devices = c.call("Devices.Export", {})["devices"]
    finally:
        assert d.stop() == 0, d.log_text()
    d = start_daemon(tmp_path / "b", store_url=pg_schema)
    try:
        with d.client() as c:
            assert c.call("Tags.Export", {"pattern": "**"})["tags"] == exported
            assert c.call("Devices.Export", {})["devices"] == devices
            assert c.call("Tags.Read", {"paths": ["ops/target"]})["values"][0]["value"] == 3.5
            groups = {g["name"]: g for g in c.call("ScanGroups.List", {})["scan_groups"]}
            assert groups["slow"]["interval_ms"] == 5000 and groups["slow"]["tag_count"] == 1
    finally:
        assert d.stop() == 0, d.log_text()


def test_alarm_journal_and_state_on_postgresql(pg_schema: str, tmp_path: Path) -> None:
    """Rules, the journal (history, KPIs) and the restored alarm state through PostgreSQL."""
    d = start_daemon(tmp_path / "a", store_url=pg_schema)
    try:
        with d.client() as c:
            c.call("Tags.Create", {"path": "ops/temp", "source": "memory", "data_type": "float64",
                                   "writable": True, "initial_value": "20", "units": "degC"})  # fmt: skip
            c.call("AlarmRules.Create", {"tag": "ops/temp", "kind": "hi", "limit": 60, "priority": "critical"})
            for v in (70, 20, 75, 20, 80):
                c.call("Tags.Write", {"path": "ops/temp", "value": v})
            c.call("Alarms.Acknowledge", {"alarms": ["ops/temp:hi"], "comment": "on it"})
            events = c.call("Alarms.History", {"alarm": "ops/temp:hi"})["events"]
            assert [(e["event"], e["state"], e["value"]) for e in events] == [
                ("activated", "unack_active", 70.0), ("cleared", "rtn_unack", 20.0),
                ("activated", "unack_active", 75.0), ("cleared", "rtn_unack", 20.0),
                ("activated", "unack_active", 80.0), ("acknowledged", "ack_active", 80.0),
            ]  # fmt: skip
            kpi = c.call("Alarms.Kpis", {})
            assert kpi["activations"] == 3 and [b["count"] for b in kpi["bad_actors"]] == [3]
            assert [x["name"] for x in kpi["chattering"]] == ["ops/temp:hi"]
            before = c.call("Alarms.List", {})["alarms"]
    finally:
        assert d.stop() == 0, d.log_text()
    d = start_daemon(tmp_path / "a", store_url=pg_schema)
    try:
        with d.client() as c:
            after = c.call("Alarms.List", {})["alarms"]
            assert [(a["name"], a["state"], a["acked_by"], a["active_since"]) for a in after] == [
                (a["name"], a["state"], a["acked_by"], a["active_since"]) for a in before
            ]
            assert after[0]["state"] == "ack_active"
    finally:
        assert d.stop() == 0, d.log_text()
