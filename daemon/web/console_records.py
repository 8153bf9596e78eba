"""The console's records pages (issue 19): the roster (add, change, revoke), movement and work
orders (issue, close), and changes waiting for a second officer (approve, refuse).

Every form goes through the records desk, as the API's calls do; the officer's role decides
(records or administrator). Times typed in a form are read in the depot's first storehouse's
zone, as the pages show them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from daemon.book.checks import Problem, RecordRefused
from daemon.book.desk import ApprovalRefused
from daemon.book.entries import KINDS, EntryState
from daemon.book.exports import EXPORTS, export, moment_ns
from daemon.book.forms import FORMS
from daemon.book.store import StaleRecord
from daemon.web.console_book import BookPages
from daemon.web.console_page import may, page, refused_page
from daemon.web.console_session import Refused
from rules.depot import ItemKind

__all__ = ["RecordPages"]

# Items offered to pick from per order form; the rest are typed or scanned as EPCs.
_PICK_LIMIT = 500
_Step = Callable[[str, Mapping[str, str]], Any]


class RecordPages(BookPages):
    """The records pages and their forms, over one RecordsDesk."""

    def mount(self, app: web.Application) -> None:
        """Add the pages and their forms."""
        add = app.router.add_route
        add("GET", "/records", self.roster_page)
        add("GET", "/records/orders", self.orders_page)
        add("GET", "/records/export/{what}", self.export)
        add("POST", "/records/roster", self._form("/records", self._put_person))
        add("POST", "/records/roster/{key}/revoke", self._form("/records", self._revoke))
        add("POST", "/records/orders/{kind}", self._form("/records/orders", self._put_order))
        add("POST", "/records/orders/{kind}/{key}/close",
            self._form("/records/orders", self._close))
        add("POST", "/records/parked/{key}/{step}", self._form("/records", self._decide))
        add("POST", "/records/keys/issue", self._form("/records/orders", self._issue_key))
        add("POST", "/records/keys/{key}/return", self._form("/records/orders", self._return_key))

    async def roster_page(self, request: web.Request, message: str = "",
                          status: int = 200) -> web.Response:
        """The roster, the add/change form, and changes waiting for a second officer."""
        session = self._sessions.guard(request)
        desk = self._desk
        people = sorted(desk.records.roster.values(),
                        key=lambda p: (p.state is not EntryState.ACTIVE, p.name))
        return page("records.html", session, status, message=message, time=self._time(),
                    people=people, versions=desk.store.versions("roster"),
                    storehouses=sorted(desk.places.storehouses),
                    parked=[(p, KINDS[p.kind].public(p.entry)) for p in desk.store.parked()],
                    may_act=may(session, "records"), exports=EXPORTS)

    async def orders_page(self, request: web.Request, message: str = "",
                          status: int = 200) -> web.Response:
        """Movement and work orders, with the forms to issue and close them."""
        session = self._sessions.guard(request)
        desk = self._desk
        portals = sorted(desk.places.portals.values(), key=lambda p: p.id)
        stores = {p.storehouse for p in portals}
        pick = sorted((i for i in desk.records.items.values() if i.storehouse in stores),
                      key=lambda i: (i.storehouse, i.name))[:_PICK_LIMIT]
        return page("records_orders.html", session, status, message=message, time=self._time(),
                    movements=sorted(desk.records.movement_orders.values(),
                                     key=lambda o: -o.valid_from_ns),
                    works=sorted(desk.records.work_orders.values(),
                                 key=lambda o: -o.valid_from_ns),
                    portals=portals, doors=sorted(desk.places.doors), pick=pick,
                    items=desk.records.items, may_act=may(session, "records"),
                    keys_out=sorted((k for k in desk.records.key_issues.values()
                                     if k.state is EntryState.ACTIVE), key=lambda k: k.due_ns),
                    keys=sorted((i for i in desk.records.items.values()
                                 if i.kind is ItemKind.KEY), key=lambda i: i.name),
                    people=sorted(p.name for p in desk.records.roster.values()
                                  if p.state is EntryState.ACTIVE))

    async def export(self, request: web.Request) -> web.StreamResponse:
        """One of the auditors' CSV files, for `since`..`until` (dates, the depot's zone)."""
        self._sessions.guard(request)
        what = request.match_info["what"].removesuffix(".csv")
        if what not in EXPORTS:
            raise web.HTTPNotFound()
        try:
            since = self._when(request.query.get("since", ""))
            until = self._when(request.query.get("until", ""))
        except ValueError:
            raise web.HTTPBadRequest(text="since and until are dates, e.g. 2026-12-01") from None
        desk = self._desk
        text = await asyncio.to_thread(
            export, what, desk.store, moment_ns(since) if since else 0,
            moment_ns(until) if until else 2**63 - 1, desk.passages)
        return web.Response(text=text, content_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{what}.csv"',
            "Cache-Control": "no-store"})

    def _form(self, back: str, step: _Step) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.StreamResponse:
            shown = self.roster_page if back == "/records" else self.orders_page
            try:
                session, form = await self._sessions.acting(request, "records")
                await step(session.officer, {**form, **request.match_info})
            except Refused as refused:
                return refused_page(refused, back)
            except RecordRefused as exc:
                return await shown(request, str(exc), 422)
            except (StaleRecord, ApprovalRefused) as exc:
                return await shown(request, str(exc), 409)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                     for e in exc.errors(include_url=False))
                return await shown(request, f"Not taken: {problems}", 422)
            raise web.HTTPSeeOther(back)
        return handle

    def _when(self, text: str) -> str | None:
        """A form's local date and time as ISO with the depot's zone."""
        if not text:
            return None
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._time().zone)
        return moment.isoformat()

    async def _put_person(self, officer: str, form: Mapping[str, str]) -> None:
        name = form.get("name", "").strip()
        zones = [z for z in sorted(self._desk.places.storehouses) if form.get(f"zone.{z}")]
        version = int(form["version"]) if form.get("version", "").isdigit() else None
        body = {"badge": form.get("badge") or None, "zones": zones,
                "valid_from": self._when(form.get("valid_from", "")),
                "valid_until": self._when(form.get("valid_until", "")),
                "escort_only": bool(form.get("escort_only")), "version": version}
        entry = FORMS["roster"].model_validate(body).entry(
            name, self._desk.records.roster.get(name))
        await self._desk.propose(officer, "roster", entry, version)

    async def _revoke(self, officer: str, form: Mapping[str, str]) -> None:
        await self._desk.revoke(officer, form["key"])

    async def _put_order(self, officer: str, form: Mapping[str, str]) -> None:
        kind = {"movement": "movement_orders", "work": "work_orders"}.get(form["kind"])
        if kind is None:
            raise web.HTTPNotFound()
        body: dict[str, Any] = {"valid_from": self._when(form.get("valid_from", "")),
                                "valid_until": self._when(form.get("valid_until", ""))}
        if kind == "movement_orders":
            picked = [k.removeprefix("item.") for k in form if k.startswith("item.")]
            typed = form.get("epcs", "").replace(",", " ").split()
            body |= {"portal": form.get("portal", ""), "items": [*picked, *typed]}
        else:
            body["door"] = form.get("door", "")
        key = form.get("id", "").strip()
        entry = FORMS[kind].model_validate(body).entry(key, None)
        await self._desk.propose(officer, kind, entry, None)

    async def _issue_key(self, officer: str, form: Mapping[str, str]) -> None:
        due = self._when(form.get("due", ""))
        if due is None:
            raise RecordRefused("key", [Problem("due", "a due time is needed")])
        await self._desk.issue_key(officer, form.get("epc", ""), form.get("person", ""),
                                   moment_ns(due))

    async def _return_key(self, officer: str, form: Mapping[str, str]) -> None:
        await self._desk.return_key(officer, form["key"])

    async def _close(self, officer: str, form: Mapping[str, str]) -> None:
        kind = {"movement": "movement_orders", "work": "work_orders"}.get(form["kind"])
        if kind is None:
            raise web.HTTPNotFound()
        await self._desk.close(officer, kind, form["key"])

    async def _decide(self, officer: str, form: Mapping[str, str]) -> None:
        parked = int(form["key"]) if form["key"].isdigit() else -1
        if form["step"] == "approve":
            await self._desk.approve(officer, parked)
        else:
            await self._desk.refuse(officer, parked)
