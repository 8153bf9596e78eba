"""`depotwatch replay` and `demo`: recorded scenarios and a simulated night, played through."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.cli.subcommand import Commands
from daemon.vocabulary.errors import EXIT_CONFIG, ConfigError

__all__ = ["add_playback_commands"]


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
            print("\n".join([*result.json_lines(zone), *result.dead_letter_lines()]))
            continue
        problems = check(scenario, result)
        if problems:
            failed += 1
            print(f"FAIL {name}: {scenario.description}")
            print("\n".join(f"  {p}" for p in problems))
        else:
            print(f"ok   {name}: {len(result.alerts)} transitions as expected")
        for t, source, reason, _ in result.dead_letters:
            print(f"  dead letter at {t:g} s from {source}: {reason}")
    return 1 if failed else 0


def _demo(args: argparse.Namespace) -> int:
    from daemon.cli.demo import run_demo

    return run_demo(speed=args.speed, state_dir=Path(args.state_dir), console=args.console)


def add_playback_commands(commands: Commands) -> None:
    """`depotwatch replay SCENARIO...` and `depotwatch demo`."""
    replay = commands.add_parser(
        "replay", help="play scenario files through the decoders and rules on a virtual clock; "
        "prints each alert change and each dead letter with its reason (JSON lines)")
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
    demo.add_argument("--console", action="store_true",
                      help="after the night, keep the daemon and its web console up (a demo "
                      "officer's login token printed) until Ctrl-C")
    demo.set_defaults(func=_demo)
