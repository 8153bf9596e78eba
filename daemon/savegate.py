"""Readings whose acknowledgement waits for a state save as well as for their commit."""

from __future__ import annotations

import asyncio

__all__ = ["SaveGate"]


class SaveGate:
    """Futures for "a state save that began after now has finished", and for "that, and this
    commit": a reading that changed an alarm or started a debounce is acknowledged only then.

    The MQTT path shares them: every such reading until the next save begins gets the same save
    future, and those of one commit the same combined future, so one callback acknowledges them
    all (a door opening is a fifth of a depot's traffic: a coroutine, two callbacks and a PUBACK
    write each were a tenth of the daemon's CPU at 500 readings/s, issue 29).
    """

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []
        self._shared: asyncio.Future[None] | None = None
        self._both: dict[tuple[asyncio.Future[None], asyncio.Future[None]],
                         asyncio.Future[None]] = {}

    def saved(self) -> asyncio.Future[None]:
        """A future of its own (its awaiting task may be cancelled) for the next save."""
        saved: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(saved)
        return saved

    def saved_and(self, durable: asyncio.Future[None]) -> asyncio.Future[None]:
        """Done once `durable` is and the next save has finished; fails as `durable` fails.
        Shared: nothing may cancel it."""
        saved = self._shared
        if saved is None:
            saved = self._shared = self.saved()
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

    def begin(self) -> list[asyncio.Future[None]]:
        """A save begins: the futures it settles (readings from now on wait for the next)."""
        waiting, self._waiters, self._shared = self._waiters, [], None
        return waiting

    def put_back(self, waiting: list[asyncio.Future[None]]) -> None:
        """A save failed: the next one settles these too."""
        self._waiters[:0] = waiting
