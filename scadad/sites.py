"""Sites and equipment: the plant's physical hierarchy (the seed's ScadaCore).

The daemon is the only writer of its store, so it keeps the whole hierarchy in memory
and answers reads from there; every change goes to the store first and reaches the
in-memory model only once committed.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from scadad.api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from scadad.api.messages import (
    Deleted,
    Empty,
    Equipment,
    EquipmentCreate,
    EquipmentList,
    EquipmentListParams,
    EquipmentRef,
    EquipmentUpdate,
    Site,
    SiteCreate,
    SiteList,
    SiteRef,
    SiteUpdate,
)
from scadad.api.registry import CallContext, Service, rpc
from scadad.clock import from_us, now_us
from scadad.store.database import Database


def _check_timezone(tz: str) -> None:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidArgument(
            f"unknown time zone {tz!r} (use an IANA name such as Europe/Berlin)", "params.timezone"
        ) from None


_encode = msgspec.json.Encoder().encode


class PlantModel:
    """Sites and equipment in memory, backed by the store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.site_ids: dict[str, int] = {}
        self.sites: dict[str, Site] = {}
        self.equipment_ids: dict[tuple[str, str], int] = {}
        self.equipment: dict[tuple[str, str], Equipment] = {}
        self._site_list: msgspec.Raw | None = None
        self.loaded = False

    def _require_loaded(self) -> None:
        if not self.loaded:
            raise FailedPrecondition("the store's schema is behind; run `scadactl db migrate` first")

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Read the whole hierarchy from the store (store thread)."""
        with self.db.engine.connect() as conn:
            site_rows = conn.execute(
                text(
                    "SELECT id, name, display_name, description, timezone, latitude, longitude,"
                    " created_us, updated_us FROM sites"
                )
            ).all()
            eq_rows = conn.execute(
                text(
                    "SELECT e.id, s.name, e.name, e.kind, p.name, e.description, e.manufacturer, e.model,"
                    " e.serial_number, e.location, e.created_us, e.updated_us"
                    " FROM equipment e JOIN sites s ON s.id = e.site_id"
                    " LEFT JOIN equipment p ON p.id = e.parent_id"
                )
            ).all()
        self.site_ids.clear()
        self.sites.clear()
        self.equipment_ids.clear()
        self.equipment.clear()
        counts: dict[str, int] = {}
        for r in eq_rows:
            key = (r[1], r[2])
            self.equipment_ids[key] = r[0]
            self.equipment[key] = Equipment(
                site=r[1], name=r[2], kind=r[3], parent=r[4], description=r[5] or "",
                manufacturer=r[6] or "", model=r[7] or "", serial_number=r[8] or "", location=r[9] or "",
                created_at=from_us(r[10]), updated_at=from_us(r[11]),
            )  # fmt: skip
            counts[r[1]] = counts.get(r[1], 0) + 1
        for r in site_rows:
            self.site_ids[r[1]] = r[0]
            self.sites[r[1]] = Site(
                name=r[1], display_name=r[2] or "", description=r[3] or "", timezone=r[4] or "UTC",
                latitude=r[5], longitude=r[6], equipment_count=counts.get(r[1], 0),
                created_at=from_us(r[7]), updated_at=from_us(r[8]),
            )  # fmt: skip
        self._site_list = None
        self.loaded = True

    # ------------------------------------------------------------------ sites

    def site_list(self) -> msgspec.Raw:
        """The encoded SiteList, kept until the next change: the list is read far more
        often (every console refresh) than it changes."""
        self._require_loaded()
        if self._site_list is None:
            self._site_list = msgspec.Raw(_encode(SiteList(sites=[self.sites[n] for n in sorted(self.sites)])))
        return self._site_list

    def get_site(self, name: str) -> Site:
        self._require_loaded()
        try:
            return self.sites[name]
        except KeyError:
            raise NotFound(f"no site named {name!r}", {"field": "params.name"}) from None

    async def create_site(self, p: SiteCreate) -> Site:
        self._require_loaded()
        if p.name in self.sites:
            raise AlreadyExists(f"site {p.name!r} already exists", {"field": "params.name"})
        _check_timezone(p.timezone)
        ts = now_us()
        row = {
            "name": p.name, "display_name": p.display_name, "description": p.description,
            "timezone": p.timezone, "latitude": p.latitude, "longitude": p.longitude, "ts": ts,
        }  # fmt: skip
        site_id = await self.db.run(self._insert, "sites", row, f"site {p.name!r}")
        site = Site(
            name=p.name, display_name=p.display_name, description=p.description, timezone=p.timezone,
            latitude=p.latitude, longitude=p.longitude, equipment_count=0,
            created_at=from_us(ts), updated_at=from_us(ts),
        )  # fmt: skip
        self.site_ids[p.name] = site_id
        self.sites[p.name] = site
        self._site_list = None
        return site

    async def update_site(self, p: SiteUpdate) -> Site:
        old = self.get_site(p.name)
        changes = _set_fields(p, exclude={"name"})
        if "timezone" in changes:
            _check_timezone(changes["timezone"])
        if not changes:
            return old
        ts = now_us()
        await self.db.run(self._update, "sites", self.site_ids[p.name], changes, ts)
        site = msgspec.structs.replace(old, **changes, updated_at=from_us(ts))
        self.sites[p.name] = site
        self._site_list = None
        return site

    async def delete_site(self, name: str) -> None:
        site = self.get_site(name)
        if site.equipment_count:
            raise FailedPrecondition(
                f"site {name!r} still has {site.equipment_count} equipment; delete or move them first",
                {"field": "params.name"},
            )
        await self.db.run(self._delete, "sites", self.site_ids[name], f"site {name!r}")
        del self.sites[name]
        del self.site_ids[name]
        self._site_list = None

    def _bump_count(self, site: str, delta: int) -> None:
        s = self.sites[site]
        self.sites[site] = msgspec.structs.replace(s, equipment_count=s.equipment_count + delta)
        self._site_list = None

    # ------------------------------------------------------------------ equipment

    def list_equipment(self, p: EquipmentListParams) -> EquipmentList:
        if p.site is not None:
            self.get_site(p.site)
        items = [
            e
            for key, e in sorted(self.equipment.items())
            if (p.site is None or key[0] == p.site) and (p.kind is None or e.kind == p.kind)
        ]
        return EquipmentList(equipment=items)

    def get_equipment(self, site: str, name: str) -> Equipment:
        try:
            return self.equipment[(site, name)]
        except KeyError:
            self.get_site(site)
            raise NotFound(f"no equipment {name!r} at site {site!r}", {"field": "params.name"}) from None

    def _parent_id(self, site: str, parent: str | None, field: str = "params.parent") -> int | None:
        if parent is None:
            return None
        try:
            return self.equipment_ids[(site, parent)]
        except KeyError:
            raise NotFound(f"parent equipment {parent!r} does not exist at site {site!r}", {"field": field}) from None

    async def create_equipment(self, p: EquipmentCreate) -> Equipment:
        self.get_site(p.site)
        if (p.site, p.name) in self.equipment:
            raise AlreadyExists(f"equipment {p.name!r} already exists at site {p.site!r}", {"field": "params.name"})
        parent_id = self._parent_id(p.site, p.parent)
        ts = now_us()
        row = {
            "site_id": self.site_ids[p.site], "parent_id": parent_id, "name": p.name, "kind": p.kind,
            "description": p.description, "manufacturer": p.manufacturer, "model": p.model,
            "serial_number": p.serial_number, "location": p.location, "ts": ts,
        }  # fmt: skip
        eq_id = await self.db.run(self._insert, "equipment", row, f"equipment {p.name!r}")
        eq = Equipment(
            site=p.site, name=p.name, kind=p.kind, parent=p.parent, description=p.description,
            manufacturer=p.manufacturer, model=p.model, serial_number=p.serial_number, location=p.location,
            created_at=from_us(ts), updated_at=from_us(ts),
        )  # fmt: skip
        self.equipment_ids[(p.site, p.name)] = eq_id
        self.equipment[(p.site, p.name)] = eq
        self._bump_count(p.site, +1)
        return eq

    async def update_equipment(self, p: EquipmentUpdate) -> Equipment:
        old = self.get_equipment(p.site, p.name)
        changes = _set_fields(p, exclude={"site", "name"})
        if not changes:
            return old
        db_changes: dict[str, Any] = {k: v for k, v in changes.items() if k != "parent"}
        if "parent" in changes:
            parent = changes["parent"]
            db_changes["parent_id"] = self._parent_id(p.site, parent)
            self._refuse_cycle(p.site, p.name, parent)
        ts = now_us()
        await self.db.run(self._update, "equipment", self.equipment_ids[(p.site, p.name)], db_changes, ts)
        eq = msgspec.structs.replace(old, **changes, updated_at=from_us(ts))
        self.equipment[(p.site, p.name)] = eq
        return eq

    def _refuse_cycle(self, site: str, name: str, parent: str | None) -> None:
        seen = {name}
        while parent is not None:
            if parent in seen:
                raise InvalidArgument(f"making {parent!r} the parent of {name!r} would create a cycle", "params.parent")
            seen.add(parent)
            parent = self.equipment[(site, parent)].parent

    async def delete_equipment(self, site: str, name: str) -> None:
        self.get_equipment(site, name)
        children = sorted(n for (s, n), e in self.equipment.items() if s == site and e.parent == name)
        if children:
            raise FailedPrecondition(
                f"equipment {name!r} has children ({', '.join(children)}); delete or re-parent them first",
                {"field": "params.name", "children": children},
            )
        await self.db.run(self._delete, "equipment", self.equipment_ids[(site, name)], f"equipment {name!r}")
        del self.equipment[(site, name)]
        del self.equipment_ids[(site, name)]
        self._bump_count(site, -1)

    # ------------------------------------------------------------------ store thread

    def _insert(self, table: str, row: dict[str, Any], what: str) -> int:
        cols = [k for k in row if k != "ts"]
        sql = (
            f"INSERT INTO {table} ({', '.join(cols)}, created_us, updated_us) "
            f"VALUES ({', '.join(':' + c for c in cols)}, :ts, :ts) RETURNING id"
        )
        try:
            with self.db.engine.begin() as conn:
                return int(conn.execute(text(sql), row).scalar_one())
        except IntegrityError as exc:
            raise AlreadyExists(f"{what} conflicts with a stored row: {exc.orig}") from None

    def _update(self, table: str, row_id: int, changes: dict[str, Any], ts: int) -> None:
        sets = ", ".join(f"{k} = :{k}" for k in changes)
        with self.db.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE {table} SET {sets}, updated_us = :ts WHERE id = :id"), {**changes, "ts": ts, "id": row_id}
            )

    def _delete(self, table: str, row_id: int, what: str) -> None:
        try:
            with self.db.engine.begin() as conn:
                conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})
        except IntegrityError as exc:
            raise FailedPrecondition(f"{what} is still referenced: {exc.orig}") from None


def _set_fields(params: msgspec.Struct, exclude: set[str]) -> dict[str, Any]:
    """The fields a caller actually sent in an Update (UNSET ones are left alone)."""
    return {
        f: getattr(params, f)
        for f in params.__struct_fields__
        if f not in exclude and getattr(params, f) is not msgspec.UNSET
    }


class SitesService(Service):
    """Sites.*: the plants this daemon supervises."""

    name = "Sites"

    def __init__(self, plant: PlantModel) -> None:
        self.plant = plant

    @rpc(permission="sites.read")
    async def list(self, ctx: CallContext, params: Empty) -> SiteList:
        """All sites, by name."""
        return self.plant.site_list()  # type: ignore[return-value]  # pre-encoded SiteList

    @rpc(permission="sites.read")
    async def get(self, ctx: CallContext, params: SiteRef) -> Site:
        """One site by name."""
        return self.plant.get_site(params.name)

    @rpc(permission="sites.configure", mutates=True)
    async def create(self, ctx: CallContext, params: SiteCreate) -> Site:
        """Add a site; its name is the first segment of its tag paths."""
        return await self.plant.create_site(params)

    @rpc(permission="sites.configure", mutates=True)
    async def update(self, ctx: CallContext, params: SiteUpdate) -> Site:
        """Change a site's fields; fields left out are kept."""
        return await self.plant.update_site(params)

    @rpc(permission="sites.configure", mutates=True)
    async def delete(self, ctx: CallContext, params: SiteRef) -> Deleted:
        """Remove a site that has no equipment left."""
        await self.plant.delete_site(params.name)
        return Deleted()


