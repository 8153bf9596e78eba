"""The `depotwatch` command: its options, the subcommand groups in order, and `main`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, cast

from daemon import __version__
from daemon.cli.audit_trail import add_audit_command
from daemon.cli.consignment import add_consignment_commands
from daemon.cli.dashboards import add_dashboards_command
from daemon.cli.devices import add_devices_command
from daemon.cli.egress import add_ip_allow_command
from daemon.cli.hq import add_hq_command
from daemon.cli.logformat import LOG_FORMATS, LOG_LEVELS, setup_logging
from daemon.cli.officers import add_officer_commands
from daemon.cli.playback import add_playback_commands
from daemon.cli.record import add_report_command
from daemon.cli.records import add_records_commands
from daemon.cli.service import add_service_commands
from daemon.cli.shell import add_shell_commands
from daemon.cli.signing import add_signing_commands
from daemon.cli.state_dir import add_state_dir_commands
from daemon.cli.subcommand import Commands

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """A parser whose every subcommand, at any depth, takes the logging options too."""

    def __init__(self, *args: Any, top: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Below the top, SUPPRESS keeps a value given before the subcommand unless it is
        # given again after it (`depotwatch run --log-level debug`, as systemd units write it).
        default: dict[str, str] = {"level": "info", "format": "auto"} if top else {
            "level": argparse.SUPPRESS, "format": argparse.SUPPRESS}
        self.add_argument("--log-level", default=default["level"], choices=LOG_LEVELS,
                          help="least severe log lines shown (default: info)")
        self.add_argument("--log-format", default=default["format"], choices=LOG_FORMATS,
                          help="text; journal (syslog <N> priority prefix, no timestamp); json "
                          "(one object per line); auto (default): journal when stderr is "
                          "journald's ($JOURNAL_STREAM), else text")


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = _Parser(
        top=True,
        prog="depotwatch",
        description="Guards an arms and ammunition depot: reads door, badge, portal and climate "
        "sensors over MQTT and serial lines, checks them against PSSM rules, keeps every "
        "reading in a disk spool until InfluxDB has it, and raises alarms that officers "
        "acknowledge, check on site and clear.",
    )
    parser.add_argument("--version", action="version", version=f"depotwatch {__version__}")
    # Typed as the protocol every group takes: its parsers are _Parser, so they get the options.
    commands = cast(Commands, parser.add_subparsers(dest="command", required=True,
                                                    metavar="COMMAND"))
    # The order here is the order of `depotwatch --help`.
    for add_commands in (add_service_commands, add_hq_command, add_state_dir_commands,
                         add_devices_command, add_audit_command, add_playback_commands,
                         add_dashboards_command, add_report_command, add_consignment_commands,
                         add_officer_commands,
                         add_ip_allow_command, add_signing_commands, add_records_commands):
        add_commands(commands)
    add_shell_commands(commands, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `depotwatch` command."""
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    code: int = args.func(args)
    return code
