"""Sites and equipment through the API: CRUD, validation, hierarchy rules, persistence."""

from __future__ import annotations

from pathlib import Path

import pytest

from scadad.api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from scadad.api.messages import Site
from tests.conftest import RunningDaemon, start_daemon


def test_site_crud_round_trip(daemon: RunningDaemon) -> None:
    with daemon.client() as c:
        assert c.call("Sites.List") == {"sites": []}
        created = c.call(
            "Sites.Create",
            {"name": "north", "display_name": "North plant", "timezone": "Asia/Kolkata", "latitude": 19.07},
            result_type=Site,
        )
        assert created.name == "north" and created.timezone == "Asia/Kolkata" and created.latitude == 19.07
        assert created.created_at.tzinfo is not None
        c.call("Sites.Create", {"name": "south"})
        assert [s["name"] for s in c.call("Sites.List")["sites"]] == ["north", "south"]
        updated = c.call("Sites.Update", {"name": "north", "description": "grid-tied", "latitude": None})
        assert updated["description"] == "grid-tied" and updated["latitude"] is None
        assert updated["display_name"] == "North plant"  # fields left out are kept
        assert updated["updated_at"] > updated["created_at"]
        assert c.call("Sites.Delete", {"name": "south"}) == {"deleted": True}
        with pytest.raises(NotFound):
            c.call("Sites.Get", {"name": "south"})


def test_site_errors(daemon: RunningDaemon) -> None:
    with daemon.client() as c:
        c.call("Sites.Create", {"name": "a"})
        with pytest.raises(AlreadyExists) as e:
            c.call("Sites.Create", {"name": "a"})
        assert e.value.details["field"] == "params.name"
        with pytest.raises(InvalidArgument) as e:
            c.call("Sites.Create", {"name": "Has Space"})
        assert e.value.details["field"] == "params.name"
        with pytest.raises(InvalidArgument, match="unknown time zone"):
            c.call("Sites.Create", {"name": "b", "timezone": "Nowhere/Town"})
        with pytest.raises(InvalidArgument, match="unknown time zone"):
            c.call("Sites.Update", {"name": "a", "timezone": "Nowhere/Town"})
        with pytest.raises(NotFound):
            c.call("Sites.Update", {"name": "zz", "description": "x"})
        with pytest.raises(NotFound):
            c.call("Sites.Delete", {"name": "zz"})
        assert [s["name"] for s in c.call("Sites.List")["sites"]] == ["a"]


def test_equipment_hierarchy(daemon: RunningDaemon) -> None:
    with daemon.client() as c:
        c.call("Sites.Create", {"name": "p1"})
        c.call("Equipment.Create", {"site": "p1", "name": "incomer", "kind": "meter"})
        c.call("Equipment.Create", {"site": "p1", "name": "feeder-1", "kind": "feeder", "parent": "incomer"})
        c.call("Equipment.Create", {"site": "p1", "name": "dg1", "kind": "generator", "manufacturer": "Cummins"})
        with pytest.raises(NotFound, match="parent equipment 'ghost'"):
            c.call("Equipment.Create", {"site": "p1", "name": "x", "parent": "ghost"})
        with pytest.raises(InvalidArgument) as e:
            c.call("Equipment.Create", {"site": "p1", "name": "y", "kind": "spaceship"})
        assert e.value.details["field"] == "params.kind"
        with pytest.raises(NotFound, match="no site named 'nope'"):
            c.call("Equipment.Create", {"site": "nope", "name": "z"})
        with pytest.raises(AlreadyExists):
            c.call("Equipment.Create", {"site": "p1", "name": "dg1"})
        assert c.call("Sites.Get", {"name": "p1"})["equipment_count"] == 3
        meters = c.call("Equipment.List", {"site": "p1", "kind": "meter"})["equipment"]
        assert [e["name"] for e in meters] == ["incomer"]
        with pytest.raises(InvalidArgument, match="cycle"):
            c.call("Equipment.Update", {"site": "p1", "name": "incomer", "parent": "feeder-1"})
        with pytest.raises(FailedPrecondition, match="has children"):
            c.call("Equipment.Delete", {"site": "p1", "name": "incomer"})
        with pytest.raises(FailedPrecondition, match="still has 3 equipment"):
            c.call("Sites.Delete", {"name": "p1"})
        moved = c.call("Equipment.Update", {"site": "p1", "name": "feeder-1", "parent": None, "location": "MCC-2"})
        assert moved["parent"] is None and moved["location"] == "MCC-2" and moved["kind"] == "feeder"
        c.call("Equipment.Delete", {"site": "p1", "name": "incomer"})
        assert c.call("Sites.Get", {"name": "p1"})["equipment_count"] == 2


def test_plant_survives_restart(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "h")
    with d.client() as c:
        c.call("Sites.Create", {"name": "keep", "timezone": "Europe/Berlin"})
        c.call("Equipment.Create", {"site": "keep", "name": "pump-1", "kind": "pump"})
        c.call("Equipment.Create", {"site": "keep", "name": "motor-1", "kind": "motor", "parent": "pump-1"})
        before = c.call("Equipment.List")
    assert d.stop() == 0
    d = start_daemon(tmp_path / "h")
    try:
        with d.client() as c:
            assert c.call("Equipment.List") == before
            assert c.call("Sites.Get", {"name": "keep"})["equipment_count"] == 2
    finally:
        assert d.stop() == 0


def test_describe_lists_every_method_with_params_and_permission(daemon: RunningDaemon) -> None:
    with daemon.client() as c:
        desc = c.call("System.Describe")
    methods = {m["name"]: m for m in desc["methods"]}
    for name in [
        "System.Ping", "System.Describe", "System.Status", "System.Heartbeat", "Stream.Cancel",
        "Db.Status", "Db.Migrate",
        "Sites.List", "Sites.Get", "Sites.Create", "Sites.Update", "Sites.Delete",
        "Equipment.List", "Equipment.Get", "Equipment.Create", "Equipment.Update", "Equipment.Delete",
    ]:  # fmt: skip
        assert name in methods, name
        m = methods[name]
        assert ("." in m["permission"] or m["permission"] in ("public", "self")) and m["summary"]
        assert m["params"] and m["result"]
    create = methods["Sites.Create"]
    props = create["params"]["$defs"]["SiteCreate"]["properties"]
    assert props["name"]["pattern"] == "^[a-z0-9_-]+$"
    assert create["mutates"] is True and create["permission"] == "sites.configure"
    assert methods["System.Heartbeat"]["kind"] == "stream"
    assert methods["Sites.List"]["mutates"] is False
