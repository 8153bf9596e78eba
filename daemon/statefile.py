"""Engine and alert state on disk, written atomically, so a restart resumes its timers."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

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
        # json.dumps, not json.dump: only the one-shot call uses the C encoder (a 2,000-sensor
        # state took ~5 % of the daemon's CPU under load through dump's Python one).
        text = json.dumps(state, separators=(",", ":"))
        with tmp.open("w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
