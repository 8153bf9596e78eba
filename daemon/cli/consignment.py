"""`depotwatch consignment report ID`: a consignment's custody record, signed (issue 27)."""

from __future__ import annotations

import argparse
import sys

from daemon.cli.record import add_output_options
from daemon.cli.subcommand import Commands, read_config
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["add_consignment_commands"]


def _report(args: argparse.Namespace) -> int:
    from daemon.book.exports import moment_ns
    from daemon.book.store import RECORDS_FILE, RecordsStore
    from daemon.cli.record import write_signed
    from daemon.records.custody import consignment_report

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    try:
        start, end = moment_ns(args.since), moment_ns(args.until)
    except ValueError as exc:
        print(f"--from/--to: {exc} (give a date, e.g. 2026-11-01)", file=sys.stderr)
        return 2
    store = RecordsStore(config.state_dir / RECORDS_FILE)
    try:
        return write_signed(config, args, lambda: consignment_report(
            config, store, args.id, start, end,
            lambda m: print(f"consignment: {m}", file=sys.stderr)), "consignment report")
    finally:
        store.close()


def add_consignment_commands(commands: Commands) -> None:
    """`depotwatch consignment report ID --from D --to D -c CONFIG -o FILE`."""
    group = commands.add_parser(
        "consignment", help="a delivered consignment's custody record (ATT Articles 11, 13)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    report = actions.add_parser(
        "report", help="for every item of a consignment: its steps on the book, portal "
        "passages, the climate it lived in against the limits, the alarms of its storehouses "
        "and how they were handled; PDF, CSV or JSON, signed")
    report.add_argument("id", help="the consignment's id on the book")
    report.add_argument("--from", dest="since", required=True,
                        help="start, a date or time (UTC unless it carries an offset)")
    report.add_argument("--to", dest="until", required=True, help="end (exclusive)")
    add_output_options(report)
    report.set_defaults(func=_report)
