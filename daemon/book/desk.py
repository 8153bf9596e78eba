"""The records desk: officers' changes to the book, checked, approved where the two-person rule
asks, written durably, audited, and handed to the rules at once.

Roles are checked by whoever calls (the API's route table, the console's session): the desk
checks the records themselves. Store work runs off the event loop, one change at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from daemon.alerts.alarm import LifecycleError
from daemon.alerts.audit import AuditLine
from daemon.book.checks import Problem, RecordRefused, approval_needed, problems
from daemon.book.entries import (
    KINDS,
    ConsignmentEntry,
    Entry,
    EntryState,
    KeyIssueEntry,
    LifecycleEntry,
    Records,
)
from daemon.book.exports import Passages
from daemon.book.passages import PortalSteps
from daemon.book.seed import differences
from daemon.book.store import Change, Parked, RecordsError, RecordsStore, StaleRecord, Write
from daemon.vocabulary.clock import Clock
from rules.base import Fact
from rules.depot import Depot, Item, ItemState

__all__ = ["ApprovalRefused", "Audit", "Proposal", "RecordsDesk"]

log = logging.getLogger(__name__)

Audit = Callable[[str, str, str, Mapping[str, Any], int], None]
T = TypeVar("T")
# Changes audited one entry each; a larger import is one entry, its rows in the store's history.
_AUDIT_EACH_UP_TO = 200


class ApprovalRefused(LifecycleError):
    """A parked change cannot be approved by this officer (or is gone)."""


@dataclass(frozen=True, slots=True)
class Proposal:
    """What became of a change: applied (`change`) or waiting for a second officer (`parked`)."""

    change: Change | None = None
    parked: Parked | None = None


class RecordsDesk:
    """Changes to the book, one at a time, each applied to the rules before the next."""

    def __init__(self, store: RecordsStore, places: Depot, clock: Clock, audit: Audit,
                 applied: Sequence[Callable[[Records], None]] = ()) -> None:
        self.store = store
        self.places = places
        self._clock = clock
        self._audit = audit
        self.applied = list(applied)
        # Writes a batch of audit entries with one fsync (the daemon's audit log's
        # `record_all`); without it each entry goes through `audit`.
        self.audit_all: Callable[[Sequence[AuditLine]], None] | None = None
        self.records = store.load()
        # EPC -> the key of its step on the book (one per item).
        self._step_keys = {step.epc: key for key, step in self.records.lifecycle.items()}
        self._lock = asyncio.Lock()
        # Counts a storehouse now through the rules (storehouse, officer): the running
        # pipeline's, set when the daemon wires it.
        self.counter: Callable[[str, str], list[Fact]] | None = None
        # Portal passages under orders, for the movements export (from InfluxDB, if any).
        self.passages: Passages | None = None
        self._cabinet_tasks: set[asyncio.Future[None]] = set()
        self.portal_steps = PortalSteps(lambda: self.records, self.newest_step, self._companions,
                                        lambda writes, actor: self._write(writes, actor, ""))
        # Told of each item found lost or missing (EPC, cause, officer): the loss reports.
        self.on_loss: Callable[[str, str, str], None] | None = None

    async def _run(self, work: Callable[[], T]) -> T:
        async with self._lock:
            return await asyncio.to_thread(work)

    def now_ns(self) -> int:
        """The desk's clock."""
        return self._clock.now_ns()

    def check(self, kind: str, entry: Entry) -> list[Problem]:
        """What is wrong with writing `entry` now."""
        return problems(kind, entry, self.records, self.places, self._clock.now_ns())

    async def propose(self, officer: str, kind: str, entry: Entry,
                      expected: int | None) -> Proposal:
        """Check a change and apply it, or park it for a second officer; raises RecordRefused
        (what is wrong, by field) or StaleRecord (reload and change again)."""
        found = self.check(kind, entry)
        if found:
            raise RecordRefused(f"{kind} {getattr(entry, KINDS[kind].key)!r}", found)
        write, now = Write(kind, entry, expected), self._clock.now_ns()
        why = approval_needed(kind, entry, self.records, self.places)
        if why:
            self._guard_version(write)
            parked = await self._run(lambda: self.store.park(write, officer, now, why))
            self._audit(officer, "records.park", f"{kind}/{parked.key}",
                        {"parked": parked.id, "reason": why,
                         "after": KINDS[kind].public(entry)}, now)
            log.info("records: %s %s by %s waits for a second officer: %s",
                     kind, parked.key, officer, why)
            return Proposal(parked=parked)
        return Proposal(change=(await self._write([write, *self._companions(write)], officer,
                                                  ""))[0])

    def _companions(self, write: Write) -> list[Write]:
        """An item's step moves the item itself too, in the same transaction."""
        if not isinstance(write.entry, LifecycleEntry):
            return []
        step = write.entry
        item = self.records.items[step.epc]
        return [Write("items", replace(item, state=step.state, storehouse=step.storehouse),
                      self.store.version("items", step.epc))]

    async def step(self, officer: str, epc: str, state: ItemState, storehouse: str | None,
                   document: str, note: str = "") -> Proposal:
        """An item enters a new state of its life (in `storehouse`, default where it is),
        on `document`; parked when it leaves the book for good (two-person rule)."""
        item = self.records.items.get(epc)
        if item is None:
            raise RecordRefused(f"item {epc!r}", [Problem("epc", "not on the book")])
        now = self._clock.now_ns()
        entry = LifecycleEntry(f"{epc}@{now}", epc, state, storehouse or item.storehouse,
                               document, note, now)
        return await self.propose(officer, "lifecycle", entry, None)

    async def receive(self, officer: str, consignment: ConsignmentEntry,
                      items: Sequence[Item]) -> list[Change]:
        """A consignment delivered: it, its items (`received`, in its storehouse) and their
        first step, in one transaction."""
        found = self.check("consignments", consignment)
        found += [p for item in items for p in self.check("items", item)]
        if found:
            raise RecordRefused(f"consignment {consignment.id!r}", found)
        at = consignment.received_ns
        writes = [Write("consignments", consignment, None)]
        for item in items:
            writes.append(Write("items", replace(item, state=ItemState.RECEIVED,
                                                 storehouse=consignment.storehouse), None))
            writes.append(Write("lifecycle", LifecycleEntry(
                f"{item.epc}@{at}", item.epc, ItemState.RECEIVED, consignment.storehouse,
                f"{consignment.reference} (consignment {consignment.id})", "", at), None))
        return await self._write(writes, officer, "")

    async def history(self, kind: str) -> list[Change]:
        """Every change of one kind, read off the event loop."""
        return await self._run(lambda: self.store.history(kind))

    def reconcile(self, officer: str, storehouse: str) -> Fact:
        """Count a storehouse against the book now (the daily count on demand)."""
        if storehouse not in self.places.storehouses:
            raise RecordRefused(f"storehouse {storehouse!r}",
                                [Problem("storehouse", "no such storehouse in this depot")])
        if self.counter is None:
            raise RecordRefused("reconcile", [Problem("storehouse", "no rules run here")])
        counted = [f for f in self.counter(storehouse, officer)
                   if f.measurement == "reconciliation"]
        if not counted:
            raise RecordRefused("reconcile", [Problem(
                "storehouse", "the reconciliation rule is switched off")])
        return counted[0]

    def heard(self, fact: Fact) -> None:
        """A fact of the rules the book keeps: a count's result, a key cabinet's event."""
        if fact.measurement == "reconciliation":
            self._counted(fact)
        elif fact.measurement == "portal":
            self.portal_steps.heard(fact)
        elif fact.measurement == "key":
            # Written through the desk's queue, after the reading that told it.
            self._cabinet_tasks.add(task := asyncio.ensure_future(self._cabinet(fact)))
            task.add_done_callback(self._cabinet_tasks.discard)

    async def issue_key(self, officer: str, epc: str, person: str, due_ns: int) -> Change:
        """Issue a key on the book to a roster person until `due_ns`."""
        now = self._clock.now_ns()
        entry = KeyIssueEntry(f"{epc}@{now}", epc, person, now, due_ns)
        found = self.check("key_issues", entry)
        if found:
            raise RecordRefused(f"key {epc}", found)
        return (await self._write([Write("key_issues", entry, None)], officer, ""))[0]

    async def return_key(self, officer: str, epc: str) -> Change:
        """Take a key back: its line on the register is closed now."""
        out = next((k for k in self.records.key_issues.values()
                    if k.epc == epc and k.state is EntryState.ACTIVE), None)
        if out is None:
            raise RecordRefused(f"key {epc}", [Problem("epc", "this key is not out")])
        back = replace(out, returned_ns=self._clock.now_ns(), state=EntryState.CLOSED)
        return (await self._write([Write("key_issues", back,
                                         self.store.version("key_issues", out.id))],
                                  officer, ""))[0]

    async def _cabinet(self, fact: Fact) -> None:
        epc, cabinet = str(fact.fields.get("epc", "")), str(fact.fields.get("cabinet", ""))
        actor = f"key cabinet {cabinet}"
        try:
            if fact.tags.get("action") == "returned":
                await self.return_key(actor, epc)
                return
            # The key has left the cabinet whoever took it: on the register at once, an
            # unknown badge by its hash (the cabinet let it go; the roster did not).
            person = str(fact.fields.get("person") or "")
            holder = person or f"unknown badge {fact.fields.get('badge_hash', '')}"
            due = fact.at_ns + int(float(fact.fields.get("due_in_s", 0.0)) * 1_000_000_000)
            writes = [Write("key_issues", replace(k, returned_ns=fact.at_ns,
                                                  state=EntryState.CLOSED),
                            self.store.version("key_issues", k.id))
                      for k in self.records.key_issues.values()
                      if k.epc == epc and k.state is EntryState.ACTIVE]
            writes.append(Write("key_issues", KeyIssueEntry(
                f"{epc}@{fact.at_ns}", epc, holder, fact.at_ns, due), None))
            await self._write(writes, actor, "")
        except (RecordRefused, RecordsError) as exc:
            log.warning("key cabinet %s: %s not on the register: %s", cabinet, epc, exc)

    def _counted(self, fact: Fact) -> None:
        """Keep a count's result (scheduled or asked for) for the exports and the audit."""
        storehouse, by = fact.tags.get("storehouse", ""), str(fact.fields.get("by", ""))
        try:
            self.store.keep_count(fact.at_ns, storehouse, by, dict(fact.fields))
        except RecordsError as exc:
            log.error("reconciliation of %s not kept: %s", storehouse, exc)
        self._audit(by if by != "schedule" else "depotwatch", "records.reconciled",
                    storehouse, dict(fact.fields), fact.at_ns)
        told = self.on_loss
        if told is not None:
            for epc in str(fact.fields.get("missing_epcs", "")).split():
                told(epc, f"missing at the count of {storehouse}", by or "schedule")

    def _guard_version(self, write: Write) -> None:
        current = self.store.version(write.kind, str(getattr(write.entry, KINDS[write.kind].key)))
        if current != write.expected:
            raise StaleRecord(f"{write.kind} changed since (version {current}): reload it")

    async def approve(self, officer: str, parked_id: int) -> Change:
        """A second officer lets a parked change take effect (checked again, as of now)."""
        parked = next((p for p in self.store.parked() if p.id == parked_id), None)
        if parked is None:
            raise ApprovalRefused(f"no change {parked_id} waits for approval")
        if parked.actor == officer:
            raise ApprovalRefused(f"{officer} asked for change {parked_id}: a second officer "
                                  "must approve it")
        found = self.check(parked.kind, parked.entry)
        if found:
            raise RecordRefused(f"{parked.kind} {parked.key!r}", found)
        write = Write(parked.kind, parked.entry, parked.expected)
        change = (await self._write([write, *self._companions(write)], parked.actor,
                                    officer))[0]
        await self._run(lambda: self.store.unpark(parked_id))
        return change

    async def refuse(self, officer: str, parked_id: int) -> None:
        """Drop a parked change (any records officer, the one who asked included)."""
        if not any(p.id == parked_id for p in self.store.parked()):
            raise ApprovalRefused(f"no change {parked_id} waits for approval")
        await self._run(lambda: self.store.unpark(parked_id))
        self._audit(officer, "records.refuse", f"parked/{parked_id}", {}, self._clock.now_ns())

    async def revoke(self, officer: str, name: str) -> Change:
        """Take a person off the roster now: their badge stops at every door at once."""
        entry = self.records.roster.get(name)
        if entry is None:
            raise RecordRefused(f"roster {name!r}", [Problem("name", "not on the roster")])
        version = self.store.version("roster", name)
        return (await self._write([Write("roster", replace(entry, state=EntryState.REVOKED),
                                         version)], officer, ""))[0]

    async def close(self, officer: str, kind: str, order_id: str) -> Change:
        """Close a movement or work order now."""
        entry = self.records.of(kind).get(order_id)
        if entry is None:
            raise RecordRefused(f"{kind} {order_id!r}", [Problem("id", "no such order")])
        return (await self._write([Write(kind, replace(entry, state=EntryState.CLOSED),
                                         self.store.version(kind, order_id))],
                                  officer, ""))[0]

    async def bring_to(self, officer: str, incoming: Mapping[str, Sequence[Entry]], *,
                       dry_run: bool, seed: bool = False) -> list[Write]:
        """Make the book hold `incoming` (an import): all or nothing; the writes it takes."""
        versions = {kind: self.store.versions(kind) for kind in incoming}
        writes = differences(self.records, incoming, versions)
        # An import is no way around the second officer: such a row is changed on its own.
        held = [Problem(f"{w.kind} {getattr(w.entry, KINDS[w.kind].key)}",
                        f"{why}: needs a second officer; change it on its own")
                for w in writes if not seed
                for why in [approval_needed(w.kind, w.entry, self.records, self.places)] if why]
        if held:
            raise RecordRefused("import", held)
        if not dry_run and (writes or seed):
            await self._write(writes, officer, "", seed=seed)
        return writes

    async def _write(self, writes: Sequence[Write], actor: str, approved_by: str, *,
                     seed: bool = False) -> list[Change]:
        now = self._clock.now_ns()
        changes = await self._run(lambda: self.store.write(writes, actor, now,
                                                           approved_by=approved_by, seed=seed))
        self.records, rebuild = self._updated(writes)
        for told in self.applied if rebuild else ():
            told(self.records)
        await self._audited(changes, actor, now)
        for write in writes:
            if isinstance(write.entry, LifecycleEntry) and write.entry.state is ItemState.LOST \
                    and self.on_loss is not None:
                self.on_loss(write.entry.epc, f"marked lost: {write.entry.note}".rstrip(": "),
                             actor)
        log.info("records: %d change(s) by %s%s", len(changes), actor,
                 f", approved by {approved_by}" if approved_by else "")
        return changes

    async def _audited(self, changes: Sequence[Change], actor: str, now: int) -> None:
        if len(changes) > _AUDIT_EACH_UP_TO:
            # A register import: one entry naming the history rows, not 100,000 fsyncs.
            self._audit(actor, "records.import", "book",
                        {"changes": len(changes), "first_seq": changes[0].seq,
                         "last_seq": changes[-1].seq,
                         "kinds": sorted({c.kind for c in changes})}, now)
            return
        lines: list[AuditLine] = [
            (actor, "records.change", f"{change.kind}/{change.key}",
             {"version": change.version, "before": change.before, "after": change.after,
              "approved_by": change.approved_by}, now) for change in changes]
        if self.audit_all is not None and len(lines) > 1:
            # A pallet's steps: one fsync, off the loop that judges the next door.
            await asyncio.to_thread(self.audit_all, lines)
            return
        for line in lines:
            self._audit(*line)

    def _updated(self, writes: Sequence[Write]) -> tuple[Records, bool]:
        """The book after `writes`, and whether the rules must be rebuilt for it.

        An item that only changes state (a portal passage, a step) and a new lifecycle step
        are written into the tables in place: the rules read item states through the same
        mapping at each reading, so nothing is rebuilt, and a pallet through the portal does
        not copy a 100,000-item table and rebuild every rule once per item. Any other change
        (a new item, a roster or order change) makes new tables and asks for a rebuild."""
        if all(self._in_place(write) for write in writes):
            for write in writes:
                book = self.records.of(write.kind)
                assert isinstance(book, dict)  # `_in_place` checked it
                self._put(book, write)
            return self.records, False
        tables: dict[str, dict[str, Any]] = {}
        for write in writes:
            table = tables.get(write.kind)
            if table is None:
                table = tables[write.kind] = dict(self.records.of(write.kind))
            self._put(table, write)
        return Records(**{kind: tables.get(kind, self.records.of(kind)) for kind in KINDS}), True

    def newest_step(self, epc: str) -> LifecycleEntry | None:
        """An item's newest lifecycle step on the book, if it has one."""
        key = self._step_keys.get(epc)
        return None if key is None else self.records.lifecycle.get(key)

    def _put(self, table: dict[str, Any], write: Write) -> None:
        entry = write.entry
        key = str(getattr(entry, KINDS[write.kind].key))
        if isinstance(entry, LifecycleEntry):
            # The book holds each item's newest step (Records.lifecycle); the store has all.
            older = self._step_keys.get(entry.epc)
            if older is not None and older != key:
                held = table.get(older)
                if held is not None and held.at_ns > entry.at_ns:
                    return
                table.pop(older, None)
            self._step_keys[entry.epc] = key
        table[key] = entry

    def _in_place(self, write: Write) -> bool:
        # Only the event loop reads `lifecycle`; threads read `items` by key, and an
        # existing key's value swapped changes no size under an iteration.
        if not isinstance(self.records.of(write.kind), dict):
            return False
        if write.kind == "lifecycle":
            return True
        entry = write.entry
        if write.kind != "items" or not isinstance(entry, Item):
            return False
        old = self.records.items.get(entry.epc)
        return old is not None and replace(old, state=entry.state) == entry

