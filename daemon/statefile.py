"""Engine and alert state on disk, written atomically, so a restart resumes its timers."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import orjson

__all__ = ["StateFile", "set_aside"]

log = logging.getLogger(__name__)


def set_aside(path: Path, label: str = "damaged") -> Path:
    """Rename a damaged file to `<name>.<label>-<unix time>` (kept for inspection), with the
    SQLite `-wal`/`-shm` files beside it; a name already taken gets a counter."""
    stamp = int(time.time())
    aside = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while aside.exists():
        aside = path.with_name(f"{path.name}.{label}-{stamp}.{n}")
        n += 1
    path.rename(aside)
    for extra in ("-wal", "-shm", "-journal"):
        companion = path.with_name(path.name + extra)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + extra))
    return aside


class StateFile:
    """One JSON document replaced atomically (write, fsync, rename, fsync the directory)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # What was lost, when the file found at start could not be read (for the fault alert).
        self.damage: str | None = None

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None; a damaged file is set aside and reported, never fatal."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = json.loads(raw.decode("utf-8"))
            if not isinstance(state, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            self.set_aside(str(exc))
            return None
        return state

    def set_aside(self, reason: str) -> None:
        """Move the file found at start aside: its state (open alarms, silences, timers) is
        lost, and the daemon starts fail-secure (every storehouse armed, nothing silenced)."""
        aside = set_aside(self.path)
        self.damage = (f"engine state unreadable ({reason}): open alarms, silences and rule "
                       f"timers lost; starting with every storehouse armed and nothing "
                       f"silenced; set aside as {aside.name}")
        log.error("state file %s is damaged (%s); set aside as %s, starting fresh "
                  "(every storehouse armed, nothing silenced, every sensor unheard)",
                  self.path, reason, aside)

    def save(self, state: dict[str, Any]) -> None:
        """Replace the file with `state`; a crash leaves either the old or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        # orjson: a door opening asks for a save before its PUBACK, so at depot rates one is
        # due every half second, and json.dumps' C encoder took 1 ms of the GIL per save of 100
        # sensors' state, orjson 0.08 (issue 29). Non-finite floats (orjson writes null)
        # never reach the state: decoders refuse them.
        try:
            text = orjson.dumps(state, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # an integer past 64 bits
            text = json.dumps(state, separators=(",", ":")).encode("utf-8")
        with tmp.open("wb") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
