"""`scadad`: the SCADA daemon's command line.

Exit codes: 0 clean stop, 1 start-up failure (store, migration, socket), 2 bad usage or
configuration, 3 another daemon already holds the store or the socket.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from scadad import __version__, logs

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_ALREADY_RUNNING = 0, 1, 2, 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="scadad",
        description="The SCADA daemon: owns the store, the plant model and the local API socket. "
        "Runs in the foreground; stop it with SIGTERM or Ctrl-C, reload its config with SIGHUP.",
        epilog="Exit codes: 0 clean stop, 1 start-up failure, 2 bad usage or configuration, "
        "3 another daemon holds the store or socket. See scadad(8) and scadad.toml(5).",
    )
    p.add_argument("--config", "-c", type=Path, help="configuration file (TOML); default: built-in defaults")
    p.add_argument("--socket", type=Path, help="override api.socket from the config")
    p.add_argument("--store", help="override store.url from the config (sqlite:///... or postgresql://...)")
    p.add_argument("--log-format", choices=["plain", "json"], help="override log.format")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="override log.level")
    p.add_argument(
        "--simulate",
        action="store_true",
        help="start the built-in simulated plant (Modbus TCP devices on loopback) and poll it; see [simulator]",
    )
    p.add_argument("--check-config", action="store_true", help="validate the configuration, print it, and exit")
    p.add_argument("--version", action="version", version=f"scadad {__version__}")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Imports after argument parsing keep `scadad --help` instant.
    from scadad.config import Config, ConfigError, load

    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"scadad: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    s = config.settings
    if args.log_format:
        s.log.format = args.log_format
    if args.log_level:
        s.log.level = args.log_level
    if args.simulate:
        s.simulator.enabled = True
    if args.socket or args.store:
        config = Config(
            config.path,
            s,
            config.data_dir,
            args.socket.resolve() if args.socket else config.socket_path,
            args.store or config.store_url,
        )
    if args.check_config:
        import msgspec

        print(f"config: {config.path or '<defaults>'}")
        print(f"data_dir: {config.data_dir}\nsocket: {config.socket_path}\nstore: {config.store_url}")
        print(msgspec.json.format(msgspec.json.encode(s)).decode())
        return EXIT_OK
    logs.setup(s.log.level, s.log.format)
    overrides = {k: v for k, v in (("format", args.log_format), ("level", args.log_level)) if v}
    return run(config, overrides)


def run(config: object, log_overrides: dict[str, str]) -> int:
    from scadad.daemon import Daemon
    from scadad.instance import AlreadyRunning
    from scadad.store.migrations import MigrationError

    log = logging.getLogger("scadad")
    try:
        daemon = Daemon(config, log_overrides)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - a bad store URL and the like: say it and stop
        log.error("cannot start", extra={"fields": {"error": str(exc)}})
        return EXIT_FAILURE
    try:
        daemon.prepare()
        asyncio.run(daemon.serve())
    except AlreadyRunning as exc:
        log.error("another daemon is running", extra={"fields": {"error": str(exc)}})
        print(f"scadad: {exc}", file=sys.stderr)
        return EXIT_ALREADY_RUNNING
    except MigrationError as exc:
        log.error("migration failed; nothing was changed by the failing file", extra={"fields": {"error": str(exc)}})
        return EXIT_FAILURE
    except OSError as exc:
        log.error("cannot start", extra={"fields": {"error": str(exc)}})
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - e.g. the store is unreachable
        log.exception("cannot start", extra={"fields": {"error": str(exc)}})
        return EXIT_FAILURE
    finally:
        daemon.close()
    log.info("stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
