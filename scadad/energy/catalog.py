"""Meter templates, meters, generators, renewable sources and targets: validated,
stored, and kept in memory (the store is written first, memory changes after commit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from scadad.api.energy_messages import GeneratorSpec, MeterSpec, MeterUpdate, RenewableSpec
from scadad.api.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from scadad.api.messages import SiteCreate
from scadad.api.tag_messages import TagSpec
from scadad.clock import now_us
from scadad.energy.templates import SHIPPED, MeterTemplate, TemplateError, load_dir, parse_template, template_tags
from scadad.sites import PlantModel
from scadad.store.database import Database
from scadad.tags.catalog import Catalog, Changed

SOURCE_TYPES = frozenset({"grid", "generator", "solar"})
_METER_COLS = (
    "name", "site_id", "parent_id", "device_id", "template_id", "meter_type", "description", "ct_primary",
    "ct_secondary", "pt_primary", "pt_secondary", "ratio_applied_in_meter", "nominal_voltage", "tariff_zone",
    "interval_s", "enabled", "points_json", "tag_prefix",
)  # fmt: skip


@dataclass(slots=True)
class TemplateRec:
    id: int
    template: MeterTemplate
    source_toml: str
    shipped: bool


@dataclass(slots=True)
class MeterRec:
    id: int
    spec: MeterSpec  # site filled in; points = every quantity -> tag path (template ones included)
    created_us: int
    updated_us: int
    children: list[str] = field(default_factory=list)


@dataclass(slots=True)
class TargetRec:
    meter: str
    period: str
    start: date
    target_kwh: float


class EnergyCatalog:
    """The energy configuration (loop thread reads, store thread writes)."""

    def __init__(self, db: Database, tags: Catalog, plant: PlantModel, default_site: str, default_tz: str) -> None:
        self.db = db
        self.tags = tags
        self.plant = plant
        self.default_site = default_site
        self.default_tz = default_tz
        self.templates: dict[str, TemplateRec] = {}
        self.meters: dict[str, MeterRec] = {}
        self.generators: dict[str, GeneratorSpec] = {}
        self.renewables: dict[str, RenewableSpec] = {}
        self.targets: dict[tuple[str, str, date], TargetRec] = {}
        self.loaded = False
        self.template_errors: list[str] = []
        self._tree: list[tuple[MeterRec, int]] | None = None
        self.version = 0  # bumped on every meter change (what caches key on)

    # ------------------------------------------------------------------ loading (store thread)

    def load(self) -> None:
        """Read everything; (re)store the shipped templates from etc/meter-templates."""
        self.template_errors = []
        shipped: list[MeterTemplate] = []
        try:
            shipped = load_dir(SHIPPED)
        except TemplateError as exc:  # a broken shipped file must not stop the daemon
            self.template_errors.append(str(exc))
        ts = now_us()
        with self.db.engine.begin() as conn:
            for t in shipped:
                src = (SHIPPED / f"{t.name}.toml").read_text() if (SHIPPED / f"{t.name}.toml").exists() else t.source
                row = self._template_row(t, src, True)
                old = conn.execute(text("SELECT id FROM meter_templates WHERE name = :name"), {"name": t.name}).first()
                if old is None:
                    conn.execute(
                        text(
                            "INSERT INTO meter_templates (name, manufacturer, model, source_toml, points_json, shipped,"
                            " created_us, updated_us) VALUES (:name, :manufacturer, :model, :source_toml, :points_json,"
                            " :shipped, :ts, :ts)"
                        ),
                        {**row, "ts": ts},
                    )
                else:
                    conn.execute(
                        text(
                            "UPDATE meter_templates SET source_toml = :source_toml, points_json = :points_json,"
                            " manufacturer = :manufacturer, model = :model, updated_us = :ts"
                            " WHERE id = :id AND shipped = :shipped AND source_toml <> :source_toml"
                        ),
                        {**row, "ts": ts, "id": old[0]},
                    )
            trows = conn.execute(text("SELECT id, name, source_toml, shipped FROM meter_templates")).all()
            mrows = conn.execute(
                text(f"SELECT id, {', '.join(_METER_COLS)}, created_us, updated_us FROM energy_meters ORDER BY id")
            ).all()
            grows = conn.execute(
                text(
                    "SELECT g.rated_kw, g.rated_kva, g.tank_capacity_l, g.fuel_curve_f0, g.fuel_curve_f1,"
                    " g.co2_kg_per_l, m.name FROM diesel_generators g JOIN energy_meters m ON m.id = g.meter_id"
                )
            ).all()
            rrows = conn.execute(
                text(
                    "SELECT r.kind, r.capacity_kwp, r.grid_emission_factor_kg_per_kwh, r.factor_source, m.name"
                    " FROM renewable_sources r JOIN energy_meters m ON m.id = r.meter_id"
                )
            ).all()
            tgrows = conn.execute(
                text(
                    "SELECT m.name, t.period, t.period_start_us, t.target_kwh FROM energy_targets t"
                    " JOIN energy_meters m ON m.id = t.meter_id"
                )
            ).all()
        self.templates = {}
        for tid, name, src, is_shipped in trows:
            try:
                self.templates[name] = TemplateRec(tid, parse_template(src, f"template {name}"), src, bool(is_shipped))
            except TemplateError as exc:
                self.template_errors.append(str(exc))
        template_names = {r.id: n for n, r in self.templates.items()}
        device_names = {r.id: n for n, r in self.tags.devices.items()}
        site_names = {i: n for n, i in self.plant.site_ids.items()}
        ids: dict[int, str] = {r[0]: r[1] for r in mrows}
        self.meters = {}
        for r in mrows:
            row = dict(zip(_METER_COLS, r[1 : 1 + len(_METER_COLS)], strict=True))
            spec = MeterSpec(
                name=row["name"], type=row["meter_type"], parent=ids.get(row["parent_id"]),
                site=site_names.get(row["site_id"], self.default_site), description=row["description"] or "",
                template=template_names.get(row["template_id"]), device=device_names.get(row["device_id"]),
                tag_prefix=row["tag_prefix"], points=json.loads(row["points_json"] or "{}"),
                ct_primary=row["ct_primary"], ct_secondary=row["ct_secondary"], pt_primary=row["pt_primary"],
                pt_secondary=row["pt_secondary"], ratio_applied_in_meter=bool(row["ratio_applied_in_meter"]),
                nominal_voltage=row["nominal_voltage"], tariff_zone=row["tariff_zone"], interval_s=row["interval_s"],
                enabled=bool(row["enabled"]),
            )  # fmt: skip
            self.meters[spec.name] = MeterRec(r[0], spec, r[-2], r[-1])
        self._link_children()
        self.generators = {
            g[6]: GeneratorSpec(
                meter=g[6],
                rated_kw=g[0] or 1.0,
                rated_kva=g[1],
                tank_l=g[2],
                f0=g[3] if g[3] is not None else 0.08415,
                f1=g[4] if g[4] is not None else 0.246,
                co2_kg_per_l=g[5],
            )  # fmt: skip
            for g in grows
        }
        self.renewables = {
            r[4]: RenewableSpec(
                meter=r[4], kind=r[0], capacity_kwp=r[1], emission_factor_kg_per_kwh=r[2], factor_source=r[3]
            )  # fmt: skip
            for r in rrows
        }
        self.targets = {}
        for name, period, start_us, kwh in tgrows:
            d = date.fromisoformat(_local_date(start_us, self.tz_of(name)))
            self.targets[(name, period, d)] = TargetRec(name, period, d, kwh)
        self.loaded = True

    @staticmethod
    def _template_row(t: MeterTemplate, src: str, shipped: bool) -> dict[str, Any]:
        points = [
            {"quantity": p.quantity, "address": p.address, "function": p.function, "type": p.data_type}
            for p in t.points
        ]
        return {"name": t.name, "manufacturer": t.manufacturer, "model": t.model, "source_toml": src,
                "points_json": json.dumps(points), "shipped": shipped}  # fmt: skip

    def _link_children(self) -> None:
        self._tree = None
        self.version += 1
        for m in self.meters.values():
            m.children = []
        for m in self.meters.values():
            if m.spec.parent and m.spec.parent in self.meters:
                self.meters[m.spec.parent].children.append(m.spec.name)
        for m in self.meters.values():
            # Sources first (they feed the node), then what it feeds, each by name.
            m.children.sort(key=lambda c: (self.meters[c].spec.type not in SOURCE_TYPES, c))

    def require(self) -> None:
        if not self.loaded:
            raise FailedPrecondition("the store's schema is behind; run `scadactl db migrate` first")

    # ------------------------------------------------------------------ lookups

    def meter(self, name: str, field_name: str = "params.name") -> MeterRec:
        self.require()
        try:
            return self.meters[name]
        except KeyError:
            raise NotFound(f"no meter named {name!r} (see `scadactl meter list`)", {"field": field_name}) from None

    def template(self, name: str, field_name: str = "params.name") -> TemplateRec:
        self.require()
        try:
            return self.templates[name]
        except KeyError:
            raise NotFound(f"no meter template {name!r}", {"field": field_name}) from None

    def tz_of(self, meter: str) -> str:
        rec = self.meters.get(meter)
        site = rec.spec.site if rec else self.default_site
        s = self.plant.sites.get(site or "")
        return s.timezone if s else self.default_tz

    def tree(self) -> list[tuple[MeterRec, int]]:
        """Meters depth-first from the roots, with their depth (cached until a meter changes)."""
        if self._tree is not None:
            return self._tree
        out: list[tuple[MeterRec, int]] = []

        def walk(name: str, depth: int) -> None:
            rec = self.meters[name]
            out.append((rec, depth))
            for c in rec.children:
                walk(c, depth + 1)

        roots = sorted(n for n, m in self.meters.items() if not m.spec.parent or m.spec.parent not in self.meters)
        for r in roots:
            walk(r, 0)
        self._tree = out
        return out

    # ------------------------------------------------------------------ templates

    async def import_template(self, toml_text: str, update: bool) -> TemplateRec:
        self.require()
        try:
            t = parse_template(toml_text, "params.toml")
        except TemplateError as exc:
            raise InvalidArgument(str(exc), "params.toml") from None
        old = self.templates.get(t.name)
        if old is not None and not update:
            raise AlreadyExists(f"meter template {t.name!r} exists (import with update)", {"field": "params.toml"})
        row = self._template_row(t, toml_text, False)
        ts = now_us()
        tid = await self.db.run(self._upsert_template, old.id if old else None, row, ts)
        rec = TemplateRec(tid, t, toml_text, False)
        self.templates[t.name] = rec
        return rec

    def _upsert_template(self, tid: int | None, row: dict[str, Any], ts: int) -> int:
        with self.db.engine.begin() as conn:
            if tid is None:
                return int(
                    conn.execute(
                        text(
                            "INSERT INTO meter_templates (name, manufacturer, model, source_toml, points_json, shipped,"
                            " created_us, updated_us) VALUES (:name, :manufacturer, :model, :source_toml,"
                            " :points_json, :shipped, :ts, :ts) RETURNING id"
                        ),
                        {**row, "ts": ts},
                    ).scalar_one()
                )
            conn.execute(
                text(
                    "UPDATE meter_templates SET manufacturer = :manufacturer, model = :model,"
                    " source_toml = :source_toml, points_json = :points_json, shipped = :shipped, updated_us = :ts"
                    " WHERE id = :id"
                ),
                {**row, "ts": ts, "id": tid},
            )
            return tid

    async def delete_template(self, name: str) -> None:
        rec = self.template(name)
        users = sorted(m.spec.name for m in self.meters.values() if m.spec.template == name)
        if users:
            raise FailedPrecondition(f"template {name!r} is used by meter(s) {', '.join(users[:5])}",
                                     {"field": "params.name"})  # fmt: skip
        await self.db.run(self._delete, "meter_templates", rec.id)
        del self.templates[name]

    # ------------------------------------------------------------------ meters

    def _check(self, spec: MeterSpec, old: MeterRec | None = None) -> MeterSpec:
        if spec.parent is not None:
            if spec.parent not in self.meters:
                raise InvalidArgument(f"no meter {spec.parent!r} to be the parent", "params.parent")
            p = spec.parent
            seen = {spec.name}
            while p is not None:
                if p in seen:
                    raise InvalidArgument(f"parent {spec.parent!r} would make a cycle", "params.parent")
                seen.add(p)
                p = self.meters[p].spec.parent if p in self.meters else None
        if spec.template is not None:
            if spec.template not in self.templates:
                raise InvalidArgument(f"no meter template {spec.template!r} (see `scadactl meter template list`)",
                                      "params.template")  # fmt: skip
            if spec.device is None:
                raise InvalidArgument("a meter with a template needs the device to read", "params.device")
        if spec.device is not None and spec.device not in self.tags.devices:
            raise InvalidArgument(f"no device {spec.device!r}", "params.device")
        for q, path in spec.points.items():
            if path not in self.tags.tags and not (spec.template and path.startswith(self.prefix(spec) + "/")):
                raise InvalidArgument(f"no tag {path!r}", f"params.points.{q}")
        site = spec.site or self.default_site
        return msgspec.structs.replace(spec, site=site)

    def prefix(self, spec: MeterSpec) -> str:
        return spec.tag_prefix or f"{spec.site or self.default_site}/energy/{spec.name}"

    def template_specs(self, spec: MeterSpec) -> list[TagSpec]:
        if spec.template is None or spec.device is None:
            return []
        t = self.templates[spec.template].template
        return template_tags(
            t, prefix=self.prefix(spec), device=spec.device, ct=(spec.ct_primary, spec.ct_secondary),
            pt=(spec.pt_primary, spec.pt_secondary), applied_in_meter=spec.ratio_applied_in_meter,
            address_base=self.tags.devices[spec.device].spec.address_base,
        )  # fmt: skip

    async def _ensure_site(self, name: str) -> int:
        if name not in self.plant.site_ids:
            await self.plant.create_site(SiteCreate(name=name, timezone=self.default_tz))
        return self.plant.site_ids[name]

    async def create_meter(self, spec: MeterSpec) -> tuple[MeterRec, Changed]:
        self.require()
        if spec.name in self.meters:
            raise AlreadyExists(f"meter {spec.name!r} already exists", {"field": "params.name"})
        spec = self._check(spec)
        changed = Changed()
        tag_specs = self.template_specs(spec)
        points = {p.path.rsplit("/", 1)[1]: p.path for p in tag_specs}
        points.update(spec.points)
        if tag_specs:
            _, changed = await self.tags.import_tags(tag_specs, update=True, dry_run=False)
        spec = msgspec.structs.replace(spec, points=points, tag_prefix=self.prefix(spec) if tag_specs else None)
        site_id = await self._ensure_site(spec.site or self.default_site)
        ts = now_us()
        mid = await self.db.run(self._write_meter, None, self._meter_row(spec, site_id), ts)
        rec = MeterRec(mid, spec, ts, ts)
        self.meters[spec.name] = rec
        self._link_children()
        return rec, changed

    async def update_meter(self, p: MeterUpdate) -> tuple[MeterRec, Changed]:
        old = self.meter(p.name)
        changes = {f: getattr(p, f) for f in p.__struct_fields__ if f != "name" and getattr(p, f) is not msgspec.UNSET}
        if not changes:
            return old, Changed()
        spec = self._check(msgspec.structs.replace(old.spec, **changes), old)
        changed = Changed()
        tag_specs = self.template_specs(spec)
        if tag_specs:
            _, changed = await self.tags.import_tags(tag_specs, update=True, dry_run=False)
            points = {t.path.rsplit("/", 1)[1]: t.path for t in tag_specs}
            points.update(p.points if p.points is not msgspec.UNSET else {})
            if p.points is msgspec.UNSET:
                points.update({q: v for q, v in old.spec.points.items() if q not in points})
            spec = msgspec.structs.replace(spec, points=points)
        site_id = await self._ensure_site(spec.site or self.default_site)
        ts = now_us()
        await self.db.run(self._write_meter, old.id, self._meter_row(spec, site_id), ts)
        rec = MeterRec(old.id, spec, old.created_us, ts)
        self.meters[spec.name] = rec
        self._link_children()
        return rec, changed

    async def delete_meter(self, name: str, tags: bool) -> Changed:
        rec = self.meter(name)
        if rec.children:
            raise FailedPrecondition(f"meter {name!r} has children ({', '.join(rec.children[:5])}); move or delete "
                                     "them first", {"field": "params.name"})  # fmt: skip
        await self.db.run(self._delete, "energy_meters", rec.id)
        del self.meters[name]
        self.generators.pop(name, None)
        self.renewables.pop(name, None)
        for k in [k for k in self.targets if k[0] == name]:
            del self.targets[k]
        self._link_children()
        changed = Changed()
        if tags and rec.spec.tag_prefix:
            for path in rec.spec.points.values():
                if path.startswith(rec.spec.tag_prefix + "/") and path in self.tags.tags:
                    c = await self.tags.delete_tag(path)
                    changed.devices |= c.devices
                    changed.tags |= c.tags
        return changed

    def _meter_row(self, spec: MeterSpec, site_id: int) -> dict[str, Any]:
        return {
            "name": spec.name, "site_id": site_id,
            "parent_id": self.meters[spec.parent].id if spec.parent else None,
            "device_id": self.tags.devices[spec.device].id if spec.device else None,
            "template_id": self.templates[spec.template].id if spec.template else None,
            "meter_type": spec.type, "description": spec.description, "ct_primary": spec.ct_primary,
            "ct_secondary": spec.ct_secondary, "pt_primary": spec.pt_primary, "pt_secondary": spec.pt_secondary,
            "ratio_applied_in_meter": spec.ratio_applied_in_meter, "nominal_voltage": spec.nominal_voltage,
            "tariff_zone": spec.tariff_zone, "interval_s": spec.interval_s, "enabled": spec.enabled,
            "points_json": json.dumps(spec.points, sort_keys=True), "tag_prefix": spec.tag_prefix,
        }  # fmt: skip

    def _write_meter(self, mid: int | None, row: dict[str, Any], ts: int) -> int:
        cols = list(_METER_COLS)
        try:
            with self.db.engine.begin() as conn:
                if mid is None:
                    return int(
                        conn.execute(
                            text(
                                f"INSERT INTO energy_meters ({', '.join(cols)}, created_us, updated_us)"
                                f" VALUES ({', '.join(':' + c for c in cols)}, :ts, :ts) RETURNING id"
                            ),
                            {**row, "ts": ts},
                        ).scalar_one()
                    )
                sets = ", ".join(f"{c} = :{c}" for c in cols)
                conn.execute(text(f"UPDATE energy_meters SET {sets}, updated_us = :ts WHERE id = :id"),
                             {**row, "ts": ts, "id": mid})  # fmt: skip
                return mid
        except IntegrityError as exc:
            raise InvalidArgument(f"meter refused by the store: {exc.orig}", "params") from None

    def _delete(self, table: str, row_id: int) -> None:
        try:
            with self.db.engine.begin() as conn:
                conn.execute(text(f"DELETE FROM {table} WHERE id = :id"), {"id": row_id})
        except IntegrityError as exc:
            raise FailedPrecondition(f"still referenced: {exc.orig}") from None

    # ------------------------------------------------------------------ generators, renewables, targets

    async def set_generator(self, g: GeneratorSpec) -> None:
        rec = self.meter(g.meter, "params.meter")
        if rec.spec.type != "generator":
            raise InvalidArgument(f"meter {g.meter!r} is a {rec.spec.type} meter, not a generator", "params.meter")
        fuel = rec.spec.points.get("fuel_level")
        fuel_id = self.tags.tags[fuel].id if fuel in self.tags.tags else None
        ts = now_us()
        await self.db.run(self._upsert_generator, rec.id, g, fuel_id, ts)
        self.generators[g.meter] = g

    def _upsert_generator(self, mid: int, g: GeneratorSpec, fuel_id: int | None, ts: int) -> None:
        row = {"name": g.meter, "meter_id": mid, "rated_kva": g.rated_kva, "rated_kw": g.rated_kw,
               "tank": g.tank_l, "f0": g.f0, "f1": g.f1, "co2": g.co2_kg_per_l, "fuel": fuel_id, "ts": ts}  # fmt: skip
        with self.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM diesel_generators WHERE meter_id = :meter_id"), row)
            conn.execute(
                text(
                    "INSERT INTO diesel_generators (name, meter_id, rated_kva, rated_kw, tank_capacity_l,"
                    " fuel_curve_f0, fuel_curve_f1, co2_kg_per_l, fuel_level_tag_id, created_us, updated_us)"
                    " VALUES (:name, :meter_id, :rated_kva, :rated_kw, :tank, :f0, :f1, :co2, :fuel, :ts, :ts)"
                ),
                row,
            )

    async def set_renewable(self, r: RenewableSpec) -> None:
        rec = self.meter(r.meter, "params.meter")
        ts = now_us()
        await self.db.run(self._upsert_renewable, rec.id, r, ts)
        self.renewables[r.meter] = r

    def _upsert_renewable(self, mid: int, r: RenewableSpec, ts: int) -> None:
        row = {"name": r.meter, "meter_id": mid, "kind": r.kind, "cap": r.capacity_kwp,
               "factor": r.emission_factor_kg_per_kwh, "source": r.factor_source, "ts": ts}  # fmt: skip
        with self.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM renewable_sources WHERE meter_id = :meter_id"), row)
            conn.execute(
                text(
                    "INSERT INTO renewable_sources (name, meter_id, kind, capacity_kwp,"
                    " grid_emission_factor_kg_per_kwh, factor_source, created_us, updated_us)"
                    " VALUES (:name, :meter_id, :kind, :cap, :factor, :source, :ts, :ts)"
                ),
                row,
            )

    async def set_target(self, meter: str, period: str, start: date, start_us: int, kwh: float) -> TargetRec:
        rec = self.meter(meter, "params.meter")
        ts = now_us()
        await self.db.run(self._upsert_target, rec.id, period, start_us, kwh, ts)
        t = TargetRec(meter, period, start, kwh)
        self.targets[(meter, period, start)] = t
        return t

    def _upsert_target(self, mid: int, period: str, start_us: int, kwh: float, ts: int) -> None:
        row = {"m": mid, "p": period, "s": start_us, "k": kwh, "ts": ts}
        with self.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM energy_targets WHERE meter_id = :m AND period = :p AND period_start_us = :s"),
                         row)  # fmt: skip
            conn.execute(
                text(
                    "INSERT INTO energy_targets (meter_id, period, period_start_us, target_kwh, created_us,"
                    " updated_us) VALUES (:m, :p, :s, :k, :ts, :ts)"
                ),
                row,
            )

    async def delete_target(self, meter: str, period: str, start: date, start_us: int) -> None:
        rec = self.meter(meter, "params.meter")
        if (meter, period, start) not in self.targets:
            raise NotFound(f"no {period} target for {meter} from {start}", {"field": "params.start"})
        await self.db.run(self._delete_target, rec.id, period, start_us)
        del self.targets[(meter, period, start)]

    def _delete_target(self, mid: int, period: str, start_us: int) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text("DELETE FROM energy_targets WHERE meter_id = :m AND period = :p AND period_start_us = :s"),
                         {"m": mid, "p": period, "s": start_us})  # fmt: skip


def _local_date(us: int, tz: str) -> str:
    from zoneinfo import ZoneInfo

    from scadad.clock import from_us

    return from_us(us).astimezone(ZoneInfo(tz)).date().isoformat()
