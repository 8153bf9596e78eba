"""What a reader driver hands the daemon, kept for a test to look at (the links' far end)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from daemon.vocabulary.readings import Reading
from drivers.readers import ReaderLinks


class Taken:
    """Readings, connection states, dead letters and faults, in arrival order."""

    def __init__(self) -> None:
        self.readings: list[Reading] = []
        self.states: list[bool] = []
        self.rejects: list[tuple[str, str, bytes]] = []
        self.faults: list[tuple[str, str, bool, str]] = []
        self.arming: list[tuple[str, str, str]] = []

    def links(self) -> ReaderLinks:
        """Links that keep everything here."""
        return ReaderLinks(reading=self._reading, state=lambda _c, up: self.states.append(up),
                           reject=lambda s, r, p, _at: self.rejects.append((s, r, p)),
                           fault=lambda f, s, a, m: self.faults.append((f, s, a, m)),
                           arm=self._arm)

    def _arm(self, storehouse: str, action: str, by: str) -> str | None:
        self.arming.append((storehouse, action, by))
        return None

    async def _reading(self, _component: str, reading: Reading) -> None:
        self.readings.append(reading)

    async def until(self, done: Callable[[], bool], timeout_s: float = 5.0) -> None:
        """Wait until `done()` holds (polled), or fail after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out: readings={self.readings} states={self.states}"
                                     f" rejects={self.rejects} faults={self.faults}")
            await asyncio.sleep(0.02)
