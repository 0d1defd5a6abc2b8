"""Alarm rule definitions: validated, stored, compiled for the engine.

The store is written first and the engine changes only once the transaction committed
(as for tags). Validation names the field at fault: `params.rules[12].limit: ...`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from scadad.alarms.conditions import LIMIT_KINDS, Rule
from scadad.alarms.state import Timing
from scadad.api.alarm_messages import AlarmRef, AlarmRuleSpec, AlarmRuleUpdate
from scadad.api.errors import AlreadyExists, InvalidArgument, NotFound
from scadad.tags.catalog import Catalog
from scadad.tags.expr import ExpressionError, compile_expression


@dataclass(slots=True)
class RuleRec:
    id: int
    spec: AlarmRuleSpec
    created_us: int
    updated_us: int


def default_area(tag_path: str) -> str:
    return tag_path.split("/", 1)[0]


class RuleBook:
    """Every alarm rule by id and by name (`tag:kind`)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.recs: dict[int, RuleRec] = {}
        self.by_name: dict[str, RuleRec] = {}

    # ------------------------------------------------------------------ lookups

    def get(self, ref: AlarmRef, field: str = "params.alarm") -> RuleRec:
        rec = self.recs.get(ref) if isinstance(ref, int) else self.by_name.get(ref)
        if rec is None:
            raise NotFound(f"no alarm {ref!r} (see `scadactl alarm rule list`)", {"field": field})
        return rec

    def put(self, rec: RuleRec) -> None:
        old = self.recs.get(rec.id)
        if old is not None:
            self.by_name.pop(name_of(old.spec), None)
        self.recs[rec.id] = rec
        self.by_name[name_of(rec.spec)] = rec

    def drop(self, rule_id: int) -> RuleRec | None:
        rec = self.recs.pop(rule_id, None)
        if rec is not None:
            self.by_name.pop(name_of(rec.spec), None)
        return rec

    # ------------------------------------------------------------------ validation

    def check(self, spec: AlarmRuleSpec, at: str = "params") -> AlarmRuleSpec:
        """Refuse a rule that could never work, naming the field; returns it with the
        default area filled in."""
        self.catalog._require_loaded()
        tag = self.catalog.tags.get(spec.tag)
        if tag is None:
            raise InvalidArgument(f"no tag {spec.tag!r}", f"{at}.tag")
        numeric = tag.spec.data_type != "string"
        if spec.kind in LIMIT_KINDS:
            if spec.limit is None:
                raise InvalidArgument(f"a {spec.kind} alarm needs a limit", f"{at}.limit")
            if not numeric:
                raise InvalidArgument(f"a {spec.kind} alarm needs a numeric tag; {spec.tag} is a string", f"{at}.kind")
        if spec.kind in ("rate_of_change", "deviation") and spec.limit is not None and spec.limit <= 0:
            raise InvalidArgument(f"a {spec.kind} limit is a magnitude and must be above 0", f"{at}.limit")
        if spec.limit is not None and spec.limit != spec.limit:
            raise InvalidArgument("limit is not a number", f"{at}.limit")
        if spec.kind == "deviation":
            if spec.setpoint_tag is None:
                raise InvalidArgument("a deviation alarm needs setpoint_tag", f"{at}.setpoint_tag")
        if spec.setpoint_tag is not None:
            if spec.kind != "deviation":
                raise InvalidArgument("setpoint_tag is only for deviation alarms", f"{at}.setpoint_tag")
            if spec.setpoint_tag not in self.catalog.tags:
                raise InvalidArgument(f"no tag {spec.setpoint_tag!r}", f"{at}.setpoint_tag")
            if spec.setpoint_tag == spec.tag:
                raise InvalidArgument("setpoint_tag is the alarm's own tag", f"{at}.setpoint_tag")
        if spec.kind in ("discrete", "bad_quality") and spec.deadband:
            raise InvalidArgument(f"a {spec.kind} alarm has no deadband", f"{at}.deadband")
        if spec.kind == "bad_quality" and spec.limit is not None:
            raise InvalidArgument("a bad_quality alarm takes no limit", f"{at}.limit")
        if spec.kind == "discrete" and spec.limit is None and tag.spec.data_type != "bool":
            raise InvalidArgument("a discrete alarm on a non-bool tag needs the limit (the state)", f"{at}.limit")
        if spec.suppress_when is not None:
            try:
                expr = compile_expression(spec.suppress_when)
            except ExpressionError as exc:
                raise InvalidArgument(f"suppress_when: {exc}", f"{at}.suppress_when") from None
            missing = sorted(p for p in expr.inputs if p not in self.catalog.tags)
            if missing:
                raise InvalidArgument(f"suppress_when names unknown tag(s) {', '.join(missing)}", f"{at}.suppress_when")
        if not spec.area:
            spec = msgspec.structs.replace(spec, area=default_area(spec.tag))
        return spec

    # ------------------------------------------------------------------ compile

    def compile(self, rec: RuleRec) -> Rule:
        """The engine's form of a rule."""
        s = rec.spec
        tag = self.catalog.tags[s.tag]
        sp = self.catalog.tags.get(s.setpoint_tag) if s.setpoint_tag else None
        return Rule(
            id=rec.id, tag_id=tag.id, tag_path=s.tag, kind=s.kind, limit=s.limit, discrete_op=s.discrete_op,
            setpoint_tag_id=sp.id if sp else None, setpoint_path=s.setpoint_tag, deadband=s.deadband,
            timing=Timing(s.on_delay_ms * 1000, s.off_delay_ms * 1000, s.latching), priority=s.priority,
            message=s.message, area=s.area, open_work_order=s.open_work_order,
            suppress=compile_expression(s.suppress_when) if s.suppress_when else None, suppress_text=s.suppress_when,
            enabled=s.enabled, units=tag.spec.units, description=tag.spec.description,
        )  # fmt: skip

    # ------------------------------------------------------------------ rows

    def row(self, spec: AlarmRuleSpec) -> dict[str, Any]:
        tags = self.catalog.tags
        return {
            "tag_id": tags[spec.tag].id, "kind": spec.kind, "limit_value": spec.limit,
            "discrete_op": spec.discrete_op,
            "setpoint_tag_id": tags[spec.setpoint_tag].id if spec.setpoint_tag else None,
            "deadband": spec.deadband, "on_delay_ms": spec.on_delay_ms, "off_delay_ms": spec.off_delay_ms,
            "priority": spec.priority, "latching": spec.latching, "message_template": spec.message,
            "area": spec.area, "open_work_order": spec.open_work_order,
            "suppression_expression": spec.suppress_when, "enabled": spec.enabled,
        }  # fmt: skip

    def spec_from_row(self, row: dict[str, Any]) -> AlarmRuleSpec | None:
        """A stored row back to a spec; None if its tag is gone from the catalog."""
        tag = self.catalog.tags_by_id.get(row["tag_id"])
        if tag is None:
            return None
        sp = self.catalog.tags_by_id.get(row["setpoint_tag_id"]) if row["setpoint_tag_id"] else None
        return AlarmRuleSpec(
            tag=tag.spec.path, kind=row["kind"], limit=row["limit_value"], discrete_op=row["discrete_op"],
            setpoint_tag=sp.spec.path if sp else None, deadband=row["deadband"], on_delay_ms=row["on_delay_ms"],
            off_delay_ms=row["off_delay_ms"], priority=row["priority"], latching=bool(row["latching"]),
            message=row["message_template"], area=row["area"], open_work_order=bool(row["open_work_order"]),
            suppress_when=row["suppression_expression"], enabled=bool(row["enabled"]),
        )  # fmt: skip

    # ------------------------------------------------------------------ changes

    def merge(self, rec: RuleRec, p: AlarmRuleUpdate) -> AlarmRuleSpec:
        changes = {f: getattr(p, f) for f in p.__struct_fields__ if f != "alarm" and getattr(p, f) is not msgspec.UNSET}
        return self.check(msgspec.structs.replace(rec.spec, **changes))

    def plan_import(
        self, specs: Sequence[AlarmRuleSpec], update: bool
    ) -> tuple[list[AlarmRuleSpec], list[tuple[RuleRec, AlarmRuleSpec]], list[str]]:
        """Check every rule before anything is written: (created, updated, unchanged names)."""
        seen: set[str] = set()
        created: list[AlarmRuleSpec] = []
        updated: list[tuple[RuleRec, AlarmRuleSpec]] = []
        unchanged: list[str] = []
        for i, raw in enumerate(specs):
            at = f"params.rules[{i}]"
            name = name_of(raw)
            if name in seen:
                raise InvalidArgument(f"alarm {name} appears twice", at)
            seen.add(name)
            spec = self.check(raw, at)
            old = self.by_name.get(name)
            if old is not None and old.spec == spec:
                unchanged.append(name)
            elif old is not None and not update:
                raise AlreadyExists(f"alarm {name} exists and differs (import with update)", {"field": at})
            elif old is None:
                created.append(spec)
            else:
                updated.append((old, spec))
        return created, updated, unchanged


def name_of(spec: AlarmRuleSpec) -> str:
    return f"{spec.tag}:{spec.kind}"
