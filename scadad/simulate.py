"""Sim.*: the built-in simulated plant, for the demo, commissioning practice and tests.

`Sim.Start` (and `scadad --simulate`) starts Modbus TCP simulators on loopback inside
the daemon and adds one device per simulator plus a tag per register-map point, with
the scaling that turns each register into the model's engineering value (kW, kWh, V,
A, %, ...). The devices and tags are ordinary ones: edit, export or delete them like
any other. A second start updates them in place (ports change between runs).

The models are a pure function of (seed, device, time) and read the drivers' clock, so
with the same seed and a fixed daemon clock (`[simulator] fixed_clock`) every run of the
plant answers exactly the same values (until a client writes to it).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from drivers import clock
from drivers.registers import INT_RANGES
from drivers.simulator import PROFILES, Fault, PointSpec, Simulator
from scadad.acquisition import Acquisition
from scadad.api.alarm_messages import AlarmRuleSpec
from scadad.api.energy_messages import GeneratorSpec, MeterSpec, RenewableSpec
from scadad.api.errors import FailedPrecondition, InvalidArgument, NotFound
from scadad.api.messages import Empty
from scadad.api.registry import CallContext, Service, rpc
from scadad.api.tag_messages import DeviceSpec, ScanGroupSet, SimDevice, SimFault, SimStart, SimStatus, TagSpec
from scadad.tags.catalog import Catalog

log = logging.getLogger("scadad.simulate")

# Registers a float can carry are far wider than any reading; scaling only needs a ratio.
_FLOAT_RANGE = (-1e30, 1e30)
_KILO = {"W": "kW", "Wh": "kWh"}


def device_name(kind: str, index: int) -> str:
    return f"{kind.replace('_', '-')}-{index}"


# Alarms the demo plant comes with, per device type: (point, kind, limit, priority, extra).
# Limits sit outside normal operation, so a fresh plant is quiet; writing a setpoint
# (`tank_level` follows level_high_sp) or `scadactl sim fault` makes them fire.
SIM_ALARMS: dict[str, list[tuple[str, str, float | None, str, dict[str, object]]]] = {
    "sdm630": [
        ("voltage_l1", "hi", 253.0, "high", {"deadband": 2.0, "on_delay_ms": 2000}),
        ("voltage_l1", "lo", 207.0, "high", {"deadband": 2.0, "on_delay_ms": 2000}),
        ("voltage_l1", "bad_quality", None, "critical", {"message": "{description}: meter not answering"}),
    ],
    "dg": [
        ("low_fuel_alarm", "discrete", 1.0, "high", {"message": "Generator low fuel"}),
        ("fuel_level", "lo", 15.0, "medium", {"deadband": 1.0}),
    ],
    "inverter": [("temperature", "hi", 75.0, "medium", {"deadband": 3.0})],
    "pump_plc": [
        ("tank_level", "hihi", 95.0, "critical", {"deadband": 1.0, "latching": True}),
        ("tank_level", "hi", 90.0, "high", {"deadband": 1.0}),
        ("tank_level", "lo", 10.0, "medium", {"deadband": 1.0}),
        ("tank_level", "bad_quality", None, "critical", {"message": "Pump station PLC not answering"}),
    ],
}


def alarm_specs(site: str, device: str, kind: str) -> list[AlarmRuleSpec]:
    """The demo alarms of one simulated device."""
    return [
        AlarmRuleSpec(
            tag=f"{site}/{device}/{point}", kind=k, limit=limit, priority=prio, area=f"{site}/{device}", **extra
        )  # type: ignore[arg-type]  # fmt: skip
        for point, k, limit, prio, extra in SIM_ALARMS.get(kind, [])
    ]


# The demo's meter hierarchy: a main bus fed by the grid, the generator and the solar
# inverter, three feeders (the simulated meters) and two loads under the first feeder.
# The grid incomer and the loads are computed tags, so the numbers add up by
# construction with a known loss: the bus loses SIM_BUS_LOSS of what the feeders take
# (the grid delivers what is left), feeder 1 passes on 1 - SIM_FEEDER_LOSS to its loads.
SIM_BUS_LOSS = 0.02
SIM_FEEDER_LOSS = 0.02
_FEEDER_KINDS = ("sdm630", "pm5xxx", "em24")
_IMPORT = {"sdm630": "import_kwh", "pm5xxx": "import_wh", "em24": "import_kwh"}


@dataclass
class EnergyPlan:
    """The simulated plant's meters and the computed tags behind the virtual ones."""

    tags: list[TagSpec]
    meters: list[MeterSpec]
    generators: list[GeneratorSpec]
    renewables: list[RenewableSpec]


