"""`depotwatch audit`: the hash-chained audit log verified, or exported for the central archive."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import sys

from daemon.cli.subcommand import Commands, add_actions, add_config_option, read_config
from daemon.vocabulary.errors import EXIT_CONFIG

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


def _audit(args: argparse.Namespace) -> int:
    import os

    from daemon.alerts.audit import audit_path, encode, export, verify

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    path = audit_path(config.state_dir)
    if not path.exists():
        print(f"no audit log yet ({path} does not exist)", file=sys.stderr)
        return 0
    if args.action == "export":
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
    result = verify(path)
    for problem in result.problems:
        print(problem)
    if result.torn:
        print(f"line {result.torn.line}: torn final write ({result.torn.size} bytes without a "
              "newline): an append cut short by a crash, not tampering; the daemon sets it "
              "aside when it next starts")
    for aside in sorted(path.parent.glob(f"{path.name}.torn-*")):
        print(f"torn write set aside earlier: {aside}")
    head = f"{path}: {result.lines} lines, last seq {result.last_seq}, last hash {result.last_hash}"
    if result.status == "tampered":
        print(f"{head}: TAMPERED ({len(result.problems)} problem(s) above)")
        return 1
    if result.status == "torn_tail":
        print(f"{head}: chain intact up to a torn final write")
        return 3
    print(f"{head}: chain intact")
    return 0


def add_audit_command(commands: Commands) -> None:
    """`depotwatch audit verify -c CONFIG` and `depotwatch audit export -c CONFIG --since T`."""
    audit = commands.add_parser(
        "audit", help="the hash-chained audit log: verify it, export it for the archive")
    audit_actions = add_actions(audit)
    audit_verify = audit_actions.add_parser(
        "verify", help="check every entry and link; exit 0 intact, 1 tampered (each problem "
        "with its line and seq), 3 only a torn final write")
    add_config_option(audit_verify)
    audit_export = audit_actions.add_parser(
        "export", help="write entries as JSON lines for the central archive")
    add_config_option(audit_export)
    audit_export.add_argument("--since", required=True, type=_since_ns,
                              help="ISO 8601 time (UTC without an offset): from the first entry "
                              "at or after it")
    audit_export.add_argument("-o", "--output", help="write to this file instead of stdout")
    audit.set_defaults(func=_audit)
