"""Engine and alert state on disk, written atomically, so a restart resumes its timers."""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["StateFile"]

log = logging.getLogger(__name__)


class StateFile:
    """One JSON document replaced atomically (write, fsync, rename, fsync the directory)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None; a damaged file is set aside and reported, never fatal."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            state = json.loads(text)
            if not isinstance(state, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            self.path.rename(aside)
            log.error("state file %s is damaged (%s); set aside as %s, starting fresh "
                      "(every storehouse armed, every sensor unheard)", self.path, exc, aside)
            return None
        return state

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
