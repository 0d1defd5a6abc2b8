"""Run the simulated plant: ``python -m drivers.simulator --devices 5 --base-port 15020``.

Prints one line per device (index, type, host:port, unit, register map) and
serves until Ctrl-C or SIGTERM. ``--duration`` stops after that many seconds
and prints the CPU time used, for benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time

from drivers.simulator.profiles import FILLER_START, PROFILES
from drivers.simulator.server import Simulator

DEFAULT_TYPES = "sdm630,pm5xxx,em24,dg,inverter,pump_plc"


def _types(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in PROFILES]
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown type(s) {', '.join(unknown) or '(none)'}; known: {', '.join(PROFILES)}"
        )
    return kinds


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} outside 0..65535")
    return port


def build_parser() -> argparse.ArgumentParser:
    types_help = "; ".join(f"{p.kind}: {p.title}" for p in PROFILES.values())
    parser = argparse.ArgumentParser(
        prog="python -m drivers.simulator",
        description=(
            "Simulated field devices for the demo, the tests and the benchmarks: each device is its own "
            "Modbus TCP server with the register map of a real product family, updated from deterministic "
            "load, solar, generator and pump models."
        ),
        epilog=f"Device types - {types_help}.",
    )
    parser.add_argument("--devices", type=int, default=None, help="number of devices (default: one per type)")
    parser.add_argument(
        "--types",
        type=_types,
        default=_types(DEFAULT_TYPES),
        help=f"comma-separated device types, assigned in turn (default: {DEFAULT_TYPES})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument(
        "--base-port",
        type=_port,
        default=15020,
        help="device i listens on BASE_PORT + i; 0 picks a free port per device (default: 15020)",
    )
    parser.add_argument("--unit", type=int, default=1, help="Modbus unit id every device answers to (default: 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the models: same seed, same values (default: 1)")
    parser.add_argument(
        "--tags-per-device",
        type=int,
        default=0,
        metavar="M",
        help=f"extra float32 input registers per device from address {FILLER_START}, for load tests (default: 0)",
    )
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between model updates (default: 1)")
    parser.add_argument(
        "--utc-offset", type=float, default=0.0, help="site time zone offset in hours for the daily curves (default: 0)"
    )
    parser.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds and print the CPU time used"
    )
    parser.add_argument(
        "--opcua-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="also serve the same devices (same models) over OPC UA on PORT; 0 picks a free port (needs asyncua)",
    )
    return parser


async def _serve(args: argparse.Namespace) -> int:
    count = args.devices if args.devices is not None else len(args.types)
    sim = Simulator.mixed(
        count,
        args.types,
        base_port=args.base_port,
        host=args.host,
        unit=args.unit,
        seed=args.seed,
        interval=args.interval,
        tags_per_device=args.tags_per_device,
        utc_offset_h=args.utc_offset,
    )
    try:
        await sim.start()
    except OSError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 1
    for dev in sim.devices:
        extra = f"; filler input {FILLER_START}-{FILLER_START + 2 * len(dev.fillers) - 1}" if dev.fillers else ""
        print(
            f"{dev.index:>4}  {dev.kind:<9} {dev.host}:{dev.port:<5}  unit {dev.unit}  {dev.profile.summary()}{extra}"
        )
    opcua = None
    if args.opcua_port is not None:
        from drivers.simulator.opcua_server import OpcUaSimulator  # asyncua only when asked for

        opcua = OpcUaSimulator(
            [d.kind for d in sim.devices],
            port=args.opcua_port,
            seed=args.seed,
            interval=args.interval,
            host=args.host,
            utc_offset_h=args.utc_offset,
            models=[d.model for d in sim.devices],
        )
        try:
            await opcua.start()
        except OSError as exc:
            await sim.stop()
            print(f"simulator: OPC UA: {exc}", file=sys.stderr)
            return 1
        print(f"simulator: OPC UA at {opcua.endpoint}, node ids ns={opcua.namespace_index};s=<type>-<index>.<point>")
    print(f"simulator: {count} device(s) serving, update every {args.interval:g} s; Ctrl-C to stop", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    cpu0, wall0 = time.process_time(), time.monotonic()
    try:
        if args.duration is None:
            await stop.wait()
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.duration)
    finally:
        if opcua is not None:
            await opcua.stop()
        await sim.stop()
    if args.duration is not None:
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
        print(
            f"simulator: {sim.update_count} updates, cpu {cpu:.2f} s in {wall:.2f} s ({100 * cpu / wall:.1f} % of one core)"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.devices is not None and args.devices < 1:
        build_parser().error("--devices must be at least 1")
    if args.tags_per_device < 0:
        build_parser().error("--tags-per-device must be >= 0")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_serve(args))
    except KeyboardInterrupt:
        return 0
    except ValueError as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
