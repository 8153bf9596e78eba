"""The API's records calls: the roster, the item register and movement and work orders, read
and changed at run time (issue 19), so that a depot's stock system can push its orders.

Reading takes a viewer; changing takes the records role (or an administrator). A change that
the two-person rule holds is answered 202 with the parked change, which a second records
officer approves. A write names the `version` it read: a stale one is a 409 (reload).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any, TypeVar

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from daemon.book.checks import RecordRefused
from daemon.book.csvio import read_csv
from daemon.book.desk import ApprovalRefused, Proposal, RecordsDesk
from daemon.book.entries import KINDS, ConsignmentEntry
from daemon.book.forms import FORMS
from daemon.book.store import Change, Parked, StaleRecord, Write
from daemon.web import api_records_schema as answers
from daemon.web.api_bodies import RequestBody
from daemon.web.api_refusals import Refusal
from daemon.web.api_routes import API_PREFIX, Operation, Route
from rules.depot import Item, ItemKind, ItemState

__all__ = ["RECORDS_ROUTES", "RecordsCalls", "change_json", "parked_json"]

log = logging.getLogger(__name__)


class KeyIssueBody(RequestBody):
    """A key issued: to whom (a roster name) and until when."""

    person: str = Field(min_length=1, max_length=200)
    due: AwareDatetime


class StepBody(RequestBody):
    """An item's step: its new state, where (default: where it is), the document behind it."""

    state: ItemState
    storehouse: str | None = Field(default=None, min_length=1)
    document: str = Field(default="", max_length=200)
    note: str = Field(default="", max_length=2000)


class ConsignedItem(RequestBody):
    """One item of a consignment, by EPC and serial number."""

    epc: str = Field(min_length=1, max_length=64)
    serial: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    kind: ItemKind = ItemKind.WEAPON
    lot: str = Field(default="", max_length=64)


class ConsignmentBody(RequestBody):
    """A delivery: the exporting state, the licence or end-user certificate, its items."""

    id: str = Field(min_length=1, max_length=64)
    exporting_state: str = Field(min_length=1, max_length=200)
    reference: str = Field(min_length=1, max_length=200)
    storehouse: str = Field(min_length=1)
    received: AwareDatetime | None = None
    items: list[ConsignedItem] = Field(min_length=1, max_length=100_000)


