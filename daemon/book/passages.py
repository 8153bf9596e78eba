"""Portal passages onto the book: an item out through its portal under an order is issued, an
issued item back in is returned, the order the step's document.

A pallet is 25-200 tagged items through the portal within a second or two. Each passage used to
be a transaction of its own (a lifecycle step and the item's new state, two fsynced audit
entries): 200 transactions and 400 fsyncs for one pallet, on the event loop that judges the
next door. Passages are gathered for `GATHER_S` and written as one transaction per portal with
one audit fsync; the rules have judged each passage already (the alarm never waits for this),
only the book's item states follow up to `GATHER_S` plus a write later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from daemon.book.checks import RecordRefused
from daemon.book.entries import LifecycleEntry, Records
from daemon.book.store import RecordsError, Write
from rules.base import Fact
from rules.depot import AT_HOME, ItemState

__all__ = ["GATHER_S", "PortalSteps"]

log = logging.getLogger(__name__)

# A pallet's reads arrive within about a second; gathering a quarter of it keeps a burst to a
# handful of transactions without holding the book's view of an item back noticeably.
GATHER_S = 0.25


@dataclass(frozen=True, slots=True)
class _Passage:
    portal: str
    epc: str
    direction: str
    order: str
    at_ns: int


class PortalSteps:
    """Steps items by their portal passages, in gathered transactions (see the module)."""

    def __init__(self, records: Callable[[], Records],
                 newest_step: Callable[[str], LifecycleEntry | None],
                 companions: Callable[[Write], list[Write]],
                 write: Callable[[Sequence[Write], str], Awaitable[object]]) -> None:
        self._records = records
        # An item's newest step (the desk's index): the document an item coming back in
        # returns on, without a scan of every step ever made per passage.
        self._newest_step = newest_step
        self._companions = companions
        self._write = write
        self._waiting: list[_Passage] = []
        self._drain: asyncio.Task[None] | None = None

    def heard(self, fact: Fact) -> None:
        """A passage the portal rule judged; written with the others of its burst."""
        epc = str(fact.fields.get("epc", ""))
        if epc not in self._records().items:
            return
        self._waiting.append(_Passage(fact.tags.get("portal", ""), epc,
                                      fact.tags.get("direction", ""),
                                      str(fact.fields.get("order", "")), fact.at_ns))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.ensure_future(self._written())

    async def settled(self, timeout_s: float | None = None) -> None:
        """Wait until every passage heard so far is on the book (tests; a clean stop, whose
        portal may still be reading: at most `timeout_s`)."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._drain is not None and not self._drain.done():
                    await asyncio.shield(self._drain)
        except TimeoutError:
            log.warning("%d portal passage(s) not on the book after %g s: not stepped",
                        len(self._waiting), timeout_s)

    async def _written(self) -> None:
        while self._waiting:
            await asyncio.sleep(GATHER_S)
            batch, self._waiting = self._waiting, []
            by_portal: dict[str, list[_Passage]] = {}
            for passage in batch:
                by_portal.setdefault(passage.portal, []).append(passage)
            for portal, passages in by_portal.items():
                await self._step(portal, passages)

    async def _step(self, portal: str, passages: list[_Passage]) -> None:
        actor = f"portal {portal}"
        writes: list[Write] = []
        stepped: set[str] = set()
        for n, passage in enumerate(passages):
            if passage.epc in stepped:
                # Out and back in within one gathering: the item's second step follows the
                # first's write, so its state and version are the book's.
                self._waiting[:0] = passages[n:]
                break
            step = self._lifecycle(passage)
            if step is None:
                continue
            stepped.add(passage.epc)
            write = Write("lifecycle", step, None)
            writes += [write, *self._companions(write)]
        if not writes:
            return
        try:
            await self._write(writes, actor)
        except (RecordRefused, RecordsError) as exc:
            log.warning("%s: %d passage(s) not on the book: %s", actor, len(stepped), exc)
        except Exception:  # a bug here must not stop the next pallet's steps
            log.exception("%s: %d passage(s) not on the book", actor, len(stepped))

    def _lifecycle(self, passage: _Passage) -> LifecycleEntry | None:
        records = self._records()
        item = records.items.get(passage.epc)
        if item is None:
            return None
        order = passage.order
        if passage.direction == "out" and order and item.state in AT_HOME:
            state = ItemState.ISSUED
        elif passage.direction == "in" and item.state is ItemState.ISSUED:
            state = ItemState.RETURNED
            newest = self._newest_step(passage.epc)
            order = order or (newest.document if newest is not None else "")
        else:
            return None
        return LifecycleEntry(f"{passage.epc}@{passage.at_ns}", passage.epc, state,
                              item.storehouse, order, "through the portal", passage.at_ns)
