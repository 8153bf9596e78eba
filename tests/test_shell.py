"""Shell completion (bash, zsh) and the man page, generated from the parser: the real bash and
zsh load the scripts and complete the commands; `man -l` renders the page without warnings."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.cli.main import build_parser

REPO = Path(__file__).resolve().parent.parent


def _generated(tmp_path: Path, *args: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "daemon.cli", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    out = tmp_path / args[-1]
    out.write_text(done.stdout, encoding="utf-8")
    return out


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} missing: apt-get install it (make apt-test does)")
    return found


def _choices(parser: argparse.ArgumentParser) -> set[str]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(sub.choices)


def _bash_complete(script: Path, line: str) -> set[str]:
    """What bash offers on TAB at the end of `line` (the completion function called as bash
    calls it)."""
    words = line.split(" ")
    program = (f"source {script}\n"
               f"COMP_WORDS=({' '.join(repr(w) for w in words)}); "
               f"COMP_CWORD={len(words) - 1}; COMP_LINE={line!r}; COMP_POINT={len(line)}\n"
               f"_shtab_depotwatch depotwatch {words[-1]!r} {words[-2]!r}\n"
               'printf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run([_tool("bash"), "--norc", "--noprofile", "-c", program],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    return {w.strip() for w in done.stdout.splitlines() if w.strip()}


def test_bash_completion_names_every_command(tmp_path: Path) -> None:
    script = _generated(tmp_path, "completion", "bash")
    parser = build_parser()
    commands = _choices(parser)
    assert {"run", "check-config", "deadletters", "spool", "audit", "alerts", "completion",
            "manpage"} <= commands
    assert _bash_complete(script, "depotwatch ") == commands
    assert _bash_complete(script, "depotwatch au") == {"audit"}
    assert _bash_complete(script, "depotwatch audit ") == {"verify", "export"}
    options = _bash_complete(script, "depotwatch audit verify --")
    assert {"--json", "--config", "--log-level", "--log-format"} <= options
    assert _bash_complete(script, "depotwatch --log-level ") == {
        "debug", "info", "warning", "error"}
    # -c offers files.
    (tmp_path / "depot-north.yaml").write_text("")
    offered = _bash_complete(script, f"depotwatch spool -c {tmp_path}/depot-n")
    assert offered == {f"{tmp_path}/depot-north.yaml"}


def test_zsh_completion_loads(tmp_path: Path) -> None:
    functions = tmp_path / "functions"
    functions.mkdir()
    script = _generated(tmp_path, "completion", "zsh")
    script.rename(functions / "_depotwatch")
    zsh = _tool("zsh")
    assert subprocess.run([zsh, "-n", str(functions / "_depotwatch")], timeout=30).returncode == 0
    done = subprocess.run(
        [zsh, "-f", "-c", f"fpath=({functions} $fpath); autoload -Uz compinit; "
         f"compinit -u -d {tmp_path}/zcompdump; print -r -- $_comps[depotwatch]; "
         "autoload -Uz +X _depotwatch && print -r -- loaded"],
        capture_output=True, text=True, timeout=30, check=False)
    assert (done.returncode, done.stdout.split()) == (0, ["_depotwatch", "loaded"]), done.stderr
    text = (functions / "_depotwatch").read_text()
    for command in ("deadletters", "spool", "audit", "alerts", "completion"):
        assert f"    {command}:'" in text, command


def test_man_page_renders(tmp_path: Path) -> None:
    page = _generated(tmp_path, "manpage")
    env = {**os.environ, "MANWIDTH": "100", "MANPAGER": "cat", "PAGER": "cat", "LANG": "C.UTF-8"}
    done = subprocess.run([_tool("man"), "--warnings", "-l", str(page)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    shown = done.stdout
    for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "FILES",
                    "ENVIRONMENT", "EXIT STATUS", "SEE ALSO"):
        assert f"\n{heading}\n" in shown, heading
    for command in _choices(build_parser()):
        assert f"depotwatch {command}\n" in shown, command
    assert "depotwatch audit verify\n" in shown and "--json" in shown
    assert "/etc/depotwatch/depotwatch.yaml" in shown