def energy_plan(site: str, devices: list[tuple[str, str]], dg_rated_kw: float = 250.0) -> EnergyPlan | None:
    """Meters for the simulated devices ((name, kind) pairs); None without three meters."""
    feeders = [(n, k) for n, k in devices if k in _FEEDER_KINDS][:3]
    if len(feeders) < 3:
        return None
    dg = next((n for n, k in devices if k == "dg"), None)
    pv = next((n for n, k in devices if k == "inverter"), None)
    base = f"{site}/energy"
    kw = [f"{{{site}/{n}/power_total}}" for n, _ in feeders]
    kwh = [f"{{{site}/{n}/{_IMPORT[k]}}}" for n, k in feeders]
    grid_kw = f"({' + '.join(kw)}) * {1 + SIM_BUS_LOSS}"
    grid_kwh = f"({' + '.join(kwh)}) * {1 + SIM_BUS_LOSS}"
    if dg:
        grid_kw += f" - {{{site}/{dg}/power_total}}"
        grid_kwh += f" - {{{site}/{dg}/energy_kwh}}"
    if pv:
        grid_kw += f" - {{{site}/{pv}/ac_power}}"
        grid_kwh += f" - {{{site}/{pv}/total_energy}}"

    def computed(path: str, expr: str, units: str, what: str) -> TagSpec:
        return TagSpec(path=path, data_type="float64", source="computed", expression=expr, units=units,
                       description=what)  # fmt: skip

    f1, f1_kind = feeders[0]
    share = (1 - SIM_FEEDER_LOSS) * 0.6, (1 - SIM_FEEDER_LOSS) * 0.4
    tags = [
        computed(f"{base}/grid/power_total", grid_kw, "kW", "grid incomer active power"),
        computed(f"{base}/grid/import_kwh", grid_kwh, "kWh", "grid incomer import energy"),
    ]
    for name, frac in (("load-1a", share[0]), ("load-1b", share[1])):
        tags.append(computed(f"{base}/{name}/power_total", f"{{{site}/{f1}/power_total}} * {frac:.4f}", "kW",
                             f"{name} active power"))  # fmt: skip
        tags.append(computed(f"{base}/{name}/import_kwh", f"{{{site}/{f1}/{_IMPORT[f1_kind]}}} * {frac:.4f}", "kWh",
                             f"{name} import energy"))  # fmt: skip
    meters = [
        MeterSpec(name="main", type="main", site=site, description="main bus (sources in, feeders out)"),
        MeterSpec(name="grid", type="grid", parent="main", site=site, description="grid incomer",
                  points={"power_total": f"{base}/grid/power_total", "import_kwh": f"{base}/grid/import_kwh"}),
    ]  # fmt: skip
    generators, renewables = [], []
    if dg:
        meters.append(MeterSpec(name="dg", type="generator", parent="main", site=site, description="diesel generator",
                                device=dg, points={
                                    "power_total": f"{site}/{dg}/power_total", "import_kwh": f"{site}/{dg}/energy_kwh",
                                    "fuel_level": f"{site}/{dg}/fuel_level", "running": f"{site}/{dg}/running",
                                    "run_hours": f"{site}/{dg}/engine_hours", "starts": f"{site}/{dg}/start_count"}))  # fmt: skip
        generators.append(GeneratorSpec(meter="dg", rated_kw=dg_rated_kw, tank_l=1000.0))
    if pv:
        meters.append(MeterSpec(name="solar", type="solar", parent="main", site=site, description="rooftop PV",
                                device=pv, points={"power_total": f"{site}/{pv}/ac_power",
                                                   "import_kwh": f"{site}/{pv}/total_energy"}))  # fmt: skip
        renewables.append(RenewableSpec(meter="solar", kind="solar"))
    for i, (n, k) in enumerate(feeders, 1):
        meters.append(MeterSpec(name=f"feeder-{i}", type="feeder", parent="main", site=site, device=n,
                                description=f"feeder {i} ({n})", points={
                                    "power_total": f"{site}/{n}/power_total", "import_kwh": f"{site}/{n}/{_IMPORT[k]}",
                                    "pf_total": f"{site}/{n}/pf_total"}))  # fmt: skip
    for name in ("load-1a", "load-1b"):
        meters.append(MeterSpec(name=name, type="load", parent="feeder-1", site=site, description=f"{name} on feeder 1",
                                points={"power_total": f"{base}/{name}/power_total",
                                        "import_kwh": f"{base}/{name}/import_kwh"}))  # fmt: skip
    return EnergyPlan(tags, meters, generators, renewables)


