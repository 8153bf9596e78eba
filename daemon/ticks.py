"""When the rules are ticked: every `tick_interval_s`, and at each deadline a rule asks for."""

from __future__ import annotations

import asyncio
import contextlib
import time

from daemon.vocabulary.clock import Clock

__all__ = ["TickSchedule"]

# No deadline asked for.
_NEVER = 2**63


class TickSchedule:
    """The next tick: the interval's end, or sooner when a rule's deadline (the end of a door's
    debounce) comes first, so a timer fires at its deadline whatever `tick_interval_s` is."""

    def __init__(self, clock: Clock, interval_s: float) -> None:
        self._clock = clock
        self.interval_s = interval_s
        self._due_ns = _NEVER
        self._due_changed = asyncio.Event()

    def wake_at(self, at_ns: int) -> None:
        """A rule wants a tick at `at_ns` (clock time)."""
        if at_ns < self._due_ns:
            self._due_ns = at_ns
            self._due_changed.set()

    def ticking(self) -> None:
        """A tick runs now: the deadlines asked for so far are met (the rules ask again)."""
        self._due_ns = _NEVER

    async def until_next(self, last_tick_s: float) -> None:
        """Sleep until the interval since `last_tick_s` (monotonic) ends or a deadline comes."""
        while True:
            wait_s = min(self.interval_s - (time.monotonic() - last_tick_s),
                         (self._due_ns - self._clock.now_ns()) / 1e9)
            if wait_s <= 0:
                return
            self._due_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._due_changed.wait()
