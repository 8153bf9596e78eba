"""`depotwatch hq -c hq.yaml`: run HQ's supervision of every depot."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from daemon.cli.subcommand import Commands
from daemon.config.loading import load_settings
from daemon.hq.settings import HqConfig
from daemon.vocabulary.errors import EXIT_CONFIG, ConfigError

__all__ = ["add_hq_command"]

DEFAULT_HQ_CONFIG = "/etc/depotwatch/hq.yaml"


def _read(path: str) -> HqConfig | None:
    try:
        return load_settings(path, HqConfig)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        print(f"{exc.path}: {len(exc.problems)} problem(s); not starting", file=sys.stderr)
        return None


def _hq(args: argparse.Namespace) -> int:
    config = _read(args.config)
    if config is None:
        return EXIT_CONFIG
    if args.check:
        print(f"{args.config}: OK (HQ {config.name}: {len(config.depots)} depots, "
              f"unreachable after {config.unreachable_after_s:g} s)")
        return 0
    from daemon.hq.service import Headquarters

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await Headquarters(config).run(stop)

    asyncio.run(main())
    return 0


def add_hq_command(commands: Commands) -> None:
    """`depotwatch hq -c HQ_CONFIG`."""
    hq = commands.add_parser(
        "hq", help="run HQ: supervise every depot's gateway over the HQ broker",
        epilog="Reads each depot's heartbeat (depotwatch/<site>/gateway/heartbeat), bridge "
               "state (depotwatch/<site>/gateway/bridge) and last will (depotwatch/<site>/"
               "status) on HQ's broker; a depot unheard for unreachable_after_s (180 s), or "
               "whose bridge or gateway is down for down_grace_s (30 s), raises "
               "depot_unreachable.<site> through HQ's notifiers, cleared with how long it was "
               "dark (and how many alarm changes arrived late). It serves a page and JSON API "
               "(api.listen_port, 8480: GET /api/depots; POST /api/depots/SITE/alarms/KEY/ack "
               "sends the acknowledgement to the depot's command topic with its "
               "command_token). Exit status: 0 stopped by SIGTERM/SIGINT; 78 a bad config.")
    hq.add_argument("-c", "--config", default=DEFAULT_HQ_CONFIG,
                    help=f"HQ's YAML config file (default: {DEFAULT_HQ_CONFIG})")
    hq.add_argument("--check", action="store_true",
                    help="only validate the config (every error with its line; exit 78)")
    hq.set_defaults(func=_hq)
