"""Points waiting for the spool's next commit, and how their waiters hear the outcome."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(slots=True)
class Pending:
    """One commit's worth of appends: their lines, receipts and the future they share."""

    lines: list[str]
    receipts: list[tuple[bytes, int]]
    future: asyncio.Future[None]
    messages: int = 1


def fail_waiters(future: asyncio.Future[None], exc: BaseException) -> None:
    """Tell a commit's waiters it failed. A stop cancels them (an exception nobody awaits any
    more is logged by asyncio as never retrieved); a failure is marked retrieved: the spool's
    task reports it once, not once per waiting message."""
    if future.done():
        return
    if isinstance(exc, asyncio.CancelledError):
        future.cancel()
        return
    future.set_exception(exc)
    future.exception()