class ImportBody(BaseModel):
    """A CSV import: which register, the file's text, and whether only to show the changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str
    csv: str = Field(max_length=32 << 20)
    dry_run: bool = False


_R = f"{API_PREFIX}/records"
_KINDS = ", ".join(KINDS)
RECORDS_ROUTES = (
    Route("GET", f"{_R}/parked", "listParked", "Changes waiting for a second officer",
          "ParkedList"),
    Route("POST", f"{_R}/parked/{{id}}/approve", "approveParked",
          "Approve another officer's change (two-person rule)", "Change",
          refusals=(403, 404, 409, 422), action="records"),
    Route("POST", f"{_R}/parked/{{id}}/refuse", "refuseParked", "Drop a waiting change",
          "Empty", refusals=(403, 404), action="records"),
    Route("POST", f"{_R}/import", "importRecords",
          "Import roster or items from CSV (all rows or none; dry_run shows the changes)",
          "ImportResult", body=ImportBody, refusals=(403, 409, 422), action="records"),
    Route("POST", f"{_R}/reconcile/{{storehouse}}", "reconcileStorehouse",
          "Count a storehouse against the book now (the daily count on demand)",
          "Reconciliation", refusals=(403, 422), action="records"),
    Route("POST", f"{_R}/keys/{{epc}}/issue", "issueKey",
          "Issue a key on the book to a roster person until a due time", "Change",
          body=KeyIssueBody, refusals=(403, 422), action="records"),
    Route("POST", f"{_R}/keys/{{epc}}/return", "returnKey", "Take a key back", "Change",
          refusals=(403, 422), action="records"),
    Route("POST", f"{_R}/items/{{epc}}/step", "stepItem",
          "An item enters a new state of its life, on its document (202: it waits for a "
          "second officer)", "Change", body=StepBody, refusals=(403, 409, 422),
          action="records", accepted="ParkedAnswer"),
    Route("POST", f"{_R}/consignments", "receiveConsignment",
          "A consignment delivered: it, its items (received) and their first step",
          "ConsignmentReceived", body=ConsignmentBody, refusals=(403, 409, 422),
          action="records"),
    Route("GET", f"{_R}/{{kind}}", "listRecords",
          f"The records of one kind ({_KINDS}); items: storehouse= narrows, limit= caps",
          "RecordList", refusals=(404,), query=("storehouse", "limit")),
    Route("GET", f"{_R}/{{kind}}/{{key}}", "getRecord", "One record and its version",
          "Record", refusals=(404,)),
    Route("PUT", f"{_R}/{{kind}}/{{key}}", "putRecord",
          "Add or change a record of kind roster, items, movement_orders or work_orders, "
          "the body that kind's (202: it waits for a second officer)", "Change",
          bodies=tuple(FORMS.values()), refusals=(403, 404, 409, 422), action="records",
          accepted="ParkedAnswer"),
    Route("POST", f"{_R}/roster/{{key}}/revoke", "revokePerson",
          "Take a person off the roster now (their badge stops at once)", "Change",
          refusals=(403, 404, 409, 422), action="records"),
    Route("POST", f"{_R}/{{kind}}/{{key}}/close", "closeOrder",
          "Close a movement or work order now", "Change", refusals=(403, 404, 409, 422),
          action="records"),
)


def change_json(change: Change) -> dict[str, Any]:
    """A change as the API answers it."""
    return answers.Change(seq=change.seq, kind=change.kind, key=change.key,
                          version=change.version, by=change.actor,
                          approved_by=change.approved_by, before=change.before,
                          after=change.after).model_dump()


def parked_json(parked: Parked) -> dict[str, Any]:
    """A parked change as the API answers it."""
    return answers.Parked(id=parked.id, kind=parked.kind, key=parked.key, by=parked.actor,
                          at_ns=parked.at_ns, reason=parked.reason,
                          after=KINDS[parked.kind].public(parked.entry)).model_dump()


class RecordsCalls:
    """The records routes' operations over one RecordsDesk."""

    def __init__(self, desk: RecordsDesk) -> None:
        self._desk = desk

    def operations(self) -> dict[str, Operation]:
        """Operation name -> operation, for the route table."""
        return {"listParked": self.list_parked, "approveParked": self.approve,
                "refuseParked": self.refuse, "importRecords": self.import_csv,
                "listRecords": self.list_records, "getRecord": self.get_record,
                "putRecord": self.put, "revokePerson": self.revoke, "closeOrder": self.close,
                "reconcileStorehouse": self.reconcile, "issueKey": self.issue_key,
                "returnKey": self.return_key, "stepItem": self.step,
                "receiveConsignment": self.receive}

    def _kind(self, request: web.Request) -> str:
        kind = request.match_info.get("kind", "roster")
        if kind not in KINDS:
            raise Refusal(404, f"no records of kind {kind!r}: {', '.join(KINDS)}")
        return kind

    async def list_records(self, request: web.Request, officer: str) -> web.Response:
        """Every record of a kind (items: `storehouse=` narrows, `limit=` caps, 1,000); of
        the lifecycle, each item's newest step."""
        kind = self._kind(request)
        spec, table = KINDS[kind], self._desk.records.of(kind)
        where = request.query.get("storehouse")
        asked = request.query.get("limit", "")
        limit = int(asked) if asked.isdigit() else 1000
        shown = [spec.public(e) for e in table.values()
                 if where is None or getattr(e, "storehouse", where) == where][:limit]
        return _answer(answers.RecordList(kind=kind, total=len(table), records=shown))

    async def get_record(self, request: web.Request, officer: str) -> web.Response:
        """One record with its version."""
        kind, key = self._kind(request), _key(request)
        # An item's older lifecycle steps are only in the store (Records.lifecycle).
        entry = self._desk.records.of(kind).get(key) or self._desk.store.entry(kind, key)
        if entry is None:
            raise Refusal(404, f"{kind} {key!r} is not on the book")
        version = self._desk.store.version(kind, key)
        return _answer(answers.Record(version=version, **KINDS[kind].public(entry)))

    async def put(self, request: web.Request, officer: str) -> web.Response:
        """Add or change a record."""
        kind, key = self._kind(request), _key(request)
        if kind not in FORMS:
            raise Refusal(404, f"{kind} change through their own calls (keys: /records/keys/"
                               "<epc>/issue and /return)")
        form = _body(FORMS[kind], await request.read())
        entry = form.entry(key, self._desk.records.of(kind).get(key))
        with _refusals():
            proposal = await self._desk.propose(officer, kind, entry, form.version)
        return _proposal(proposal)

    async def revoke(self, request: web.Request, officer: str) -> web.Response:
        """Revoke a person's roster entry."""
        with _refusals():
            change = await self._desk.revoke(officer, _key(request))
        return web.json_response(change_json(change))

    async def close(self, request: web.Request, officer: str) -> web.Response:
        """Close a movement or work order."""
        kind = self._kind(request)
        if kind not in ("movement_orders", "work_orders"):
            raise Refusal(404, "only movement_orders and work_orders are closed")
        with _refusals():
            change = await self._desk.close(officer, kind, _key(request))
        return web.json_response(change_json(change))

    async def reconcile(self, request: web.Request, officer: str) -> web.Response:
        """Count a storehouse now; the count's result."""
        storehouse = request.match_info["storehouse"]
        with _refusals():
            counted = self._desk.reconcile(officer, storehouse)
        return _answer(answers.Reconciliation(storehouse=storehouse, at_ns=counted.at_ns,
                                              **counted.fields))

    async def issue_key(self, request: web.Request, officer: str) -> web.Response:
        """Issue a key."""
        body = _body(KeyIssueBody, await request.read())
        with _refusals():
            change = await self._desk.issue_key(officer, request.match_info["epc"].upper(),
                                                body.person,
                                                int(body.due.timestamp() * 1_000_000_000))
        return web.json_response(change_json(change))

    async def return_key(self, request: web.Request, officer: str) -> web.Response:
        """Take a key back."""
        with _refusals():
            change = await self._desk.return_key(officer, request.match_info["epc"].upper())
        return web.json_response(change_json(change))

    async def step(self, request: web.Request, officer: str) -> web.Response:
        """An item's step in its lifecycle."""
        body = _body(StepBody, await request.read())
        with _refusals():
            proposal = await self._desk.step(officer, request.match_info["epc"].upper(),
                                             body.state, body.storehouse, body.document,
                                             body.note)
        return _proposal(proposal)

    async def receive(self, request: web.Request, officer: str) -> web.Response:
        """A consignment received."""
        body = _body(ConsignmentBody, await request.read())
        at = self._desk.now_ns() if body.received is None \
            else int(body.received.timestamp() * 1_000_000_000)
        consignment = ConsignmentEntry(body.id, body.exporting_state, body.reference,
                                       body.storehouse, at,
                                       tuple((i.epc.upper(), i.serial) for i in body.items))
        items = [Item(i.epc.upper(), i.name, i.kind, i.lot, body.storehouse)
                 for i in body.items]
        with _refusals():
            changes = await self._desk.receive(officer, consignment, items)
        return _answer(answers.ConsignmentReceived(changes=len(changes), consignment=body.id))

    async def list_parked(self, request: web.Request, officer: str) -> web.Response:
        """Changes waiting for a second officer."""
        return web.json_response([parked_json(p) for p in self._desk.store.parked()])

    async def approve(self, request: web.Request, officer: str) -> web.Response:
        """Approve a parked change."""
        with _refusals():
            change = await self._desk.approve(officer, _parked_id(request))
        return web.json_response(change_json(change))

    async def refuse(self, request: web.Request, officer: str) -> web.Response:
        """Drop a parked change."""
        with _refusals():
            await self._desk.refuse(officer, _parked_id(request))
        return _answer(answers.Empty())

    async def import_csv(self, request: web.Request, officer: str) -> web.Response:
        """Import a CSV file: every row or none."""
        body = _body(ImportBody, await request.read())
        entries, errors = read_csv(body.kind, body.csv, self._desk.records,
                                   self._desk.places, self._desk.now_ns())
        if errors:
            raise Refusal(422, f"{len(errors)} bad row(s): nothing imported",
                          [{"loc": [e.partition(":")[0]], "msg": e.partition(": ")[2]}
                           for e in errors])
        with _refusals():
            writes = await self._desk.bring_to(officer, {body.kind: entries},
                                               dry_run=body.dry_run)
        return _answer(answers.ImportResult(dry_run=body.dry_run,
                                            changes=[_write_shown(w) for w in writes]))


