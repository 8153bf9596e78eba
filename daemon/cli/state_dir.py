"""`depotwatch deadletters` and `spool`: what the gateway keeps in its state_dir, shown."""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3

from daemon.cli.subcommand import Commands, add_config_option, read_config
from daemon.ingest.settings import DeadLetterConfig
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["add_state_dir_commands"]


def _deadletters(args: argparse.Namespace) -> int:
    from daemon.ingest.deadletters import DeadLetterStore

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    path = config.state_dir / "deadletters.sqlite"
    if not path.exists():
        print(f"no dead letters ({path} does not exist)")
        return 0
    try:
        store = DeadLetterStore(path, DeadLetterConfig(), repair=False)
    except sqlite3.DatabaseError as exc:
        print(f"{path}: damaged ({exc}); the daemon sets it aside at its next start")
        return 1
    entries = store.entries(args.limit)
    print(f"{store.total()} dead letter(s) kept in {path}; newest {len(entries)}:")
    for entry in entries:
        at = dt.datetime.fromtimestamp(entry.at_ns / 1e9, tz=dt.UTC)
        preview = entry.payload[:80].decode("utf-8", errors="backslashreplace")
        print(f"#{entry.id} {at:%Y-%m-%dT%H:%M:%SZ} {entry.source}  {entry.reason}  "
              f"[{entry.size} bytes] {preview!r}")
    store.close()
    return 0


def _spool(args: argparse.Namespace) -> int:
    import time

    from daemon.spool.backlog import inspect_spool

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    report = inspect_spool(config.state_dir / "spool.sqlite")
    if report is None:
        print(f"no spool yet in {config.state_dir}")
        return 0
    print(f"spool {report.path}: {report.bytes / 1e6:.1f} MB on disk "
          f"(quota {config.spool.max_bytes / 1e6:.0f} MB)")
    now = time.time_ns()
    for item in report.backlog:
        age = f", oldest {(now - item.oldest_ns) / 1e9:.0f} s old" if item.oldest_ns else ""
        print(f"  {item.target}: {item.points} point(s) to write{age}")
    if report.receipts:
        print(f"  {report.receipts} message(s) committed but not yet acknowledged to the broker")
    for aside in report.set_aside:
        at = dt.datetime.fromtimestamp(aside.last_ns / 1e9, tz=dt.UTC)
        print(f"  set aside for {aside.target}: {aside.points} point(s), last "
              f"{at:%Y-%m-%dT%H:%M:%SZ}: {aside.reason[:200]}")
    for damaged in report.damaged_files:
        print(f"  damaged spool moved aside at start: {damaged}")
    return 0


def add_state_dir_commands(commands: Commands) -> None:
    """`depotwatch deadletters -c CONFIG` and `depotwatch spool -c CONFIG`."""
    dead = commands.add_parser("deadletters", help="list rejected payloads kept for inspection")
    add_config_option(dead)
    dead.add_argument("-n", "--limit", type=int, default=50, help="how many, newest first")
    dead.set_defaults(func=_deadletters)

    spool = commands.add_parser(
        "spool", help="show the spool: backlog per InfluxDB target, what was set aside")
    add_config_option(spool)
    spool.set_defaults(func=_spool)
