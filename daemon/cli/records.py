"""`depotwatch records import|export|reconcile`: the book from the command line (issue 19)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from daemon.alerts.audit import AuditError, AuditLog, audit_path
from daemon.alerts.officers import AlertClient, ApiError
from daemon.book.csvio import COLUMNS
from daemon.book.entries import KINDS
from daemon.book.exports import EXPORTS, export, influx_passages, moment_ns
from daemon.book.live import seed_store
from daemon.book.seed import differences, seed_entries
from daemon.book.store import RECORDS_FILE, RecordsStore
from daemon.cli.subcommand import Commands, add_actions, add_config_option, read_config
from daemon.config.schema import Config
from daemon.records.document import ReportError
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["add_records_commands"]

def _client(config: Config, url: str | None) -> AlertClient | None:
    token = os.environ.get("DEPOTWATCH_TOKEN", "").strip()
    if not token:
        print("set DEPOTWATCH_TOKEN to your officer token (records role)", file=sys.stderr)
        return None
    return AlertClient(url or config.api.url(), token)


def _import(config: Config, args: argparse.Namespace) -> int:
    if args.file is None:
        return _seed(config, dry_run=args.dry_run)
    if args.kind is None:
        print("--kind roster or --kind items: which register the file holds", file=sys.stderr)
        return 2
    client = _client(config, args.url)
    if client is None:
        return 2
    text = Path(args.file).read_text(encoding="utf-8-sig")
    try:
        answer = client.call("POST", "/records/import",
                             {"kind": args.kind, "csv": text, "dry_run": args.dry_run})
    except ApiError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 1
    for change in answer["changes"]:
        print(f"{change['action']:<6} {change['kind']} {change['key']}")
    verb = "would change" if args.dry_run else "changed"
    print(f"{verb} {len(answer['changes'])} record(s)")
    return 0


def _seed(config: Config, *, dry_run: bool) -> int:
    """The config's sections into the state dir's store, audited; with the daemon stopped."""
    try:
        audit = AuditLog(audit_path(config.state_dir))
    except AuditError as exc:
        print(f"{exc}: the daemon is running; stop it to import the config's sections, or "
              "import a CSV file through it (records import FILE.csv --kind ...)",
              file=sys.stderr)
        return 1
    with audit:
        store = RecordsStore(config.state_dir / RECORDS_FILE)
        try:
            if dry_run:
                incoming = seed_entries(config)
                writes = differences(store.load(), incoming,
                                     {k: store.versions(k) for k in incoming})
                for write in writes:
                    print(f"{'add' if write.expected is None else 'change':<6} {write.kind} "
                          f"{getattr(write.entry, KINDS[write.kind].key)}")
                print(f"would change {len(writes)} record(s)")
                return 0
            now = time.time_ns()
            written = seed_store(store, config, f"cli:{os.environ.get('USER', 'root')}", now)
            audit.append(f"cli:{os.environ.get('USER', 'root')}", "records.import", "seed",
                         {"records": written, "source": "config"}, now)
        finally:
            store.close()
    print(f"changed {written} record(s) from the config's sections")
    return 0


def _reconcile(config: Config, args: argparse.Namespace) -> int:
    client = _client(config, args.url)
    if client is None:
        return 2
    try:
        counted = client.call("POST", f"/records/reconcile/{args.storehouse}")
    except ApiError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(counted, indent=2))
        return 0
    print(f"{counted['storehouse']}: {counted['on_book']:.0f} on the book, "
          f"{counted['seen']:.0f} seen by its readers")
    for name in ("missing", "unexpected", "moved_without_order"):
        listed = counted[f"{name}_epcs"]
        more = " ..." if counted[name] > len(listed.split()) else ""
        print(f"  {name.replace('_', ' ')}: {counted[name]:.0f}"
              + (f" ({listed}{more})" if listed else ""))
    differences = sum(counted[n] for n in ("missing", "unexpected", "moved_without_order"))
    return 1 if differences else 0


def _export(config: Config, args: argparse.Namespace) -> int:
    store = RecordsStore(config.state_dir / RECORDS_FILE)
    try:
        text = export(args.what, store, moment_ns(args.since) if args.since else 0,
                      moment_ns(args.until) if args.until else 2**63 - 1,
                      passages=influx_passages(config))
    except ReportError as exc:
        print(f"portal passages: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
    return 0


def _records(args: argparse.Namespace) -> int:
    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    action = {"import": _import, "export": _export, "reconcile": _reconcile}[args.action]
    return action(config, args)


def add_records_commands(commands: Commands) -> None:
    """`depotwatch records import|export`."""
    records = commands.add_parser(
        "records", help="the book: import the roster or items from CSV (or the config's "
        "sections), export registers, their history and the counts; count a storehouse now")
    actions = add_actions(records)
    imports = actions.add_parser(
        "import", help="FILE.csv with --kind roster|items: through the running daemon's API "
        "($DEPOTWATCH_TOKEN, records role), every row or none; without FILE: the config's "
        "roster, items and order sections into the state dir (daemon stopped)")
    add_config_option(imports)
    imports.add_argument("file", nargs="?", metavar="FILE.csv")
    imports.add_argument("--kind", choices=sorted(COLUMNS))
    imports.add_argument("--dry-run", action="store_true",
                         help="show the changes (and line-numbered errors), apply nothing")
    imports.add_argument("--url", help="the daemon's API (default: from the config)")
    exports = actions.add_parser(
        "export", help="roster (no badges) or items as CSV; roster-history or orders-history: "
        "every change with who, when, approver, before and after; reconciliation: every "
        "count with what it found; movements: movement orders with their portal passages "
        "(from the config's first InfluxDB)")
    add_config_option(exports)
    exports.add_argument("what", choices=EXPORTS)
    exports.add_argument("file", metavar="FILE.csv", help="'-' for standard output")
    exports.add_argument("--since", help="history from this date or time (UTC unless given)")
    exports.add_argument("--until", help="history before this date or time")
    reconcile = actions.add_parser(
        "reconcile", help="count a storehouse against the book now, through the running "
        "daemon ($DEPOTWATCH_TOKEN, records role); exit 1 when it finds differences")
    add_config_option(reconcile)
    reconcile.add_argument("--storehouse", required=True, metavar="ID")
    reconcile.add_argument("--url", help="the daemon's API (default: from the config)")
    reconcile.add_argument("--json", action="store_true", help="print the API's JSON")
    records.set_defaults(func=_records)