M = TypeVar("M", bound=BaseModel)


def _body(model: type[M], raw: bytes) -> M:
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        raise Refusal(422, "invalid request body", json.loads(
            exc.json(include_url=False, include_context=False))) from None


def _answer(model: BaseModel) -> web.Response:
    return web.json_response(model.model_dump())


def _write_shown(write: Write) -> answers.WriteShown:
    spec = KINDS[write.kind]
    return answers.WriteShown(kind=write.kind, key=str(getattr(write.entry, spec.key)),
                              action="add" if write.expected is None else "change",
                              after=spec.public(write.entry))


def _key(request: web.Request) -> str:
    return request.match_info["key"]


def _parked_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isdigit():
        raise Refusal(404, f"no change {raw!r} waits for approval")
    return int(raw)


def _proposal(proposal: Proposal) -> web.Response:
    if proposal.parked is not None:
        return web.json_response({"parked": parked_json(proposal.parked)}, status=202)
    assert proposal.change is not None
    return web.json_response(change_json(proposal.change))


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """The desk's refusals as the API's: 422 by field, 409 stale, 404/409 for approvals."""
    try:
        yield
    except RecordRefused as exc:
        raise Refusal(422, str(exc), [p.as_dict() for p in exc.problems]) from None
    except StaleRecord as exc:
        raise Refusal(409, str(exc)) from None
    except ApprovalRefused as exc:
        raise Refusal(404 if "no change" in str(exc) else 409, str(exc)) from None
