"""`depotwatch run` and `check-config`: start the daemon on a config, or only validate it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from daemon.cli.egress import DROP_IN, not_allowed
from daemon.cli.subcommand import Commands, add_config_option, read_config
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["add_service_commands"]

log = logging.getLogger("depotwatch")


def _check_config(args: argparse.Namespace) -> int:
    path = args.config
    if args.file is not None:
        # The positional form predates `-c` on every command; kept so scripts go on working.
        print("depotwatch: `check-config FILE` is deprecated; use `check-config -c FILE`",
              file=sys.stderr)
        path = args.file
    config = read_config(path)
    if config is None:
        return EXIT_CONFIG
    depot = config.depot()
    print(f"{path}: OK (site {config.site.id}: {len(depot.storehouses)} storehouses, "
          f"{len(depot.doors)} doors, {len(depot.sensors)} sensors, "
          f"{len(config.rule_set())} rule kinds)")
    if config.devices:
        print(f"{path}: {len(config.devices)} device(s) bound to profiles, every profile's "
              f"samples decoded; {len(config.bridges)} bridge(s)")
    for binding in config.devices:
        kind = depot.sensors[binding.sensor].kind.value
        if kind not in binding.spec.kinds:
            print(f"{path}: warning: sensor {binding.sensor} is a {kind}; profile "
                  f"{binding.profile} is for {', '.join(binding.spec.kinds)}", file=sys.stderr)
    for storehouse in depot.storehouses.values():
        kinds = depot.intrusion_detection(storehouse.id)
        if len(kinds) < 2:
            # A warning, not an error: a depot may be putting its detectors in step by step.
            named = ", ".join(sorted(kinds)) or "none"
            print(f"{path}: warning: storehouse {storehouse.id} has {len(kinds)} kind(s) "
                  f"of intrusion detection ({named}); arms and ammunition stores need two "
                  "(door contacts count as one)", file=sys.stderr)
    for problem in not_allowed(config, Path(args.ip_allow_file)):
        print(f"{path}: warning: {problem}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    # SIGHUP is a reload, never the end: ignored until the daemon can take it.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    from daemon.heap import settle_heap
    from daemon.runner import Daemon
    from daemon.stopguard import EXIT_FAILED, StopGuard

    async def main() -> None:
        stop = asyncio.Event()
        guard = StopGuard(asyncio.get_running_loop(), stop)
        guard.install()
        daemon = Daemon(config, config_path=Path(args.config))
        settle_heap()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, daemon.request_reload)
        await daemon.run(stop)

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


def _reload(args: argparse.Namespace) -> int:
    # Checked here first: a mistake is shown to whoever asked, with its line, and the daemon
    # (which would keep its config and raise config_invalid) is not bothered.
    if args.config is not None and read_config(args.config) is None:
        return EXIT_CONFIG
    if args.pid is not None:
        try:
            os.kill(args.pid, signal.SIGHUP)
        except OSError as exc:
            print(f"depotwatch reload: cannot signal PID {args.pid}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 1
        print(f"SIGHUP sent to PID {args.pid}")
        return 0
    done = subprocess.run(["systemctl", "reload", args.unit], check=False)
    return done.returncode


def add_service_commands(commands: Commands) -> None:
    """`depotwatch run -c CONFIG` and `depotwatch check-config -c CONFIG`."""
    run = commands.add_parser(
        "run", help="run the daemon",
        epilog="SIGHUP reloads the config file (see `depotwatch reload`); a failed task is "
               "restarted with back-off and raised as a task_failed alert. Exit status: 0 "
               "stopped by SIGTERM/SIGINT after a clean stop; 1 a failure before the daemon "
               "ran; 2 the stop was cut short (a second signal, or it overran 10 s); 78 a bad "
               "config.")
    add_config_option(run)
    run.set_defaults(func=_run)

    reload = commands.add_parser(
        "reload", help="make the running daemon read its config again (SIGHUP)",
        epilog="Through systemd (`systemctl reload UNIT`, the unit's ExecReload=) unless --pid "
               "is given. Applied at once: depot register, rules, alerting and officers' "
               "tokens; a restart is needed for the MQTT broker, state_dir, serial/Modbus, "
               "InfluxDB, spool and notifier settings and the API's address. An invalid file "
               "changes nothing (exit 78 here with -c; the daemon logs it and raises a "
               "config_invalid alert).")
    reload.add_argument("-c", "--config", help="check this config file first (exit 78 if bad)")
    reload.add_argument("--unit", default="depotwatch.service", help="systemd unit to reload")
    reload.add_argument("--pid", type=int, help="signal this process instead of systemd")
    reload.set_defaults(func=_reload)

    check = commands.add_parser(
        "check-config", help="validate a config file; every error with its line (exit 78); "
        "decodes each bound device profile's samples with the binding's decoder")
    add_config_option(check)
    check.add_argument("file", nargs="?", help="deprecated: the same as -c FILE")
    check.add_argument("--ip-allow-file", default=DROP_IN, metavar="FILE",
                       help="warn of configured servers this `depotwatch ip-allow` drop-in "
                       f"would cut off, if it exists (default: {DROP_IN})")
    check.set_defaults(func=_check_config)
