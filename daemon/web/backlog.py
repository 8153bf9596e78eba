"""What the console's glance and the metrics both read of the running daemon: the MQTT link,
the spool's backlog per writer, and each writer's counters.

Read-only protocols, so the daemon's own richer types fit; the runner hands itself in and
neither reader imports it (the runner imports them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["NS", "Link", "Pending", "Spool", "Writer", "read_backlog"]

NS = 1_000_000_000


class Pending(Protocol):
    """Points waiting in the spool for one writer."""

    @property
    def target(self) -> str: ...
    @property
    def points(self) -> int: ...
    @property
    def oldest_ns(self) -> int | None: ...


class Spool(Protocol):
    """The spool as far as its backlog goes."""

    async def backlog(self) -> Sequence[Pending]: ...


class Link(Protocol):
    """The MQTT link."""

    @property
    def connected(self) -> asyncio.Event: ...


class Writer(Protocol):
    """A time series writer by name, with its counters."""

    @property
    def name(self) -> str: ...
    def stats(self) -> Mapping[str, int]: ...


async def read_backlog(spool: Spool) -> tuple[Sequence[Pending], Exception | None]:
    """The spool's backlog, or nothing and why: a broken spool is shown, never raised."""
    try:
        return await spool.backlog(), None
    except Exception as exc:  # an unopened or broken spool is a finding, not a crash
        return [], exc
