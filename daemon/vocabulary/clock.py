"""Where "now" comes from: the wall clock on a gateway, a compressed one in the demo."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["Clock", "ScaledClock", "SteadyClock", "SteppedClock", "SystemClock"]


class Clock(Protocol):
    """Nanoseconds since the epoch; the only source of time for the pipeline."""

    def now_ns(self) -> int:
        """The current time."""
        ...


class SystemClock:
    """The gateway's clock (NTP-synchronised, PSSM.md records row)."""

    def now_ns(self) -> int:
        """Wall-clock time."""
        return time.time_ns()


class SteadyClock:
    """The gateway's wall clock as it was at start, carried on by the monotonic clock.

    Timers (debounce, sustain, silence) must not jump when the system clock is stepped (NTP
    catching up after boot, an operator's `date -s`): a +1 h step would page "sensor silent"
    for every sensor, a -1 h step blind silence detection for an hour. `wall_offset_ns()` says
    how far the wall clock has moved from this one since: the daemon reports a step as a fault
    and writes its records in wall-clock time.
    """

    def __init__(self, wall: Callable[[], int] = time.time_ns,
                 monotonic: Callable[[], int] = time.monotonic_ns) -> None:
        # Injectable so that a test can step the wall clock without touching the machine's.
        self._wall = wall
        self._monotonic = monotonic
        self._wall_ns = wall()
        self._monotonic_ns = monotonic()

    def now_ns(self) -> int:
        """Steady time: the start's wall clock plus the monotonic time elapsed since."""
        return self._wall_ns + self._monotonic() - self._monotonic_ns

    def wall_offset_ns(self) -> int:
        """The wall clock minus steady time: 0 until the system clock is stepped or slewed."""
        return self._wall() - self.now_ns()


class ScaledClock:
    """Simulated time that starts at `start_ns` and runs `speed` times faster than real time."""

    def __init__(self, start_ns: int, speed: float) -> None:
        self.start_ns = start_ns
        self.speed = speed
        self._t0: int | None = None
        self._frozen_ns: int | None = None

    def start(self) -> None:
        """Let time run; until then the clock stands at `start_ns`."""
        self._t0 = time.monotonic_ns()

    def freeze(self) -> None:
        """Stop time where it is (the end of a played scenario)."""
        self._frozen_ns = self.now_ns()

    def now_ns(self) -> int:
        """Simulated time."""
        if self._frozen_ns is not None:
            return self._frozen_ns
        if self._t0 is None:
            return self.start_ns
        return self.start_ns + int((time.monotonic_ns() - self._t0) * self.speed)

    def real_seconds(self, simulated_s: float) -> float:
        """How long `simulated_s` of depot time lasts on the real clock."""
        return simulated_s / self.speed


class SteppedClock:
    """Simulated time that moves only when a simulation sets it: a month of depot life plays
    as fast as the daemon keeps up, and every reading is stamped with its simulated time."""

    def __init__(self, start_ns: int) -> None:
        self._now_ns = start_ns

    def set(self, now_ns: int) -> None:
        """Move time forward to `now_ns` (never back: the rules assume time does not reverse)."""
        if now_ns < self._now_ns:
            raise ValueError("a stepped clock only moves forward")
        self._now_ns = now_ns

    def now_ns(self) -> int:
        """The simulated time last set."""
        return self._now_ns
