"""`depotwatch alerts` (the officers' client of the alert API) and `officers hash-token`,
`officers hash-pin`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.parse
from collections.abc import Callable

from daemon.alerts.officers import (
    MIN_TOKEN_CHARS,
    AlertClient,
    ApiError,
    format_alarm,
    format_notifier,
    format_silence,
    hash_token,
    silence_end,
)
from daemon.alerts.sms_replies import hash_pin
from daemon.cli.subcommand import Commands, add_actions, read_config
from daemon.vocabulary.errors import EXIT_CONFIG
from daemon.web.settings import ApiConfig

__all__ = ["add_officer_commands"]


def _target(args: argparse.Namespace) -> str:
    """The KEY or ID argument, quoted for the API path."""
    return urllib.parse.quote(getattr(args, "target", ""), safe="")


def _list(client: AlertClient, args: argparse.Namespace) -> int:
    answer = client.call("GET", "/alerts?all=1" if args.all else "/alerts")
    if args.json:
        print(json.dumps(answer["alerts"], indent=2, ensure_ascii=False))
    else:
        print("\n".join(format_alarm(a) for a in answer["alerts"]) or "no open alarms")
    return 0


def _ack(client: AlertClient, args: argparse.Namespace) -> int:
    alarm = client.call("POST", f"/alerts/{_target(args)}/ack", {"note": args.note})
    print(f"acknowledged {alarm['key']} (by {alarm['acked_by']})")
    return 0


def _check(client: AlertClient, args: argparse.Namespace) -> int:
    alarm = client.call("POST", f"/alerts/{_target(args)}/check",
                        {"finding": args.finding, "note": args.note})
    outcome = ("cleared" if alarm["state"] == "cleared"
               else "stays open until its condition ends")
    print(f"recorded the on-site check of {alarm['key']}: {alarm['finding']}; {outcome}")
    return 0


def _silence(client: AlertClient, args: argparse.Namespace) -> int:
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
    return 0


def _silences(client: AlertClient, args: argparse.Namespace) -> int:
    silences = client.call("GET", "/silences")["silences"]
    if args.json:
        print(json.dumps(silences, indent=2, ensure_ascii=False))
    else:
        print("\n".join(format_silence(s) for s in silences) or "no silences")
    return 0


def _notifiers(client: AlertClient, args: argparse.Namespace) -> int:
    notifiers = client.call("GET", "/notifiers")["notifiers"]
    if args.json:
        print(json.dumps(notifiers, indent=2, ensure_ascii=False))
    else:
        print("\n".join(line for n in notifiers for line in format_notifier(n))
              or "no notifiers")
    return 0


def _approve_or_expire(client: AlertClient, args: argparse.Namespace) -> int:
    print(format_silence(client.call("POST", f"/silences/{_target(args)}/{args.action}")))
    return 0


def _zone(client: AlertClient, args: argparse.Namespace) -> int:
    body = {"note": args.note, **({} if args.action == "walk-test" else {"force": args.force})}
    answer = client.call("POST", f"/storehouses/{_target(args)}/{args.action}", body)
    forced = f", forced over: {', '.join(answer['not_secured'])}" if answer.get("forced") else ""
    shown = answer.get("state") or answer.get("note", "")
    print(f"{answer['storehouse']}: {answer['result']} ({shown}) by {answer['by']}{forced}")
    return 0


_ACTIONS: dict[str, Callable[[AlertClient, argparse.Namespace], int]] = {
    "list": _list, "ack": _ack, "check": _check, "silence": _silence, "silences": _silences,
    "approve": _approve_or_expire, "expire": _approve_or_expire, "notifiers": _notifiers,
    "arm": _zone, "disarm": _zone, "walk-test": _zone}


def _alerts(args: argparse.Namespace) -> int:
    token = os.environ.get("DEPOTWATCH_TOKEN", "").strip()
    if not token:
        print("set DEPOTWATCH_TOKEN to your officer token", file=sys.stderr)
        return 2
    url = args.url
    if url is None and args.config:
        config = read_config(args.config)
        if config is None:
            return EXIT_CONFIG
        url = config.api.url()
    client = AlertClient(url or ApiConfig().url(), token)
    try:
        return _ACTIONS[args.action](client, args)
    except ApiError as exc:
        print(exc, file=sys.stderr)
        return 1


def _officers(args: argparse.Namespace) -> int:
    if args.action == "hash-pin":
        pin = sys.stdin.readline().strip()
        if not (4 <= len(pin) <= 12 and pin.isdigit()):
            print("give the SMS reply PIN on stdin: 4 to 12 digits", file=sys.stderr)
            return 2
        print(hash_pin(pin))
        return 0
    token = sys.stdin.readline().strip()
    if len(token) < MIN_TOKEN_CHARS:
        print(f"give the token on stdin, at least {MIN_TOKEN_CHARS} random characters "
              "(e.g. from: openssl rand -hex 32)", file=sys.stderr)
        return 2
    print(hash_token(token))
    return 0


def _add_zone_actions(actions: Commands, common: argparse.ArgumentParser) -> None:
    for name, text in (
            ("arm", "arm a storehouse's zone (exit delay); refused with what is not secured "
                    "unless --force"),
            ("disarm", "disarm a storehouse's zone"),
            ("walk-test", "start a walk test: the zone's detectors are recorded, not alarmed")):
        zone = actions.add_parser(name, parents=[common], help=text)
        zone.add_argument("target", metavar="STOREHOUSE")
        zone.add_argument("--note", default="")
        if name == "arm":
            zone.add_argument("--force", action="store_true",
                              help="arm over open doors and active detectors (recorded)")


def add_officer_commands(commands: Commands) -> None:
    """`depotwatch alerts ...` (the officers' API client) and `depotwatch officers hash-token`."""
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument("--url", help="the daemon's API, e.g. http://127.0.0.1:8470 "
                       "(default: api.listen_host/listen_port of -c CONFIG, else that address)")
    where.add_argument("-c", "--config", help="YAML config whose api section gives the address")
    alerts = commands.add_parser(
        "alerts", help="list, acknowledge and check alarms, silence them; arm, disarm and "
        "walk-test zones (officer token: $DEPOTWATCH_TOKEN)")
    actions = add_actions(alerts)
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
        help="mute matching alarms for a while (critical alarms, and silences past 8 h / 24 h, "
             "need a second officer)")
    for label in ("rule", "storehouse", "door", "subject"):
        silence.add_argument(f"--{label}", help=f"match alarms of this {label}")
    silence.add_argument("--reason", required=True)
    silence.add_argument("--until", required=True,
                         help="a duration (90m, 2h, 1d) or a time with zone (2024-03-03T06:00Z)")
    actions.add_parser("silences", parents=[common], help="list silences").add_argument(
        "--json", action="store_true", help="print the API's JSON")
    notifiers = actions.add_parser(
        "notifiers", parents=[common],
        help="each notifier's delivered, failed, retried, refused, given-up alert changes, "
             "backlog, and the refusals it keeps (alert key and reason)")
    notifiers.add_argument("--json", action="store_true", help="print the API's JSON")
    for name, text in (("approve", "approve another officer's silence that needs a second officer"),
                       ("expire", "end a silence now")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("target", metavar="ID")
    _add_zone_actions(actions, common)
    alerts.set_defaults(func=_alerts)

    _add_token_commands(commands)


def _add_token_commands(commands: Commands) -> None:
    officers = commands.add_parser(
        "officers", help="officer tokens for the api section, SMS reply PINs")
    officer_actions = add_actions(officers)
    officer_actions.add_parser(
        "hash-token", help="read a token on stdin, print the token_sha256 the config keeps")
    officer_actions.add_parser(
        "hash-pin", help="read an SMS reply PIN on stdin, print the pin_hash an sms notifier's "
        "officers keep")
    officers.set_defaults(func=_officers)
