"""Readings whose acknowledgement waits for a state save as well as for their commit."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["SPACING_S", "SaveGate"]

# The least time between two saves of the engine state after alert changes, crowds aside.
SPACING_S = 0.5


class SaveGate:
    """Futures for "a state save that began after now has finished", and for "that, and this
    commit": a reading that changed an alarm or started a debounce is acknowledged only then.

    The MQTT path shares them: every such reading until the next save begins gets the same save
    future, and those of one commit the same combined future, so one callback acknowledges them
    all (a door opening is a fifth of a depot's traffic: a coroutine, two callbacks and a PUBACK
    write each were a tenth of the daemon's CPU at 500 readings/s, issue 29).
    """

    def __init__(self, crowd: int = 200) -> None:
        # Readings that waited for the next save since the last began; from `crowd` on the
        # save is due at once, not after its spacing: each holds one of the broker's 1,000
        # in-flight messages (receive maximum) until it is acknowledged, and a burst of door
        # openings waiting half a second for a save held the link to 6,500 readings/s.
        self.crowd = crowd
        self.asked = 0
        self.crowded = asyncio.Event()
        self._waiters: list[asyncio.Future[None]] = []
        self._shared: asyncio.Future[None] | None = None
        self._both: dict[tuple[asyncio.Future[None], asyncio.Future[None]],
                         asyncio.Future[None]] = {}

    def saved(self) -> asyncio.Future[None]:
        """A future of its own (its awaiting task may be cancelled) for the next save."""
        saved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(saved)
        self._asked()
        return saved

    def _asked(self) -> None:
        self.asked += 1
        if self.asked == self.crowd:
            self.crowded.set()

    def saved_and(self, durable: asyncio.Future[None]) -> asyncio.Future[None]:
        """Done once `durable` is and the next save has finished; fails as `durable` fails.
        Shared: nothing may cancel it."""
        saved = self._shared
        if saved is None:
            saved = self._shared = self.saved()
        else:
            self._asked()
        key = (durable, saved)
        both = self._both.get(key)
        if both is None:
            both = self._both[key] = asyncio.get_running_loop().create_future()

            def settle(_: asyncio.Future[None]) -> None:
                if both.done() or not durable.done():
                    return
                if durable.cancelled():
                    self._both.pop(key, None)
                    both.cancel()
                elif (failure := durable.exception()) is not None:
                    self._both.pop(key, None)
                    both.set_exception(failure)
                elif saved.done():
                    self._both.pop(key, None)
                    both.set_result(None)

            durable.add_done_callback(settle)
            saved.add_done_callback(settle)
        return both

    async def due(self, within_s: float) -> None:
        """Wait until the next save is due: `within_s`, or as soon as a crowd waits for it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(within_s, 0.0)):
                await self.crowded.wait()

    def begin(self) -> list[asyncio.Future[None]]:
        """A save begins: the futures it settles (readings from now on wait for the next)."""
        waiting, self._waiters, self._shared = self._waiters, [], None
        self.asked = 0
        self.crowded.clear()
        return waiting

    def put_back(self, waiting: list[asyncio.Future[None]]) -> None:
        """A save failed: the next one settles these too."""
        self._waiters[:0] = waiting
