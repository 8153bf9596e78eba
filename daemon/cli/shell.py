"""`depotwatch completion bash|zsh` (shtab) and `depotwatch manpage` (roff): both generated from
the parser itself, so they name exactly the commands and options this version has."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Iterator

from daemon import __version__
from daemon.cli.subcommand import DEFAULT_CONFIG, Commands

__all__ = ["add_shell_commands", "manpage"]

# Sections that argparse cannot know: where things are, what the environment changes, exits.
_FILES = [
    (DEFAULT_CONFIG, "the config read when -c is not given"),
    ("/etc/depotwatch/depotwatch.env", "secrets for ${VAR} in the config (EnvironmentFile=)"),
    ("/etc/depotwatch/credentials/", "systemd credentials, ${credential:NAME} in the config"),
    ("/var/lib/depotwatch/", "state_dir: spool.sqlite, deadletters.sqlite, engine-state.json, "
     "audit.jsonl and its rotated files audit.jsonl.<seq>"),
]
_ENVIRONMENT = [
    ("DEPOTWATCH_TOKEN", "the officer token of `depotwatch alerts`"),
    ("CREDENTIALS_DIRECTORY", "where ${credential:NAME} is read (set by systemd's "
     "LoadCredential=)"),
    ("JOURNAL_STREAM", "set by systemd when stderr is the journal: --log-format auto then "
     "writes syslog priority prefixes and no timestamps"),
]
_EXIT = [("0", "success (`audit verify`: the chain is intact)"),
         ("1", "a failure (`audit verify`: tampered)"),
         ("2", "a usage error, or `run` stopped short"),
         ("3", "`audit verify`: intact up to a torn final write"),
         ("78", "the config is invalid (EX_CONFIG; the systemd unit does not restart on it)")]


def _roff(text: str) -> str:
    """Text made safe for roff: backslashes doubled, a leading dot or quote escaped."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.MULTILINE)


def _commands(parser: argparse.ArgumentParser
              ) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Each subcommand at any depth: its words after `depotwatch`, its help, its parser."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub
                for words, text, deeper in _commands(sub):
                    yield f"{name} {words}", text, deeper


def _options(parser: argparse.ArgumentParser) -> Iterator[str]:
    """`.TP` entries for a parser's own options and arguments (not --help, not subcommands)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            value = "" if action.nargs == 0 else f" {action.metavar or action.dest.upper()}"
            name = ", ".join(f"\\fB{_roff(o)}\\fR" for o in action.option_strings)
            head = name + (f"\\fI{_roff(value)}\\fR" if value else "")
        else:
            head = f"\\fI{_roff(str(action.metavar or action.dest).upper())}\\fR"
        text = action.help or ""
        if action.choices and "%(choices)" not in text and action.nargs != 0:
            text += f" (one of: {', '.join(map(str, action.choices))})"
        # Help texts are %-templates (argparse's own rule: a literal % is written %%).
        yield f".TP\n{head}\n{_roff(text % {**vars(action), 'prog': 'depotwatch'})}"


def manpage(parser: argparse.ArgumentParser, today: dt.date | None = None) -> str:
    """The depotwatch(1) man page in roff (man(7) macros)."""
    date = (today or dt.date.today()).isoformat()
    lines = [f'.TH DEPOTWATCH 1 "{date}" "depotwatch {__version__}" "depotwatch manual"',
             ".SH NAME", "depotwatch \\- guard an arms and ammunition depot",
             ".SH SYNOPSIS", "\\fBdepotwatch\\fR [\\fIoptions\\fR] \\fICOMMAND\\fR "
             "[\\fIACTION\\fR] [\\fIoptions\\fR]",
             ".SH DESCRIPTION", _roff(parser.description or ""),
             ".SH OPTIONS", "Every command also takes these after its name.",
             *_options(parser), ".SH COMMANDS"]
    for words, text, sub in _commands(parser):
        lines += [f".SS depotwatch {_roff(words)}", _roff(text)]
        if sub.epilog:
            lines += [".PP", _roff(sub.epilog)]
        # The logging options are on every command: listed once above.
        lines += [o for o in _options(sub) if "log\\-level" not in o and "log\\-format" not in o]
    for title, rows in (("FILES", _FILES), ("ENVIRONMENT", _ENVIRONMENT),
                        ("EXIT STATUS", _EXIT)):
        lines.append(f".SH {title}")
        lines += [f".TP\n\\fB{_roff(name)}\\fR\n{_roff(text)}" for name, text in rows]
    lines += [".SH SEE ALSO", "\\fBsystemd.exec\\fR(5), \\fBjournalctl\\fR(1), "
              "\\fBamtool\\fR(1), \\fBmosquitto\\fR(8); the README in "
              "/opt/depotwatch/share/README.md"]
    return "\n".join(lines) + "\n"


def add_shell_commands(commands: Commands, parser: argparse.ArgumentParser) -> None:
    """`depotwatch completion SHELL` and `depotwatch manpage`, from `parser` (the whole CLI)."""
    def completion(args: argparse.Namespace) -> int:
        import shtab

        print(shtab.complete(parser, shell=args.shell), end="")
        return 0

    def page(args: argparse.Namespace) -> int:
        print(manpage(parser), end="")
        return 0

    shell = commands.add_parser(
        "completion", help="print the shell completion script (bash or zsh)",
        epilog="bash: depotwatch completion bash > /usr/local/share/bash-completion/completions/"
               "depotwatch; zsh: depotwatch completion zsh > /usr/local/share/zsh/"
               "site-functions/_depotwatch (deploy/install.sh does both).")
    shell.add_argument("shell", choices=["bash", "zsh"], help="which shell")
    shell.set_defaults(func=completion)
    man = commands.add_parser(
        "manpage", help="print the depotwatch(1) man page (roff), generated from this parser",
        epilog="man -l <(depotwatch manpage) reads it; deploy/install.sh installs it in "
               "/usr/local/share/man/man1/.")
    man.set_defaults(func=page)
