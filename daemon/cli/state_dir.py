"""`depotwatch deadletters` and `spool`: what the gateway keeps in its state_dir, shown."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.cli.subcommand import (
    Commands,
    add_config_option,
    add_json_option,
    print_json,
    read_config,
)
from daemon.ingest.settings import DeadLetterConfig
from daemon.vocabulary.errors import EXIT_CONFIG

if TYPE_CHECKING:
    from daemon.ingest.deadletters import DeadLetter
    from daemon.spool.backlog import SpoolReport

__all__ = ["add_state_dir_commands"]


def _iso(at_ns: int) -> str:
    return f"{dt.datetime.fromtimestamp(at_ns / 1e9, tz=dt.UTC):%Y-%m-%dT%H:%M:%SZ}"


def _letter_json(entry: DeadLetter) -> dict[str, object]:
    try:
        text: str | None = entry.payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"id": entry.id, "at": _iso(entry.at_ns), "at_ns": entry.at_ns,
            "source": entry.source, "reason": entry.reason, "size": entry.size,
            "payload_text": text,
            "payload_base64": base64.b64encode(entry.payload).decode("ascii")}


def _deadletters(args: argparse.Namespace) -> int:
    from daemon.ingest.deadletters import DeadLetterStore

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    path = config.state_dir / "deadletters.sqlite"
    if not path.exists():
        if args.json:
            print_json({"path": str(path), "total": 0, "entries": []})
        else:
            print(f"no dead letters ({path} does not exist)")
        return 0
    try:
        store = DeadLetterStore(path, DeadLetterConfig(), repair=False)
    except sqlite3.DatabaseError as exc:
        problem = f"damaged ({exc}); the daemon sets it aside at its next start"
        if args.json:
            print_json({"path": str(path), "error": problem})
        else:
            print(f"{path}: {problem}")
        return 1
    entries = store.entries(args.limit)
    total = store.total()
    store.close()
    if args.json:
        print_json({"path": str(path), "total": total,
                    "entries": [_letter_json(e) for e in entries]})
        return 0
    print(f"{total} dead letter(s) kept in {path}; newest {len(entries)}:")
    for entry in entries:
        preview = entry.payload[:80].decode("utf-8", errors="backslashreplace")
        print(f"#{entry.id} {_iso(entry.at_ns)} {entry.source}  {entry.reason}  "
              f"[{entry.size} bytes] {preview!r}")
    return 0


def _spool_json(report: SpoolReport | None, path: Path, quota: int) -> dict[str, object]:
    if report is None:
        return {"path": str(path), "exists": False, "bytes": 0, "quota_bytes": quota,
                "targets": [], "unacknowledged_messages": 0, "set_aside": [],
                "damaged_files": []}
    return {"path": str(report.path), "exists": True, "bytes": report.bytes,
            "quota_bytes": quota,
            "targets": [{"target": b.target, "points": b.points, "oldest_ns": b.oldest_ns}
                        for b in report.backlog],
            "unacknowledged_messages": report.receipts,
            "set_aside": [{"target": a.target, "reason": a.reason, "points": a.points,
                           "last": _iso(a.last_ns), "last_ns": a.last_ns}
                          for a in report.set_aside],
            "damaged_files": [str(f) for f in report.damaged_files]}


def _spool(args: argparse.Namespace) -> int:
    import time

    from daemon.spool.backlog import inspect_spool

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    path = config.state_dir / "spool.sqlite"
    report = inspect_spool(path)
    if args.json:
        print_json(_spool_json(report, path, config.spool.max_bytes))
        return 0
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
        print(f"  set aside for {aside.target}: {aside.points} point(s), last "
              f"{_iso(aside.last_ns)}: {aside.reason[:200]}")
    for damaged in report.damaged_files:
        print(f"  damaged spool moved aside at start: {damaged}")
    return 0


def add_state_dir_commands(commands: Commands) -> None:
    """`depotwatch deadletters -c CONFIG` and `depotwatch spool -c CONFIG`."""
    dead = commands.add_parser("deadletters", help="list rejected payloads kept for inspection")
    add_config_option(dead)
    dead.add_argument("-n", "--limit", type=int, default=50, help="how many, newest first")
    add_json_option(dead)
    dead.set_defaults(func=_deadletters)

    spool = commands.add_parser(
        "spool", help="show the spool: backlog per InfluxDB target, what was set aside")
    add_config_option(spool)
    add_json_option(spool)
    spool.set_defaults(func=_spool)
