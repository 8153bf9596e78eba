"""Token guessing slowed down: wrong officer tokens per source address, with back-off.

The console's login and the API's bearer tokens share one count per address, since both guess
the same tokens. After `free_failures` wrong tokens an address waits `base_s`, doubling with
every further wrong token up to `max_s`; while it waits its tries are refused (429 with
Retry-After) without the token being judged, so a flood learns nothing. The count is forgotten
after `forget_s` without a wrong token. Refusals are logged once per address per minute.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["GuessThrottle"]

log = logging.getLogger(__name__)

# An address flood must not grow the table without bound: past this, the stalest go first.
_MAX_SOURCES = 10_000
_LOG_EVERY_S = 60.0


@dataclass(slots=True)
class _Source:
    failures: int = 0
    last_failure: float = 0.0
    blocked_until: float = 0.0
    logged_at: float = -math.inf
    unlogged: int = 0


class GuessThrottle:
    """Counts wrong tokens per source address and says how long it must wait."""

    def __init__(self, *, free_failures: int = 5, base_s: float = 1.0, max_s: float = 30.0,
                 forget_s: float = 900.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._free, self._base_s, self._max_s = free_failures, base_s, max_s
        self._forget_s, self._clock = forget_s, clock
        self._sources: dict[str, _Source] = {}

    def wait_s(self, source: str) -> float:
        """Seconds `source` must still wait before a token of its is judged (0: judge it now)."""
        entry = self._sources.get(source)
        if entry is None:
            return 0.0
        # Capped again: the clock's float sum can put blocked_until a hair past now + max_s.
        left = min(self._max_s, entry.blocked_until - self._clock())
        return left if left > 0 else 0.0

    def refused_waiting(self, source: str, door: str) -> None:
        """A try while the source waits: refused unjudged, counted for the minute's log line."""
        entry = self._sources.get(source)
        if entry is not None:
            self._log(source, entry, door, "refused while backing off")

    def failed(self, source: str, door: str) -> float:
        """A wrong token from `source`; the back-off it now has to wait, in seconds."""
        now = self._clock()
        entry = self._entry(source, now)
        entry.failures += 1
        entry.last_failure = now
        over = entry.failures - self._free
        delay = 0.0 if over < 0 else min(self._max_s, self._base_s * 2.0 ** min(over, 32))
        entry.blocked_until = now + delay
        self._log(source, entry, door, "wrong token")
        return delay

    def _entry(self, source: str, now: float) -> _Source:
        entry = self._sources.get(source)
        if entry is not None and now - entry.last_failure > self._forget_s:
            entry.failures = 0
        if entry is None:
            if len(self._sources) >= _MAX_SOURCES:
                self._prune(now)
            entry = self._sources[source] = _Source()
        return entry

    def _prune(self, now: float) -> None:
        stale = [s for s, e in self._sources.items()
                 if now - e.last_failure > self._forget_s and e.blocked_until <= now]
        for source in stale or sorted(self._sources,
                                      key=lambda s: self._sources[s].last_failure)[:1000]:
            del self._sources[source]

    def _log(self, source: str, entry: _Source, door: str, what: str) -> None:
        now = self._clock()
        entry.unlogged += 1
        if now - entry.logged_at < _LOG_EVERY_S:
            return
        # Never the token itself: only where the tries came from and how many.
        wait = max(0.0, entry.blocked_until - now)
        log.warning("%s: refused %d token(s) from %s since the last report (latest: %s); "
                    "%d wrong in a row, next try judged in %.0f s; reported again in a minute "
                    "at most", door, entry.unlogged, source, what, entry.failures, wait)
        entry.logged_at, entry.unlogged = now, 0