class EquipmentService(Service):
    """Equipment.*: meters, generators, pumps ... at a site, optionally nested."""

    name = "Equipment"

    def __init__(self, plant: PlantModel) -> None:
        self.plant = plant

    @rpc(permission="sites.read")
    async def list(self, ctx: CallContext, params: EquipmentListParams) -> EquipmentList:
        """Equipment, optionally of one site or one kind."""
        return self.plant.list_equipment(params)

    @rpc(permission="sites.read")
    async def get(self, ctx: CallContext, params: EquipmentRef) -> Equipment:
        """One piece of equipment by site and name."""
        return self.plant.get_equipment(params.site, params.name)

    @rpc(permission="sites.configure", mutates=True)
    async def create(self, ctx: CallContext, params: EquipmentCreate) -> Equipment:
        """Add equipment to a site, optionally under a parent."""
        return await self.plant.create_equipment(params)

    @rpc(permission="sites.configure", mutates=True)
    async def update(self, ctx: CallContext, params: EquipmentUpdate) -> Equipment:
        """Change equipment fields; `parent: null` moves it to the top level."""
        return await self.plant.update_equipment(params)

    @rpc(permission="sites.configure", mutates=True)
    async def delete(self, ctx: CallContext, params: EquipmentRef) -> Deleted:
        """Remove equipment that has no children."""
        await self.plant.delete_equipment(params.site, params.name)
        return Deleted()
