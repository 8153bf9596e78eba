"""`depotwatch report`: the monthly PSSM record of a config's depot, written as PDF, CSV or JSON."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.cli.subcommand import Commands, add_config_option, read_config
from daemon.config.schema import Config
from daemon.vocabulary.errors import EXIT_CONFIG

if TYPE_CHECKING:
    from daemon.records.document import Report

__all__ = ["add_output_options", "add_report_command", "sign_output", "write_signed"]


def _report(args: argparse.Namespace) -> int:
    from daemon.records.report import build_report

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    return write_signed(config, args, lambda: build_report(config, args.month, args.storehouse),
                        "report")


def write_signed(config: Config, args: argparse.Namespace, build: Callable[[], Report],
                 what: str) -> int:
    """Build a report, write it to `args.output` in `args.format` (else by the output's
    suffix), and sign it unless `args.no_sign`; the exit code (0 written and signed)."""
    from daemon.records.document import Format, ReportError
    from daemon.records.report import write_report

    output = Path(args.output)
    formats: dict[str, Format] = {".csv": "csv", ".json": "json"}
    fmt: Format = args.format or formats.get(output.suffix.lower(), "pdf")
    try:
        if fmt == "pdf":
            from daemon.records.pdf import check_libraries

            check_libraries()  # before the queries, not after them
        report = build()
        write_report(report, output, fmt)
    except ReportError as exc:
        print(f"{what} failed: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {output} ({fmt}; audit trail {report.audit_status})", file=sys.stderr)
    return 0 if args.no_sign else sign_output(config, output, report.audit_head_hash)


def sign_output(config: Config, output: Path, head_hash: str) -> int:
    """Sign a written report with the gateway key (`OUTPUT.sig`); 0 signed, 1 not."""
    from daemon.alerts.audit import audit_path
    from daemon.records.signing import GatewayKey, SignatureError, key_path, sign_document

    try:
        key = GatewayKey.load_or_create(key_path(config.state_dir))
        head = _audit_seq(audit_path(config.state_dir), head_hash) if head_hash else None
        signature = sign_document(output, key, site=config.site.id, audit_head=head)
    except (SignatureError, OSError) as exc:
        print(f"report written but not signed: {exc}", file=sys.stderr)
        return 1
    print(f"signed: {signature} (check: depotwatch verify {output} --key PUBKEY)",
          file=sys.stderr)
    return 0


def _audit_seq(audit: Path, head_hash: str) -> tuple[int, str] | None:
    # The report names its audit head by hash; the signature keeps its place in the chain too.
    from daemon.alerts.audit import export

    for entry in export(audit, 0):
        if entry.get("hash") == head_hash:
            return int(entry["seq"]), head_hash
    return None


def add_report_command(commands: Commands) -> None:
    """`depotwatch report --month YYYY-MM -c CONFIG -o FILE`."""
    report = commands.add_parser(
        "report", help="the monthly PSSM record per storehouse: PDF with plots, CSV or JSON "
        "(PDF needs the 'report' extra)")
    report.add_argument("--month", required=True, help="YYYY-MM, e.g. 2026-11")
    report.add_argument("--storehouse", help="only this storehouse (default: all)")
    add_output_options(report)
    report.set_defaults(func=_report)


def add_output_options(report: argparse.ArgumentParser) -> None:
    """The config, output file, format and signing options of a written report."""
    add_config_option(report)
    report.add_argument("-o", "--output", required=True, help="the file to write")
    report.add_argument("--format", choices=["pdf", "csv", "json"],
                        help="default: from the output's suffix (.csv, .json), else pdf")
    report.add_argument("--no-sign", action="store_true",
                        help="do not write FILE.sig (by default the gateway key signs it)")
