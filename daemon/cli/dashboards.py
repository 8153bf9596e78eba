"""`depotwatch dashboards`: the Grafana depot overview, rendered as JSON or pushed to a Grafana."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon import __version__
from daemon.cli.subcommand import Commands, add_actions
from daemon.config.loading import load_config
from daemon.vocabulary.errors import EXIT_CONFIG, ConfigError

__all__ = ["add_dashboards_command"]


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
    from daemon.dashboards.hq import hq_overview

    dashboards = [*render(config), hq_overview()]
    if args.action == "render":
        chosen = dashboards[-1] if args.hq else dashboards[0]
        text = json.dumps(chosen, indent=2, ensure_ascii=False) + "\n"
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


def add_dashboards_command(commands: Commands) -> None:
    """`depotwatch dashboards render` and `depotwatch dashboards push --url URL`."""
    dash = commands.add_parser(
        "dashboards", help="Grafana dashboards: render the JSON, or push it to a Grafana")
    dash_actions = add_actions(dash)
    render = dash_actions.add_parser(
        "render", help="print the depot overview (climate bands and site from -c CONFIG)")
    render.add_argument("-c", "--config", help="YAML config whose climate rule sets the bands")
    render.add_argument("-o", "--output", help="write to this file instead of stdout")
    render.add_argument("--hq", action="store_true",
                        help="the HQ overview of all depots instead (no config needed)")
    push = dash_actions.add_parser(
        "push", help="create or update the dashboards (the depot and the HQ overview) in "
        "Grafana (token: "
        "$DEPOTWATCH_GRAFANA_TOKEN; needs the 'grafana' extra)")
    push.add_argument("--url", required=True, help="Grafana base URL, e.g. https://grafana.hq")
    push.add_argument("-c", "--config", help="YAML config whose climate rule sets the bands")
    push.add_argument("--folder", default="depotwatch", help="folder uid (made if missing)")
    dash.set_defaults(func=_dashboards)
