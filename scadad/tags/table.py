"""The live tag table: every tag's current value, quality and timestamps.

Driver batches come in here (`apply_batch`), and this is where a raw register value
becomes an engineering value with a quality: scaling, range check, NaN, deadband.
What passes the deadband goes to the historian and to the bus (`tag.value`, one event
per batch, only built when someone listens); quality changes also go to
`tag.quality`. Computed tags are re-evaluated when an input changes.

This is the hottest code in the daemon (20,000 values per second on a modest site),
so the per-value loop works on slotted objects and plain floats, and everything that
can be computed once per tag definition is (see `LiveTag.configure`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from fnmatch import fnmatchcase
from typing import Any

from drivers.base import Batch
from scadad.api.tag_messages import TagSpec, TagValue
from scadad.bus import Bus
from scadad.clock import from_us, now_us
from scadad.historian import Quality, Sample
from scadad.tags.expr import EvalError, Expression

GOOD, UNCERTAIN, BAD = "GOOD", "UNCERTAIN", "BAD"
_RANK = {GOOD: 0, UNCERTAIN: 1, BAD: 2}
_HIST_QUALITY = {GOOD: Quality.GOOD, UNCERTAIN: Quality.UNCERTAIN, BAD: Quality.BAD}
INT_TYPES = frozenset({"int16", "uint16", "int32", "uint32", "int64"})
TOPIC_VALUE = "tag.value"
TOPIC_QUALITY = "tag.quality"

# One changed value on the bus: (tag, value, quality, reason, detail, source_us, server_us).
Change = tuple["LiveTag", Any, str, "str | None", str, "int | None", int]


class LiveTag:
    """One tag at run time: its definition compiled for the hot path, and its value."""

    __slots__ = (
        "id", "path", "spec", "units", "value", "quality", "reason", "detail", "source_us", "server_us",
        "k", "b", "raw_lo", "raw_hi", "db_abs", "db_pct", "hist_value", "numeric", "data_type",
        "dependents", "expr", "rank", "retention_days", "digits", "historize", "sentinels", "pf_4q",
    )  # fmt: skip

    def __init__(self, tag_id: int, spec: TagSpec) -> None:
        self.id = tag_id
        self.value: Any = None
        self.quality = BAD
        self.reason: str | None = "out_of_service"
        self.detail = "not read yet"
        self.source_us: int | None = None
        self.server_us = 0
        self.hist_value: Any = None
        self.dependents: list[LiveTag] = []
        self.expr: Expression | None = None
        self.rank = 0
        self.configure(spec)

    def configure(self, spec: TagSpec) -> None:
        """(Re)compile the definition; the current value is kept."""
        self.spec = spec
        self.path = spec.path
        self.units = spec.units
        self.data_type = spec.data_type
        self.numeric = spec.data_type != "string"
        # System tags (negative ids, not in the store) are live only.
        self.historize = self.numeric and self.id > 0
        self.retention_days = spec.retention_days
        self.sentinels: frozenset[float] | None = frozenset(spec.sentinels) if spec.sentinels else None
        self.pf_4q = spec.transform == "pf_4q"
        if spec.raw_low is not None and spec.raw_high is not None and spec.eng_low is not None:
            assert spec.eng_high is not None
            self.k: float | None = (spec.eng_high - spec.eng_low) / (spec.raw_high - spec.raw_low)
            self.b = spec.eng_low - self.k * spec.raw_low
            self.raw_lo, self.raw_hi = sorted((spec.raw_low, spec.raw_high))
            span = abs(spec.eng_high - spec.eng_low)
        else:
            self.k, self.b, self.raw_lo, self.raw_hi = None, 0.0, -math.inf, math.inf
            span = None
        # A scaled integer register has a fixed resolution (raw x 0.1 has one decimal):
        # round to it so 2317 x 0.1 reads 231.7, not 231.70000000000002.
        self.digits: int | None = None
        if self.k is not None and spec.data_type in INT_TYPES:
            for d in range(10):
                if (
                    abs(round(self.k, d) - self.k) <= 1e-12 * max(1.0, abs(self.k))
                    and abs(round(self.b, d) - self.b) <= 1e-9
                ):
                    self.digits = d
                    break
        self.db_pct = 0.0
        if spec.deadband_mode == "percent" and spec.deadband > 0:
            if span is not None:
                self.db_abs = span * spec.deadband / 100.0
            else:
                self.db_abs, self.db_pct = 0.0, spec.deadband / 100.0
        else:
            self.db_abs = spec.deadband

    def parse(self, value: Any) -> Any:
        """A value from the API, an initial_value string or the historian, as the tag's type
        (engineering units); ValueError says what is wrong with it."""
        dt = self.data_type
        if dt == "string":
            return str(value)
        if dt == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low in ("1", "true", "on", "yes"):
                    return True
                if low in ("0", "false", "off", "no"):
                    return False
                raise ValueError("expected true/false, on/off or 1/0")
            return bool(value)
        if isinstance(value, bool):
            value = int(value)
        x = float(value) if isinstance(value, str) else value
        if x != x or x in (math.inf, -math.inf):
            raise ValueError("not a finite number")
        if dt in ("float32", "float64") or self.k is not None:
            return float(x)
        if float(x) != int(x):
            raise ValueError("an integer tag takes whole numbers")
        return int(x)

    def to_raw(self, eng: Any) -> Any:
        """A parsed engineering value to the raw value for the device (reverse scaling, typed)."""
        if not self.numeric or isinstance(eng, bool):
            return eng
        x = float(eng)
        if self.k is not None:
            x = (x - self.b) / self.k
        if self.data_type in INT_TYPES:
            return int(round(x))
        return x

    def to_eng(self, raw: Any) -> Any:
        if self.k is not None and self.numeric and not isinstance(raw, bool):
            eng = raw * self.k + self.b
            return round(eng, self.digits) if self.digits is not None else eng
        return raw

    def snapshot(self) -> TagValue:
        return TagValue(
            path=self.path,
            value=self.value,
            quality=self.quality,
            reason=self.reason,
            detail=self.detail,
            source_time=from_us(self.source_us) if self.source_us else None,
            server_time=from_us(self.server_us) if self.server_us else None,
            units=self.units,
        )


def decode_pf_4q(x: float) -> float:
    """Schneider's four-quadrant power factor register (-2..2) as a signed PF (-1..1):
    beyond +1 it folds back as 2 - x, below -1 as -2 - x (PM5000 register guide)."""
    if x > 1.0:
        return 2.0 - x
    if x < -1.0:
        return -2.0 - x
    return x


def change_to_value(c: Change) -> TagValue:
    tag, value, quality, reason, detail, src, srv = c
    return TagValue(
        path=tag.path, value=value, quality=quality, reason=reason, detail=detail,
        source_time=from_us(src) if src else None, server_time=from_us(srv) if srv else None, units=tag.units,
    )  # fmt: skip


class TagTable:
    """All live tags by id and path; the single writer of their values (loop thread)."""

    def __init__(self, bus: Bus, submit: Callable[[Sequence[Sample]], bool] | None = None) -> None:
        self.bus = bus
        self.submit = submit  # the historian writer's submit, or None (no history)
        self.by_id: dict[int, LiveTag] = {}
        self.by_path: dict[str, LiveTag] = {}
        self.values_total = 0
        self.history_total = 0
        self.history_dropped = 0
        self.has_computed = False
        # Called with every batch of changes, in the loop thread, before the bus: the
        # alarm engine evaluates here so it never depends on a bounded bus queue.
        self.listeners: list[Callable[[list[Change]], None]] = []

    # ------------------------------------------------------------------ membership

    def add(self, tag: LiveTag) -> None:
        self.by_id[tag.id] = tag
        self.by_path[tag.path] = tag

    def remove(self, tag_id: int) -> LiveTag | None:
        tag = self.by_id.pop(tag_id, None)
        if tag is not None:
            self.by_path.pop(tag.path, None)
        return tag

    def rename(self, tag: LiveTag, old_path: str) -> None:
        if self.by_path.get(old_path) is tag:
            del self.by_path[old_path]
        self.by_path[tag.path] = tag

    def link_computed(self) -> None:
        """Rebuild the input -> dependents links and evaluation ranks of computed tags."""
        for tag in self.by_id.values():
            tag.dependents = []
            tag.rank = 0
        computed = [t for t in self.by_id.values() if t.expr is not None]
        self.has_computed = bool(computed)
        for t in computed:
            for path in t.expr.inputs:  # type: ignore[union-attr]
                src = self.by_path.get(path)
                if src is not None:
                    src.dependents.append(t)
        # Ranks by longest input chain, so one pass in rank order sees inputs first
        # (cycles are refused when the tag is defined; the bound guards a stale cycle).
        for _ in range(len(computed)):
            moved = False
            for t in computed:
                for dep in t.dependents:
                    if dep.rank <= t.rank:
                        dep.rank = t.rank + 1
                        moved = True
            if not moved:
                break

    # ------------------------------------------------------------------ updates

    def apply_batch(self, tags: Sequence[LiveTag], batch: Batch) -> int:
        """Take one driver batch for ``tags`` (aligned); returns how many passed the deadband."""
        srv = now_us()
        values = batch.values
        errors = batch.errors
        sources = batch.source_us
        t_batch = batch.time_us
        changes: list[Change] = []
        samples: list[Sample] = []
        quality_changes: list[Change] = []
        for i, tag in enumerate(tags):
            src = sources[i] if sources is not None and sources[i] is not None else t_batch
            err = errors.get(i) if errors else None
            if err is not None:
                quality, reason, detail, value = BAD, str(err[0]), err[1], tag.value
            else:
                value = values[i]
                quality, reason, detail = GOOD, None, ""
                if tag.numeric and value is not None and not isinstance(value, bool):
                    if value != value:  # NaN: the device's "not available"
                        quality, reason, detail, value = BAD, "sensor_failure", "device sent NaN", tag.value
                    elif tag.sentinels is not None and value in tag.sentinels:
                        detail = f"device sent {value!r}: not available"
                        quality, reason, value = BAD, "sensor_failure", tag.value
                    else:
                        if tag.k is not None:
                            if value < tag.raw_lo or value > tag.raw_hi:
                                quality, reason = UNCERTAIN, "out_of_range"
                                detail = f"raw {value} outside {tag.raw_lo:g}..{tag.raw_hi:g}"
                            value = value * tag.k + tag.b
                            if tag.digits is not None:
                                value = round(value, tag.digits)
                        if tag.pf_4q:
                            value = decode_pf_4q(value)
            old_q = tag.quality
            tag.server_us = srv
            if quality is GOOD and old_q is GOOD:
                last = tag.hist_value
                tag.value = value
                tag.source_us = src
                if last is not None and tag.numeric:
                    db = tag.db_abs if not tag.db_pct else abs(last) * tag.db_pct
                    if abs(value - last) <= db and (db or value == last):
                        continue
                elif value == last:
                    continue
            else:
                tag.value = value
                tag.source_us = src
                if quality is old_q and reason == tag.reason:
                    if quality is BAD:
                        continue  # still BAD for the same reason: nothing new to record
                    last = tag.hist_value
                    if value == last or (tag.numeric and last is not None and abs(value - last) <= tag.db_abs):
                        continue
                tag.quality, tag.reason, tag.detail = quality, reason, detail
                quality_changes.append((tag, value, quality, reason, detail, src, srv))
            tag.hist_value = value if quality is not BAD else None
            changes.append((tag, value, quality, reason, detail, src, srv))
            if tag.historize:
                samples.append(Sample(tag.id, src, None if quality is BAD else float(value), _HIST_QUALITY[quality]))
        self._publish(changes, quality_changes, samples)
        self.values_total += len(tags)
        return len(changes)

    def set_quality(self, tags: Iterable[LiveTag], quality: str, reason: str, detail: str) -> None:
        """Mark tags (e.g. all of a device that went away) with one quality; value kept."""
        srv = now_us()
        changes: list[Change] = []
        samples: list[Sample] = []
        for tag in tags:
            if tag.quality == quality and tag.reason == reason and tag.detail == detail:
                continue
            tag.quality, tag.reason, tag.detail, tag.server_us = quality, reason, detail, srv
            tag.hist_value = None
            changes.append((tag, tag.value, quality, reason, detail, tag.source_us, srv))
            if tag.historize:
                samples.append(Sample(tag.id, srv, None, _HIST_QUALITY[quality]))
        self._publish(changes, changes, samples)

    def set_value(self, tag: LiveTag, value: Any, quality: str = GOOD, reason: str | None = None,
                  detail: str = "", source_us: int | None = None) -> None:  # fmt: skip
        """Set one tag's value (memory tags, computed tags, write read-backs)."""
        srv = now_us()
        src = source_us or srv
        tag.value, tag.quality, tag.reason, tag.detail = value, quality, reason, detail
        tag.source_us, tag.server_us = src, srv
        tag.hist_value = value if quality != BAD else None
        change = (tag, value, quality, reason, detail, src, srv)
        samples = []
        if tag.historize and (value is not None or quality == BAD):
            v = None if quality == BAD or value is None else float(value)
            samples.append(Sample(tag.id, src, v, _HIST_QUALITY[quality]))
        self._publish([change], [change], samples)

    def _publish(self, changes: list[Change], quality_changes: list[Change], samples: list[Sample]) -> None:
        if samples and self.submit is not None:
            if self.submit(samples):
                self.history_total += len(samples)
            else:
                self.history_dropped += len(samples)
        if not changes:
            return
        for listener in self.listeners:
            listener(changes)
        if self.bus.has_subscribers(TOPIC_VALUE):
            self.bus.publish(TOPIC_VALUE, changes)
        if quality_changes and self.bus.has_subscribers(TOPIC_QUALITY):
            self.bus.publish(TOPIC_QUALITY, quality_changes)
        if self.has_computed:
            dependents = {d for c in changes for d in c[0].dependents}
            if dependents:
                self.evaluate(dependents)

    # ------------------------------------------------------------------ computed tags

    def evaluate(self, tags: Iterable[LiveTag]) -> None:
        """Re-evaluate computed tags (in input order); their dependents follow via _publish."""
        for tag in sorted(tags, key=lambda t: t.rank):
            expr = tag.expr
            if expr is None:
                continue
            worst, why = GOOD, None
            src = 0
            for path in expr.inputs:
                inp = self.by_path.get(path)
                if inp is None:
                    worst, why = BAD, f"input {path} does not exist"
                    break
                if _RANK[inp.quality] > _RANK[worst]:
                    worst, why = inp.quality, f"input {path} is {inp.quality}"
                src = max(src, inp.source_us or 0)
            if worst is BAD:
                self.set_value(
                    tag, tag.value, BAD, "config_error" if "exist" in (why or "") else "last_usable", why or ""
                )
                continue
            try:
                value = expr.evaluate(self._lookup)
            except EvalError as exc:
                self.set_value(tag, tag.value, BAD, "config_error", f"expression: {exc}")
                continue
            if tag.data_type == "bool":
                value = bool(value)
            elif tag.data_type in INT_TYPES:
                value = int(round(value))
            else:
                value = float(value)
            if value == tag.value and worst == tag.quality:
                continue
            self.set_value(tag, value, worst, None if worst is GOOD else "last_usable", why or "", src or None)

    def _lookup(self, path: str) -> Any:
        tag = self.by_path.get(path)
        return None if tag is None or tag.quality is BAD else tag.value

    # ------------------------------------------------------------------ reads

    def match(self, patterns: Sequence[str]) -> list[LiveTag]:
        """Tags whose path matches any pattern ('*' one segment, '**' any depth), by path."""
        matchers = [compile_pattern(p) for p in patterns]
        out = []
        for path in sorted(self.by_path):
            if any(m(path) for m in matchers):
                out.append(self.by_path[path])
        return out


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A matcher for one tag-path pattern; an exact path matches only itself."""
    if "*" not in pattern:
        return pattern.__eq__
    parts = pattern.split("/")

    def match(path: str) -> bool:
        return _match(parts, path.split("/"))

    return match


def _match(parts: list[str], segs: list[str]) -> bool:
    if not parts:
        return not segs
    head = parts[0]
    if head == "**":
        return any(_match(parts[1:], segs[i:]) for i in range(len(segs) + 1))
    if not segs:
        return False
    if head != "*" and head != segs[0] and not ("*" in head and fnmatchcase(segs[0], head)):
        return False
    return _match(parts[1:], segs[1:])
