"""When the runner ticks the rules (daemon/ticks.py): every interval, and between at a deadline
a rule asked for, then only the rules that asked (issue 29)."""

from __future__ import annotations

import asyncio
import time

from daemon.ticks import TickSchedule
from daemon.vocabulary.clock import SteadyClock


def test_the_tick_schedule_says_whether_the_interval_or_a_deadline_came() -> None:
    async def both() -> tuple[bool, bool, float]:
        clock = SteadyClock()
        schedule = TickSchedule(clock, interval_s=0.3)
        started = time.monotonic()
        schedule.wake_at(clock.now_ns() + 50_000_000)  # a debounce ending in 50 ms
        deadline = await schedule.until_next(started)
        schedule.ticking()
        full = await schedule.until_next(started)
        return deadline, full, time.monotonic() - started

    deadline, full, took_s = asyncio.run(both())
    assert (deadline, full) == (False, True)
    assert took_s >= 0.3
