"""The `depotwatch` command: run the daemon, check a config, list dead letters, run the demo."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import sys
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from daemon import __version__
from daemon.config.schema import ApiConfig, Config, DeadLetterConfig, load_config
from daemon.vocabulary.errors import EXIT_CONFIG, ConfigError

__all__ = ["main"]

log = logging.getLogger("depotwatch")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # gmqtt logs every reconnect attempt at INFO/WARNING; our link reports connection state.
    logging.getLogger("gmqtt").setLevel(logging.ERROR)


def _config(path: str) -> Config | None:
    """The validated config, or None after printing every problem (the caller exits 78)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        print(f"{exc.path}: {len(exc.problems)} problem(s); not starting", file=sys.stderr)
        return None


def _check_config(args: argparse.Namespace) -> int:
    config = _config(args.file)
    if config is None:
        return EXIT_CONFIG
    depot = config.depot()
    print(f"{args.file}: OK (site {config.site.id}: {len(depot.storehouses)} storehouses, "
          f"{len(depot.doors)} doors, {len(depot.sensors)} sensors, "
          f"{len(config.rule_set())} rule kinds)")
    return 0


def _run(args: argparse.Namespace) -> int:
    config = _config(args.config)
    if config is None:
        return EXIT_CONFIG
    from daemon.runner import Daemon
    from daemon.stopguard import EXIT_FAILED, StopGuard

    async def main() -> None:
        stop = asyncio.Event()
        guard = StopGuard(asyncio.get_running_loop(), stop)
        guard.install()
        await Daemon(config).run(stop, failed=guard.failed)

    try:
        asyncio.run(main())
    except Exception as exc:  # the TaskGroup's ExceptionGroup; the runner logged each failure
        failures = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
        summary = "; ".join(f"{type(e).__name__}: {e}" for e in failures)
        # A group's tracebacks are logged already; one from before the tasks started is not.
        log.critical("depotwatch stopped after a failure (%s); exit status %d",
                     summary, EXIT_FAILED, exc_info=not isinstance(exc, ExceptionGroup))
        return EXIT_FAILED
    return 0


def _deadletters(args: argparse.Namespace) -> int:
    from daemon.ingest.deadletters import DeadLetterStore

    config = _config(args.config)
    if config is None:
        return EXIT_CONFIG
    path = config.state_dir / "deadletters.sqlite"
    if not path.exists():
        print(f"no dead letters ({path} does not exist)")
        return 0
    store = DeadLetterStore(path, DeadLetterConfig())
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

    from daemon.spool.store import inspect_spool

    config = _config(args.config)
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

    config = _config(args.config)
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


def _replay(args: argparse.Namespace) -> int:
    from daemon.cli.replay import check, load_scenario, replay

    failed = 0
    for name in args.scenario:
        try:
            scenario, config = load_scenario(Path(name))
        except ConfigError as exc:
            print("\n".join(exc.problems), file=sys.stderr)
            return EXIT_CONFIG
        result = replay(scenario, config)
        zone = next(iter(config.depot().storehouses.values())).zone
        if not args.check:
            print("\n".join(result.json_lines(zone)))
            continue
        problems = check(scenario, result)
        if problems:
            failed += 1
            print(f"FAIL {name}: {scenario.description}")
            print("\n".join(f"  {p}" for p in problems))
        else:
            print(f"ok   {name}: {len(result.alerts)} transitions as expected")
    return 1 if failed else 0


def _demo(args: argparse.Namespace) -> int:
    from daemon.cli.demo import run_demo

    return run_demo(speed=args.speed, state_dir=Path(args.state_dir))