def tag_spec(site: str, device: str, p: PointSpec, scan_group: str) -> TagSpec:
    """The tag that reads point ``p`` in the model's engineering units."""
    address = str(p.address) if p.bit is None else f"{p.address}.{p.bit}"
    units = p.unit
    k = p.scale
    if p.gain == 1000.0 and units in _KILO:
        units, k = _KILO[units], p.scale / 1000.0
    elif p.gain != 1.0:
        k = p.scale / p.gain
    scaling: dict[str, float] = {}
    dt = p.data_type.value
    if dt not in ("bool", "string") and k != 1.0:
        lo, hi = INT_RANGES.get(p.data_type, _FLOAT_RANGE)
        scaling = {"raw_low": float(lo), "raw_high": float(hi), "eng_low": lo * k, "eng_high": hi * k}
    return TagSpec(
        path=f"{site}/{device}/{p.name}",
        data_type=dt,  # type: ignore[arg-type]
        device=device,
        address=address,
        function=int(p.function),  # type: ignore[arg-type]
        byte_order=p.byte_order.value if p.byte_order.value != "big" else None,  # type: ignore[arg-type]
        word_order=p.word_order.value if p.word_order.value != "big" else None,  # type: ignore[arg-type]
        units=units,
        description=p.description or p.name.replace("_", " "),
        writable=p.writable,
        scan_group=scan_group,
        **scaling,
    )


