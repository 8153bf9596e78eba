"""The `depotwatch` command: its options, the subcommand groups in order, and `main`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from daemon import __version__
from daemon.cli.audit_trail import add_audit_command
from daemon.cli.dashboards import add_dashboards_command
from daemon.cli.officers import add_officer_commands
from daemon.cli.playback import add_playback_commands
from daemon.cli.record import add_report_command
from daemon.cli.service import add_service_commands
from daemon.cli.state_dir import add_state_dir_commands

__all__ = ["build_parser", "main"]


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # gmqtt logs every reconnect attempt at INFO/WARNING; our link reports connection state.
    logging.getLogger("gmqtt").setLevel(logging.ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="depotwatch",
        description="Guards an arms and ammunition depot: reads door, badge, portal and climate "
        "sensors over MQTT and serial lines, checks them against PSSM rules, keeps every "
        "reading in a disk spool until InfluxDB has it, and raises alarms that officers "
        "acknowledge, check on site and clear.",
    )
    parser.add_argument("--version", action="version", version=f"depotwatch {__version__}")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The order here is the order of `depotwatch --help`.
    for add_commands in (add_service_commands, add_state_dir_commands, add_audit_command,
                         add_playback_commands, add_dashboards_command, add_report_command,
                         add_officer_commands):
        add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `depotwatch` command."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    code: int = args.func(args)
    return code
