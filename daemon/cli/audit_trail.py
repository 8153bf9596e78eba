"""`depotwatch audit`: the hash-chained audit log verified, or exported for the central archive."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from daemon.cli.subcommand import (
    Commands,
    add_actions,
    add_config_option,
    add_json_option,
    print_json,
    read_config,
)
from daemon.vocabulary.errors import EXIT_CONFIG

if TYPE_CHECKING:
    from daemon.alerts.audit import VerifyResult

__all__ = ["add_audit_command"]


def _since_ns(text: str) -> int:
    """An ISO 8601 time (UTC when it has no offset) as nanoseconds since the epoch."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


def _progress_bar() -> Callable[[int, int], None] | None:
    """A progress line on stderr, only when stderr is a terminal (not in scripts or journald)."""
    if not sys.stderr.isatty():
        return None

    def draw(done: int, total: int) -> None:
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        end = "\n" if done >= total else ""
        print(f"\rverifying [{bar:<30}] {share:4.0%} {done / 1e6:.0f}/{total / 1e6:.0f} MB",
              end=end, file=sys.stderr, flush=True)
    return draw


def _verify_json(path: Path, result: VerifyResult | None) -> dict[str, object]:
    if result is None:
        return {"path": str(path), "files": [], "status": "missing", "lines": 0,
                "last_seq": 0, "last_hash": "", "problems": [], "torn": None,
                "torn_set_aside": []}
    torn = {"line": result.torn.line, "size": result.torn.size} if result.torn else None
    return {"path": str(path), "files": [str(f) for f in result.files],
            "status": result.status, "lines": result.lines, "last_seq": result.last_seq,
            "last_hash": result.last_hash,
            "problems": [{"kind": p.kind, "file": p.file or path.name, "line": p.line,
                          "seq": p.seq, "message": p.message} for p in result.problems],
            "torn": torn, "torn_set_aside": [str(p) for p in _torn_aside(path)]}


def _torn_aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.torn-*"))


def _verify(path: Path, as_json: bool) -> int:
    from daemon.alerts.audit import verify

    result = verify(path, progress=_progress_bar())
    codes = {"intact": 0, "tampered": 1, "torn_tail": 3}
    if as_json:
        print_json(_verify_json(path, result))
        return codes[result.status]
    for problem in result.problems:
        print(problem)
    if result.torn:
        print(f"line {result.torn.line}: torn final write ({result.torn.size} bytes without a "
              "newline): an append cut short by a crash, not tampering; the daemon sets it "
              "aside when it next starts")
    for aside in _torn_aside(path):
        print(f"torn write set aside earlier: {aside}")
    files = f" in {len(result.files)} files" if len(result.files) > 1 else ""
    head = (f"{path}: {result.lines} lines{files}, last seq {result.last_seq}, "
            f"last hash {result.last_hash}")
    if result.status == "tampered":
        print(f"{head}: TAMPERED ({len(result.problems)} problem(s) above)")
    elif result.status == "torn_tail":
        print(f"{head}: chain intact up to a torn final write")
    else:
        print(f"{head}: chain intact")
    return codes[result.status]


def _export(path: Path, args: argparse.Namespace) -> int:
    import os

    from daemon.alerts.audit import encode, export

    count = 0
    try:
        with (open(args.output, "w", encoding="utf-8") if args.output
              else contextlib.nullcontext(sys.stdout)) as out:
            for entry in export(path, args.since):
                out.write(encode(entry) + "\n")
                count += 1
    except BrokenPipeError:
        # `audit export ... | head`: stop quietly (the docs' recipe for a closed stdout).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    print(f"exported {count} audit entries from {path}", file=sys.stderr)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from daemon.alerts.audit import audit_path
    from daemon.alerts.audit_format import chain_files

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    path = audit_path(config.state_dir)
    if not chain_files(path):
        if getattr(args, "json", False):
            print_json(_verify_json(path, None))
        else:
            print(f"no audit log yet ({path} does not exist)", file=sys.stderr)
        return 0
    if args.action == "export":
        return _export(path, args)
    return _verify(path, args.json)


def add_audit_command(commands: Commands) -> None:
    """`depotwatch audit verify -c CONFIG` and `depotwatch audit export -c CONFIG --since T`."""
    audit = commands.add_parser(
        "audit", help="the hash-chained audit log: verify it, export it for the archive")
    audit_actions = add_actions(audit)
    audit_verify = audit_actions.add_parser(
        "verify", help="check every entry and link, across rotated files, streaming (a progress "
        "bar on a terminal); exit 0 intact, 1 tampered (each problem with its line and seq), 3 "
        "only a torn final write")
    add_config_option(audit_verify)
    add_json_option(audit_verify)
    audit_export = audit_actions.add_parser(
        "export", help="write entries as JSON lines for the central archive (across rotated "
        "files)")
    add_config_option(audit_export)
    audit_export.add_argument("--since", required=True, type=_since_ns,
                              help="ISO 8601 time (UTC without an offset): from the first entry "
                              "at or after it")
    audit_export.add_argument("-o", "--output", help="write to this file instead of stdout")
    audit.set_defaults(func=_audit)