def _dashboards(args: argparse.Namespace) -> int:
    import json
    import os

    from daemon.dashboards.overview import render
    from daemon.vocabulary.errors import DepotwatchError

    config = None
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print("\n".join(exc.problems), file=sys.stderr)
            return EXIT_CONFIG
    dashboards = render(config)
    if args.action == "render":
        text = json.dumps(dashboards[0], indent=2, ensure_ascii=False) + "\n"
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0
    from daemon.dashboards.grafana import TOKEN_ENV, push

    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"set {TOKEN_ENV} to a Grafana service-account token (Editor role)",
              file=sys.stderr)
        return 2
    try:
        urls = push(dashboards, args.url, token, folder=args.folder,
                    message=f"depotwatch {__version__}")
    except DepotwatchError as exc:
        print(f"dashboards push failed: {exc}", file=sys.stderr)
        return 1
    for url in urls:
        print(f"pushed {args.url.rstrip('/')}{url}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from daemon.records.document import Format, ReportError
    from daemon.records.report import build_report, write_report

    config = _config(args.config)
    if config is None:
        return EXIT_CONFIG
    output = Path(args.output)
    formats: dict[str, Format] = {".csv": "csv", ".json": "json"}
    fmt: Format = args.format or formats.get(output.suffix.lower(), "pdf")
    try:
        if fmt == "pdf":
            from daemon.records.pdf import check_libraries

            check_libraries()  # before the queries, not after them
        report = build_report(config, args.month, args.storehouse)
        write_report(report, output, fmt)
    except ReportError as exc:
        print(f"report failed: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {output} ({fmt}; audit trail {report.audit_status})", file=sys.stderr)
    return 0


def _alerts(args: argparse.Namespace) -> int:
    import json
    import os

    from daemon.alerts.officers import (
        AlertClient,
        ApiError,
        format_alarm,
        format_silence,
        silence_end,
    )

    token = os.environ.get("DEPOTWATCH_TOKEN", "").strip()
    if not token:
        print("set DEPOTWATCH_TOKEN to your officer token", file=sys.stderr)
        return 2
    url = args.url
    if url is None and args.config:
        config = _config(args.config)
        if config is None:
            return EXIT_CONFIG
        url = config.api.url()
    client = AlertClient(url or ApiConfig().url(), token)
    quoted = urllib.parse.quote(getattr(args, "target", ""), safe="")
    try:
        if args.action == "list":
            answer = client.call("GET", "/alerts?all=1" if args.all else "/alerts")
            if args.json:
                print(json.dumps(answer["alerts"], indent=2, ensure_ascii=False))
            else:
                print("\n".join(format_alarm(a) for a in answer["alerts"]) or "no open alarms")
        elif args.action == "ack":
            alarm = client.call("POST", f"/alerts/{quoted}/ack", {"note": args.note})
            print(f"acknowledged {alarm['key']} (by {alarm['acked_by']})")
        elif args.action == "check":
            alarm = client.call("POST", f"/alerts/{quoted}/check",
                                {"finding": args.finding, "note": args.note})
            outcome = ("cleared" if alarm["state"] == "cleared"
                       else "stays open until its condition ends")
            print(f"recorded the on-site check of {alarm['key']}: {alarm['finding']}; {outcome}")
        elif args.action == "silence":
            matchers = {k: getattr(args, k) for k in ("rule", "storehouse", "door", "subject")
                        if getattr(args, k)}
            try:
                end = silence_end(args.until)
            except ValueError as exc:
                print(exc, file=sys.stderr)
                return 2
            silence = client.call("POST", "/silences",
                                  {"matchers": matchers, "reason": args.reason, **end})
            print(format_silence(silence))
            if silence["needs_approval"] and not silence["approved_by"]:
                print(f"a second officer approves it with: depotwatch alerts approve "
                      f"{silence['id']}")
        elif args.action == "silences":
            for silence in client.call("GET", "/silences")["silences"]:
                print(format_silence(silence))
        else:  # approve, expire
            print(format_silence(client.call("POST", f"/silences/{quoted}/{args.action}")))
    except ApiError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _officers(args: argparse.Namespace) -> int:
    from daemon.alerts.officers import MIN_TOKEN_CHARS, hash_token

    token = sys.stdin.readline().strip()
    if len(token) < MIN_TOKEN_CHARS:
        print(f"give the token on stdin, at least {MIN_TOKEN_CHARS} random characters "
              "(e.g. from: openssl rand -hex 32)", file=sys.stderr)
        return 2
    print(hash_token(token))
    return 0


def _add_alert_commands(
        commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`depotwatch alerts ...` (the officers' API client) and `depotwatch officers hash-token`."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument("--url", help="the daemon's API, e.g. http://127.0.0.1:8470 "
                       "(default: api.listen_host/listen_port of -c CONFIG, else that address)")
    where.add_argument("-c", "--config", help="YAML config whose api section gives the address")
    alerts = commands.add_parser(
        "alerts", help="list, acknowledge and check alarms, silence them (officer token: "
        "$DEPOTWATCH_TOKEN)")
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[common], help="open alarms")
    listing.add_argument("--all", action="store_true", help="also the recently cleared")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    ack = actions.add_parser("ack", parents=[common], help="acknowledge an alarm")
    ack.add_argument("target", metavar="KEY")
    ack.add_argument("--note", default="", help="what you are doing about it")
    check = actions.add_parser(
        "check", parents=[common],
        help="record the on-site check; clears the alarm once its condition has ended")
    check.add_argument("target", metavar="KEY")
    check.add_argument("--finding", required=True, choices=["intrusion", "fault", "false_alarm"])
    check.add_argument("--note", default="", help="what was found on site")
    silence = actions.add_parser(
        "silence", parents=[common],
        help="mute matching alarms for a while (a critical rule needs a second officer)")
    for label in ("rule", "storehouse", "door", "subject"):
        silence.add_argument(f"--{label}", help=f"match alarms of this {label}")
    silence.add_argument("--reason", required=True)
    silence.add_argument("--until", required=True,
                         help="a duration (90m, 2h, 1d) or a time with zone (2024-03-03T06:00Z)")
    actions.add_parser("silences", parents=[common], help="list silences")
    for name, text in (("approve", "approve another officer's silence of a critical rule"),
                       ("expire", "end a silence now")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("target", metavar="ID")
    alerts.set_defaults(func=_alerts)

    officers = commands.add_parser("officers", help="officer tokens for the api section")
    officer_actions = officers.add_subparsers(dest="action", required=True, metavar="ACTION")
    officer_actions.add_parser(
        "hash-token", help="read a token on stdin, print the token_sha256 the config keeps")
    officers.set_defaults(func=_officers)


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

    run = commands.add_parser(
        "run", help="run the daemon",
        epilog="Exit status: 0 stopped by SIGTERM/SIGINT after a clean stop; 1 a task failed "
               "(systemd restarts it); 2 the stop was cut short (a second signal, or it overran "
               "10 s); 78 a bad config.")
    run.add_argument("-c", "--config", required=True, help="YAML config file")
    run.set_defaults(func=_run)

    check = commands.add_parser(
        "check-config", help="validate a config file; every error with its line (exit 78)")
    check.add_argument("file")
    check.set_defaults(func=_check_config)

    dead = commands.add_parser("deadletters", help="list rejected payloads kept for inspection")
    dead.add_argument("-c", "--config", required=True, help="YAML config file")
    dead.add_argument("-n", "--limit", type=int, default=50, help="how many, newest first")
    dead.set_defaults(func=_deadletters)

    spool = commands.add_parser(
        "spool", help="show the spool: backlog per InfluxDB target, what was set aside")
    spool.add_argument("-c", "--config", required=True, help="YAML config file")
    spool.set_defaults(func=_spool)

    audit = commands.add_parser(
        "audit", help="the hash-chained audit log: verify it, export it for the archive")
    audit_actions = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    audit_verify = audit_actions.add_parser(
        "verify", help="check every entry and link; exit 0 intact, 1 tampered (each problem "
        "with its line and seq), 3 only a torn final write")
    audit_verify.add_argument("-c", "--config", required=True, help="YAML config file")
    audit_export = audit_actions.add_parser(
        "export", help="write entries as JSON lines for the central archive")
    audit_export.add_argument("-c", "--config", required=True, help="YAML config file")
    audit_export.add_argument("--since", required=True, type=_since_ns,
                              help="ISO 8601 time (UTC without an offset): from the first entry "
                              "at or after it")
    audit_export.add_argument("-o", "--output", help="write to this file instead of stdout")
    audit.set_defaults(func=_audit)

    replay = commands.add_parser(
        "replay", help="play scenario files through the decoders and rules on a virtual clock")
    replay.add_argument("scenario", nargs="+", help="scenario YAML file(s)")
    replay.add_argument("--check", action="store_true",
                        help="compare with each scenario's expect: list; exit 1 on a difference")
    replay.set_defaults(func=_replay)

    demo = commands.add_parser(
        "demo", help="play a compressed night at a demo depot on an embedded broker")
    demo.add_argument("--speed", type=float, default=1200.0,
                      help="simulated seconds per real second (default 1200)")
    demo.add_argument("--state-dir", default="demo-state",
                      help="where the demo keeps dead letters and points.lp")
    demo.set_defaults(func=_demo)

    dash = commands.add_parser(
        "dashboards", help="Grafana dashboards: render the JSON, or push it to a Grafana")
    dash_actions = dash.add_subparsers(dest="action", required=True, metavar="ACTION")
    render = dash_actions.add_parser(
        "render", help="print the depot overview (climate bands and site from -c CONFIG)")
    render.add_argument("-c", "--config", help="YAML config whose climate rule sets the bands")
    render.add_argument("-o", "--output", help="write to this file instead of stdout")
    push = dash_actions.add_parser(
        "push", help="create or update the dashboards in Grafana (token: "
        "$DEPOTWATCH_GRAFANA_TOKEN; needs the 'grafana' extra)")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. https://grafana.hq")
    push.add_argument("-c", "--config", help="YAML config whose climate rule sets the bands")
    push.add_argument("--folder", default="depotwatch", help="folder uid (made if missing)")
    dash.set_defaults(func=_dashboards)
    report = commands.add_parser(
        "report", help="the monthly PSSM record per storehouse: PDF with plots, CSV or JSON "
        "(PDF needs the 'report' extra)")
    report.add_argument("--month", required=True, help="YYYY-MM, e.g. 2026-11")
    report.add_argument("--storehouse", help="only this storehouse (default: all)")
    report.add_argument("-c", "--config", required=True, help="YAML config file")
    report.add_argument("-o", "--output", required=True, help="the file to write")
    report.add_argument("--format", choices=["pdf", "csv", "json"],
                        help="default: from the output's suffix (.csv, .json), else pdf")
    report.set_defaults(func=_report)
    _add_alert_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `depotwatch` command."""
    args = build_parser().parse_args(argv)
    _setup_logging(args.log_level)
    code: int = args.func(args)
    return code

