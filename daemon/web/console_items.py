"""The console's item pages (issue 27): the items on the book, one item's history with the form
for its next step in life, and consignments received (with the form to receive one).

A step that takes an item off the book for good waits for a second records officer, who
approves it on the roster page's list of waiting changes, as any other parked change.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import quote

from aiohttp import web

from daemon.book.checks import NEXT_STATES, Problem, RecordRefused
from daemon.book.desk import ApprovalRefused
from daemon.book.entries import ConsignmentEntry, LifecycleEntry
from daemon.book.store import StaleRecord
from daemon.web.console_book import BookPages
from daemon.web.console_page import may, page, refused_page
from daemon.web.console_session import Refused
from rules.depot import Item, ItemKind, ItemState

__all__ = ["ItemPages", "consigned_lines"]

# Items listed on the items page (the rest are found by EPC, name or serial).
_LIST_LIMIT = 200
# Lines of one pasted consignment.
_MAX_LINES = 10_000
# A form's page shown again (request, message, status, the form as sent), and a form's work
# (officer, form) -> where to go next.
_Shown = Callable[[web.Request, str, int, Mapping[str, str]], Awaitable[web.Response]]
_Work = Callable[[str, Mapping[str, str]], Awaitable[str]]


def consigned_lines(text: str, kind: ItemKind, lot: str,
                    storehouse: str) -> tuple[list[tuple[str, str]], list[Item], list[Problem]]:
    """Pasted lines `EPC SERIAL [NAME...]` (spaces, tabs, commas or semicolons between): the
    (EPC, serial) pairs, the items, and each bad line by number."""
    pairs: list[tuple[str, str]] = []
    items: list[Item] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    lines = text.splitlines()
    if len(lines) > _MAX_LINES:
        return [], [], [Problem("items", f"more than {_MAX_LINES} lines")]
    for number, line in enumerate(lines, 1):
        parts = line.replace(",", " ").replace(";", " ").split()
        if not parts:
            continue
        if len(parts) < 2:
            problems.append(Problem(f"items line {number}", "needs an EPC and a serial number"))
            continue
        epc, serial = parts[0].upper(), parts[1]
        if not all(c in "0123456789ABCDEF" for c in epc) or len(epc) > 64:
            problems.append(Problem(f"items line {number}", f"{parts[0]!r} is no EPC (hex)"))
            continue
        if epc in seen:
            problems.append(Problem(f"items line {number}", f"EPC {epc} again (line "
                                                            f"{seen[epc]})"))
            continue
        seen[epc] = number
        name = " ".join(parts[2:]) or f"{kind.value} {serial}"
        pairs.append((epc, serial))
        items.append(Item(epc, name[:200], kind, lot, storehouse))
    if not pairs and not problems:
        problems.append(Problem("items", "no items: paste one line per item, EPC and serial"))
    return pairs, items, problems


class ItemPages(BookPages):
    """The item and consignment pages and their forms, over one RecordsDesk."""

    def mount(self, app: web.Application) -> None:
        """Add the pages and their forms."""
        add = app.router.add_route
        add("GET", "/records/items", self.items_page)
        add("GET", "/records/items/{epc}", self.item_page)
        add("POST", "/records/items/{epc}/step", self._step)
        add("GET", "/records/consignments", self.consignments_page)
        add("POST", "/records/consignments", self._receive)

    async def items_page(self, request: web.Request) -> web.Response:
        """The book's items, found by EPC, name or state; each links to its history."""
        session = self._sessions.guard(request)
        found = request.query.get("q", "").strip().upper()
        serials = {epc: serial for c in self._desk.records.consignments.values()
                   for epc, serial in c.serials}
        items = [i for i in self._desk.records.items.values() if not found
                 or found in i.epc or found in i.name.upper()
                 or found == i.state.value.upper() or found in serials.get(i.epc, "")]
        # A register of 100,000: the first page picked without sorting it all.
        shown = heapq.nsmallest(_LIST_LIMIT, items, key=lambda i: (i.storehouse, i.name))
        return page("records_items.html", session, time=self._time(), q=found,
                    items=shown, total=len(items), serials=serials)

    async def item_page(self, request: web.Request, message: str = "",
                        status: int = 200) -> web.Response:
        """One item: where it is in its life, its steps (who, approved by, document), the
        steps waiting for a second officer, and the form for its next step."""
        session = self._sessions.guard(request)
        desk = self._desk
        epc = request.match_info["epc"].upper()
        item = desk.records.items.get(epc)
        if item is None:
            raise web.HTTPNotFound(text=f"EPC {epc} is not on the book")
        steps = await asyncio.to_thread(desk.store.steps_of, epc)
        waiting = [p for p in desk.store.parked()
                   if isinstance(p.entry, LifecycleEntry) and p.entry.epc == epc]
        consignment = next((c for c in desk.records.consignments.values()
                            if any(e == epc for e, _ in c.serials)), None)
        return page("records_item.html", session, status, message=message, time=self._time(),
                    item=item, steps=[c for c in steps if c.after], waiting=waiting,
                    consignment=consignment, serial=dict(consignment.serials).get(epc, "")
                    if consignment else "",
                    next_states=sorted(s.value for s in NEXT_STATES[item.state]),
                    storehouses=sorted(desk.places.storehouses),
                    may_act=may(session, "records"))

    async def consignments_page(self, request: web.Request, message: str = "",
                                status: int = 200, form: Mapping[str, str] | None = None
                                ) -> web.Response:
        """Consignments received, newest first, and the form to receive one."""
        session = self._sessions.guard(request)
        desk = self._desk
        return page("records_consignments.html", session, status, message=message,
                    time=self._time(), form=form or {},
                    consignments=sorted(desk.records.consignments.values(),
                                        key=lambda c: -c.received_ns),
                    storehouses=sorted(desk.places.storehouses),
                    kinds=[k.value for k in ItemKind], may_act=may(session, "records"))

    async def _acting(self, request: web.Request, shown: _Shown, work: _Work
                      ) -> web.StreamResponse:
        """Run a form's work as the session's officer; its page again with what was wrong,
        or on to where the work says."""
        form: Mapping[str, str] = {}
        try:
            session, form = await self._sessions.acting(request, "records")
            then = await work(session.officer, form)
        except Refused as refused:
            return refused_page(refused, request.path)
        except RecordRefused as exc:
            return await shown(request, str(exc), 422, form)
        except (StaleRecord, ApprovalRefused) as exc:
            return await shown(request, str(exc), 409, form)
        raise web.HTTPSeeOther(then)

    async def _step(self, request: web.Request) -> web.StreamResponse:
        epc = request.match_info["epc"].upper()

        async def shown(request: web.Request, message: str, status: int,
                        form: Mapping[str, str]) -> web.Response:
            return await self.item_page(request, message, status)

        async def work(officer: str, form: Mapping[str, str]) -> str:
            try:
                state = ItemState(form.get("state", ""))
            except ValueError:
                raise RecordRefused(f"item {epc!r}", [Problem(
                    "state", f"no state {form.get('state', '')!r}")]) from None
            await self._desk.step(officer, epc, state, form.get("storehouse") or None,
                                  form.get("document", "").strip()[:200],
                                  form.get("note", "").strip()[:2000])
            return f"/records/items/{quote(epc)}"
        return await self._acting(request, shown, work)

    async def _receive(self, request: web.Request) -> web.StreamResponse:
        async def shown(request: web.Request, message: str, status: int,
                        form: Mapping[str, str]) -> web.Response:
            return await self.consignments_page(request, message, status, form)

        async def work(officer: str, form: Mapping[str, str]) -> str:
            consignment, items = self._consignment(form)
            await self._desk.receive(officer, consignment, items)
            return "/records/consignments"
        return await self._acting(request, shown, work)

    def _consignment(self, form: Mapping[str, str]) -> tuple[ConsignmentEntry, list[Item]]:
        """The consignment a form describes; RecordRefused naming each bad field or line."""
        storehouse = form.get("storehouse", "")
        try:
            kind = ItemKind(form.get("kind", "weapon"))
        except ValueError:
            raise RecordRefused("consignment", [Problem("kind", "no such kind")]) from None
        pairs, items, problems = consigned_lines(form.get("items", ""), kind,
                                                 form.get("lot", "").strip()[:64], storehouse)
        received = self._clock.now_ns()
        if form.get("received"):
            try:
                moment = dt.datetime.fromisoformat(form["received"])
            except ValueError:
                problems.append(Problem("received", "a date and time, e.g. 2026-12-07T09:30"))
            else:
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=self._time().zone)
                received = int(moment.timestamp() * 1_000_000_000)
        if problems:
            raise RecordRefused("consignment", problems)
        entry = ConsignmentEntry(form.get("id", "").strip()[:64],
                                 form.get("exporting_state", "").strip()[:200],
                                 form.get("reference", "").strip()[:200], storehouse, received,
                                 tuple(pairs))
        return entry, items
