"""`depotwatch run` and `check-config`: start the daemon on a config, or only validate it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from daemon.cli.subcommand import Commands, read_config
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["add_service_commands"]

log = logging.getLogger("depotwatch")


def _check_config(args: argparse.Namespace) -> int:
    config = read_config(args.file)
    if config is None:
        return EXIT_CONFIG
    depot = config.depot()
    print(f"{args.file}: OK (site {config.site.id}: {len(depot.storehouses)} storehouses, "
          f"{len(depot.doors)} doors, {len(depot.sensors)} sensors, "
          f"{len(config.rule_set())} rule kinds)")
    for storehouse in depot.storehouses.values():
        kinds = depot.intrusion_detection(storehouse.id)
        if len(kinds) < 2:
            # A warning, not an error: a depot may be putting its detectors in step by step.
            named = ", ".join(sorted(kinds)) or "none"
            print(f"{args.file}: warning: storehouse {storehouse.id} has {len(kinds)} kind(s) "
                  f"of intrusion detection ({named}); arms and ammunition stores need two "
                  "(door contacts count as one)", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    from daemon.runner import Daemon
    from daemon.stopguard import EXIT_FAILED, StopGuard

    async def main() -> None:
        stop = asyncio.Event()
        guard = StopGuard(asyncio.get_running_loop(), stop)
        guard.install()
        await Daemon(config).run(stop, failed=guard.failed)

    try:
        asyncio.run(main())
    except Exception as exc:  # the TaskGroup's ExceptionGroup; the runner logged each failure
        failures = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
        summary = "; ".join(f"{type(e).__name__}: {e}" for e in failures)
        # A group's tracebacks are logged already; one from before the tasks started is not.
        log.critical("depotwatch stopped after a failure (%s); exit status %d",
                     summary, EXIT_FAILED, exc_info=not isinstance(exc, ExceptionGroup))
        return EXIT_FAILED
    return 0


def add_service_commands(commands: Commands) -> None:
    """`depotwatch run -c CONFIG` and `depotwatch check-config FILE`."""
    run = commands.add_parser(
        "run", help="run the daemon",
        epilog="Exit status: 0 stopped by SIGTERM/SIGINT after a clean stop; 1 a task failed "
               "(systemd restarts it); 2 the stop was cut short (a second signal, or it overran "
               "10 s); 78 a bad config.")
    run.add_argument("-c", "--config", required=True, help="YAML config file")
    run.set_defaults(func=_run)

    check = commands.add_parser(
        "check-config", help="validate a config file; every error with its line (exit 78)")
    check.add_argument("file")
    check.set_defaults(func=_check_config)
