"""What the console's book pages (roster and orders, items and consignments) stand on."""

from __future__ import annotations

from collections.abc import Mapping
from zoneinfo import ZoneInfo

from daemon.book.desk import RecordsDesk
from daemon.vocabulary.clock import Clock
from daemon.web.console_page import DepotTime
from daemon.web.console_session import Sessions

__all__ = ["BookPages"]


class BookPages:
    """Pages over one RecordsDesk, with the depot's clock, the officers' sessions and the
    storehouses' time zones."""

    def __init__(self, desk: RecordsDesk, clock: Clock, sessions: Sessions,
                 zones: Mapping[str, ZoneInfo]) -> None:
        self._desk, self._clock, self._sessions = desk, clock, sessions
        self._zones = zones

    def _time(self) -> DepotTime:
        return DepotTime(self._zones, self._clock.now_ns())
