"""`depotwatch consignment report ID`: a consignment's custody record, signed (issue 27)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.cli.subcommand import Commands, add_config_option, read_config
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["add_consignment_commands"]


def _report(args: argparse.Namespace) -> int:
    from daemon.book.exports import moment_ns
    from daemon.book.store import RECORDS_FILE, RecordsStore
    from daemon.cli.record import sign_output
    from daemon.records.custody import consignment_report
    from daemon.records.document import Format, ReportError
    from daemon.records.report import write_report

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    output = Path(args.output)
    formats: dict[str, Format] = {".csv": "csv", ".json": "json"}
    fmt: Format = args.format or formats.get(output.suffix.lower(), "pdf")
    try:
        start, end = moment_ns(args.since), moment_ns(args.until)
    except ValueError as exc:
        print(f"--from/--to: {exc} (give a date, e.g. 2026-11-01)", file=sys.stderr)
        return 2
    store = RecordsStore(config.state_dir / RECORDS_FILE)
    try:
        if fmt == "pdf":
            from daemon.records.pdf import check_libraries

            check_libraries()
        report = consignment_report(config, store, args.id, start, end,
                                    lambda m: print(f"consignment: {m}", file=sys.stderr))
        write_report(report, output, fmt)
    except ReportError as exc:
        print(f"consignment report failed: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"wrote {output} ({fmt}; audit trail {report.audit_status})", file=sys.stderr)
    return 0 if args.no_sign else sign_output(config, output, report.audit_head_hash)


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
    add_config_option(report)
    report.add_argument("-o", "--output", required=True, help="the file to write")
    report.add_argument("--format", choices=["pdf", "csv", "json"],
                        help="default: from the output's suffix (.csv, .json), else pdf")
    report.add_argument("--no-sign", action="store_true",
                        help="do not write FILE.sig (by default the gateway key signs it)")
    report.set_defaults(func=_report)
