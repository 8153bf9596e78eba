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

    async def until_next(self, last_tick_s: float) -> bool:
        """Sleep until the interval since `last_tick_s` (monotonic, the last full tick) ends,
        True, or a deadline comes first, False: then only the rules that asked are ticked."""
        while True:
            interval_s = self.interval_s - (time.monotonic() - last_tick_s)
            if interval_s <= 0:
                return True
            wait_s = min(interval_s, (self._due_ns - self._clock.now_ns()) / 1e9)
            if wait_s <= 0:
                return False
            self._due_changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._due_changed.wait()