class SimService(Service):
    """Sim.*: start, stop and break the built-in simulated plant."""

    name = "Sim"

    def __init__(
        self,
        catalog: Catalog,
        acq: Acquisition,
        seed: int = 1,
        add_alarms: Callable[[list[AlarmRuleSpec]], Awaitable[object]] | None = None,
        add_energy: Callable[[EnergyPlan], Awaitable[object]] | None = None,
    ) -> None:
        self.add_energy = add_energy
        self.catalog = catalog
        self.add_alarms = add_alarms
        self.acq = acq
        self.seed = seed  # when Sim.Start names none: the [simulator] seed
        self.sim: Simulator | None = None
        self.names: list[str] = []
        self.tag_counts: dict[str, int] = {}

    async def start_plant(self, p: SimStart) -> SimStatus:
        """Start the simulators and add (or update) their devices and tags."""
        self.catalog._require_loaded()
        if self.sim is not None:
            raise FailedPrecondition("the simulated plant is already running (`scadactl sim stop` first)")
        types = p.types or list(PROFILES)
        unknown = [t for t in types if t not in PROFILES]
        if unknown:
            raise InvalidArgument(f"unknown device type(s) {', '.join(unknown)} (one of {', '.join(PROFILES)})",
                                  "params.types")  # fmt: skip
        count = p.devices or len(types)
        # The models run on the drivers' clock, so a fixed daemon clock stands the plant still too.
        seed = self.seed if p.seed is None else p.seed
        sim = Simulator.mixed(count, types, base_port=p.base_port, tags_per_device=p.tags_per_device, seed=seed,
                              clock=clock.now_s)  # fmt: skip
        try:
            await sim.start()
        except OSError as exc:
            raise FailedPrecondition(f"cannot start the simulators: {exc}", {"field": "params.base_port"}) from None
        group = "default"
        if p.scan_ms != 1000:
            group = f"sim-{p.scan_ms}ms"
            rec, changed = await self.catalog.set_group(ScanGroupSet(name=group, interval_ms=p.scan_ms))
            self.acq.apply(changed)
        devices, tags = [], []
        rules: list[AlarmRuleSpec] = []
        names = []
        counts = {}
        for dev in sim.devices:
            name = device_name(dev.kind, dev.index)
            names.append(name)
            devices.append(DeviceSpec(name=name, protocol="modbus_tcp", host=dev.host, port=dev.port,
                                      unit_id=dev.unit, description=f"simulated {dev.profile.title}",
                                      max_gap=max(dev.profile.fill_gap, 16)))  # fmt: skip
            pts = [tag_spec(p.site, name, pt, group) for pt in dev.points]
            counts[name] = len(pts)
            tags.extend(pts)
            rules.extend(alarm_specs(p.site, name, dev.kind))
        try:
            _, changed = await self.catalog.import_devices(devices, update=True, dry_run=False)
            self.acq.apply(changed)
            _, changed = await self.catalog.import_tags(tags, update=True, dry_run=False)
            self.acq.apply(changed)
            if self.add_alarms is not None and p.alarms:
                await self.add_alarms(rules)
            plan = energy_plan(p.site, [(device_name(d.kind, d.index), d.kind) for d in sim.devices])
            if self.add_energy is not None and plan is not None and p.meters:
                await self.add_energy(plan)
        except BaseException:
            await sim.stop()
            raise
        self.sim, self.names, self.tag_counts = sim, names, counts
        log.info("simulated plant started", extra={"fields": {"devices": len(names), "tags": len(tags)}})
        return self._status()

    def _status(self) -> SimStatus:
        sim = self.sim
        if sim is None:
            return SimStatus(running=False, devices=[])
        return SimStatus(
            running=True,
            devices=[
                SimDevice(
                    name=n, kind=d.kind, port=d.port, tags=self.tag_counts.get(n, 0), fault=str(d.fault or "none")
                )
                for n, d in zip(self.names, sim.devices, strict=True)
            ],
        )

    async def stop_plant(self) -> None:
        sim, self.sim = self.sim, None
        if sim is not None:
            await sim.stop()

    @rpc(permission="devices.configure", mutates=True)
    async def start(self, ctx: CallContext, params: SimStart) -> SimStatus:
        """Start simulated devices on loopback and add them (and their tags) to the plant."""
        return await self.start_plant(params)

    @rpc(permission="devices.configure", mutates=True)
    async def stop(self, ctx: CallContext, params: Empty) -> SimStatus:
        """Stop the simulators; their devices stay configured (and go BAD)."""
        await self.stop_plant()
        return self._status()

    @rpc(permission="devices.read")
    async def status(self, ctx: CallContext, params: Empty) -> SimStatus:
        """Whether the simulated plant runs, its devices, ports and faults."""
        return self._status()

    @rpc(permission="devices.configure", mutates=True)
    async def fault(self, ctx: CallContext, params: SimFault) -> SimStatus:
        """Break a simulated device: timeout, exception[:START[-END]][:CODE], disconnect, garbage, clear."""
        if self.sim is None:
            raise FailedPrecondition("the simulated plant is not running (`scadactl sim start`)")
        try:
            index = self.names.index(params.device)
        except ValueError:
            raise NotFound(f"no simulated device {params.device!r}", {"field": "params.device"}) from None
        try:
            fault = Fault.parse(params.fault)
        except ValueError as exc:
            raise InvalidArgument(str(exc), "params.fault") from None
        await self.sim.set_fault(index, fault)
        return self._status()
