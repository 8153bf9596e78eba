"""What every group of subcommands shares: the command list it joins and the config it reads."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Protocol

from daemon.config.loading import load_config
from daemon.config.schema import Config
from daemon.vocabulary.errors import ConfigError

__all__ = ["COMPLETE_FILE", "DEFAULT_CONFIG", "Commands", "add_actions", "add_config_option",
           "add_json_option", "print_json", "read_config"]

# Where packages put a daemon's config (FHS /etc/<name>/), so `-c` may be left out on a gateway.
DEFAULT_CONFIG = "/etc/depotwatch/depotwatch.yaml"
# shtab's file completion (its shtab.FILE), set on an option so TAB offers file names.
COMPLETE_FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}


class Commands(Protocol):
    """The `depotwatch` command list (argparse's subparsers) that a group adds its commands to."""

    def add_parser(self, name: str, *, help: str | None = ..., epilog: str | None = ...,
                   parents: Sequence[argparse.ArgumentParser] = ...) -> argparse.ArgumentParser:
        """A new subcommand with its own options."""
        ...


def add_actions(command: argparse.ArgumentParser) -> Commands:
    """The ACTION list of a command made of actions (`audit verify`, `alerts ack`, ...)."""
    return command.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_config_option(command: argparse.ArgumentParser) -> None:
    """`-c/--config FILE`, the installed config by default."""
    option = command.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                                  help=f"YAML config file (default: {DEFAULT_CONFIG})")
    option.complete = COMPLETE_FILE  # type: ignore[attr-defined]


def read_config(path: str) -> Config | None:
    """The validated config, or None after printing every problem (the caller exits 78)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print("\n".join(exc.problems), file=sys.stderr)
        print(f"{exc.path}: {len(exc.problems)} problem(s); not starting", file=sys.stderr)
        return None


def add_json_option(command: argparse.ArgumentParser) -> None:
    """`--json`: the state as one JSON document on stdout (shapes in README "JSON output")."""
    command.add_argument("--json", action="store_true",
                         help="print one JSON document (shape in README, \"JSON output\")")


def print_json(document: object) -> None:
    """One JSON document on stdout: UTF-8 as is, indented for a reader, keys in a fixed order."""
    print(json.dumps(document, indent=2, ensure_ascii=False))
