"""The same migrations and the same daemon code against the real PostgreSQL server."""

from __future__ import annotations

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
