"""The daily count of each storehouse: the book against what its inventory readers saw.

At `count_at` local time (08:00 by default, as the stockpile guidance's daily check), for each
storehouse with an inventory reader: the items on the book for it against the tags its readers
read in the last `seen_window_s` (an item that left under a movement order is out on that order,
not missing, until a read shows it back), and the portal passages out of it since the last count
that no movement order covered. Each kind of difference (missing, unexpected, moved without an
order) that has any item is a warning for the storehouse, naming the first items; a count
without it resolves that warning. Every count is a `reconciliation` fact (InfluxDB, the records),
whether it found anything or not. An officer's request (`reconcile:<storehouse>`, `depotwatch
records reconcile`) counts at once without moving the daily time.

The shelf reads themselves go to InfluxDB too (`inventory` facts), but cheaply: one point per
item per storehouse per `shelf_point_s` window (aligned to the epoch, an hour by default), at the
window's first read, not one per raw tag read (a reader sees every tag on its shelves many times a
minute). The custody record's first and last reads of a day come from these points.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import FieldValue, Reading, Severity, Transition, TransitionKind
from rules.base import Fact, Outcome, RuleConfigBase
from rules.depot import AT_HOME, Depot, SensorKind
from rules.portal_tracker import PortalTracker, covering_order, tag_read

__all__ = ["DIFFERENCES", "RECONCILE_PREFIX", "ReconciliationRule", "ReconciliationRuleConfig"]

_NS = 1_000_000_000
# Sensor name of an officer's request to count a storehouse now.
RECONCILE_PREFIX = "reconcile:"
DIFFERENCES = ("missing", "unexpected", "moved_without_order")
# Items named in an alert's summary and a fact's lists; the counts say how many in all.
_NAMED = 20


class ReconciliationRuleConfig(RuleConfigBase):
    """Counts each storehouse daily against the book; differences are warnings."""

    type: Literal["reconciliation"] = "reconciliation"
    count_at: dt.time = Field(default=dt.time(8, 0))
    seen_window_s: float = Field(default=86400.0, gt=0)
    direction_window_s: float = Field(default=10.0, gt=0)
    severity: Literal["warning", "alarm", "critical"] = "warning"
    shelf_point_s: float = Field(default=3600.0, gt=0)

    def build(self, depot: Depot) -> ReconciliationRule:
        """The rule for every storehouse with an inventory reader."""
        return ReconciliationRule(self, depot)


class ReconciliationRule:
    """Keeps the last inventory read of each tag and the unordered exits since each count."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.PORTAL_ANTENNA,
                                                        SensorKind.INVENTORY_READER})

    def __init__(self, config: ReconciliationRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._config = config
        self._severity = Severity(config.severity)
        self._window_ns = int(config.seen_window_s * _NS)
        self._shelf_ns = int(config.shelf_point_s * _NS)
        self._tracker = PortalTracker(depot, config.direction_window_s)
        self._readers = {s.id: s.storehouse for s in depot.sensors_of(SensorKind.INVENTORY_READER)}
        self._storehouses = sorted(set(self._readers.values()))
        # EPC -> (last inventory read, the storehouse whose reader read it).
        self._seen: dict[str, tuple[int, str]] = {}
        # Storehouse -> exits since its last count that no order covered: [epc, portal, at].
        self._moved: dict[str, list[tuple[str, str, int]]] = {}
        self._next_ns: dict[str, int] = {}
        self._firing: set[str] = set()  # "<difference>.<storehouse>"
        # EPC -> the movement order it left under, until a read shows it back.
        self._away: dict[str, str] = {}

    def _next_count(self, storehouse: str, after_ns: int) -> int:
        zone = self._depot.storehouses[storehouse].zone
        local = dt.datetime.fromtimestamp(after_ns / _NS, tz=zone)
        target = dt.datetime.combine(local.date(), self._config.count_at, tzinfo=zone)
        if target <= local:
            target = dt.datetime.combine(local.date() + dt.timedelta(days=1),
                                         self._config.count_at, tzinfo=zone)
        return int(target.timestamp() * _NS)

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Note inventory reads and unordered exits; count on an officer's request."""
        sensor = reading.sensor
        if sensor.startswith(RECONCILE_PREFIX):
            storehouse = sensor[len(RECONCILE_PREFIX):]
            if storehouse not in self._depot.storehouses:
                return []
            return self.count(storehouse, now_ns, str(reading.values.get("by", "")))
        store = self._readers.get(sensor)
        if store is not None:
            tag = tag_read(reading)
            if tag is None:
                return []
            shelf = self._shelf_point(tag[0], reading, store)
            self._seen[tag[0]] = (reading.at_ns, store)
            self._away.pop(tag[0], None)  # back in a store
            return shelf
        for passage in self._tracker.read(reading):
            if passage.direction == "in":
                self._away.pop(passage.epc, None)
            if passage.direction != "out":
                continue
            order = covering_order(self._depot, passage.epc, passage.portal, passage.at_ns)
            if order is not None:
                self._away[passage.epc] = order.id  # issued: accounted for, not missing
                continue
            portal = self._depot.portals[passage.portal]
            self._moved.setdefault(portal.storehouse, []).append(
                (passage.epc, passage.portal, passage.at_ns))
        return []

    def _shelf_point(self, epc: str, reading: Reading, store: str) -> list[Outcome]:
        """An `inventory` fact for the window's first read of the item in this storehouse."""
        # The last read (kept anyway for the count) tells whether this window has its point.
        last = self._seen.get(epc)
        at, width = reading.at_ns, self._shelf_ns
        if last is not None and last[1] == store and last[0] // width == at // width:
            return []
        item = self._depot.items.get(epc)
        return [Fact("inventory", {"storehouse": store, "reader": reading.sensor},
                     {"epc": epc, "item": item.name if item else ""}, at)]

    def tick(self, now_ns: int) -> list[Outcome]:
        """Count each storehouse whose daily time has come."""
        out: list[Outcome] = []
        self._tracker.expire(now_ns)
        for storehouse in self._storehouses:
            due = self._next_ns.get(storehouse)
            if due is None:
                due = self._next_ns[storehouse] = self._next_count(storehouse, now_ns)
            if now_ns >= due:
                out.extend(self.count(storehouse, now_ns, ""))
                self._next_ns[storehouse] = self._next_count(storehouse, now_ns)
        return out

    def count(self, storehouse: str, now_ns: int, by: str) -> list[Outcome]:
        """One count of a storehouse: the fact, and its warnings raised or resolved."""
        # The book of a storehouse: its items at home (issued, under repair, lost, destroyed or
        # transferred ones are not expected on its shelves; read there, they are unexpected).
        book = {epc for epc, item in self._depot.items.items()
                if item.storehouse == storehouse and item.state in AT_HOME}
        since = now_ns - self._window_ns
        seen = {epc for epc, (at_ns, store) in self._seen.items()
                if store == storehouse and at_ns >= since}
        moved = self._moved.pop(storehouse, [])
        away = {epc for epc in book if epc in self._away}
        found = {"missing": sorted(book - seen - away), "unexpected": sorted(seen - book),
                 "moved_without_order": sorted({epc for epc, _, _ in moved})}
        fields: dict[str, FieldValue] = {"on_book": float(len(book)), "seen": float(len(seen)),
                                         "out_on_order": float(len(away - seen)),
                                         "by": by or "schedule"}
        for name, epcs in found.items():
            fields[name] = float(len(epcs))
            fields[f"{name}_epcs"] = " ".join(epcs[:_NAMED])
        out: list[Outcome] = [Fact("reconciliation", {"storehouse": storehouse}, fields,
                                   now_ns)]
        for name, epcs in found.items():
            key = f"{name}.{storehouse}"
            if epcs and key not in self._firing:
                self._firing.add(key)
                out.append(self._transition(TransitionKind.FIRING, name, storehouse, epcs,
                                            now_ns))
            elif not epcs and key in self._firing:
                self._firing.discard(key)
                out.append(self._transition(TransitionKind.RESOLVED, name, storehouse, epcs,
                                            now_ns))
        return out

    def _transition(self, kind: TransitionKind, name: str, storehouse: str, epcs: list[str],
                    now_ns: int) -> Transition:
        store = self._depot.storehouses[storehouse].name
        items = self._depot.items
        named = ", ".join(f"{items[e].name} ({e})" if e in items else e for e in epcs[:5])
        words = name.replace("_", " ")
        summary = (f"{store}: count found {len(epcs)} {words}: {named}"
                   f"{' and more' if len(epcs) > 5 else ''}" if epcs
                   else f"{store}: count found nothing {words}")
        return Transition(kind=kind, rule="reconciliation", subject=f"{name}.{storehouse}",
                          severity=self._severity, at_ns=now_ns, storehouse=storehouse,
                          summary=summary,
                          facts={"difference": name, "items": float(len(epcs)),
                                 "epcs": " ".join(epcs[:_NAMED])})

    def snapshot(self) -> dict[str, Any]:
        """Inventory reads, unordered exits, next count times, open warnings."""
        return {"seen": {e: [t, s] for e, (t, s) in sorted(self._seen.items())},
                "moved": {s: [list(m) for m in moved] for s, moved in self._moved.items()},
                "next_ns": dict(self._next_ns), "firing": sorted(self._firing),
                "away": dict(sorted(self._away.items())), "tracks": self._tracker.snapshot()}

    def take_over(self, previous: ReconciliationRule) -> None:
        """Take the state of the rule this one replaces (no copy of the reads)."""
        stores = self._depot.storehouses
        self._seen, self._away = previous._seen, previous._away
        self._moved = {s: m for s, m in previous._moved.items() if s in stores}
        self._next_ns = {s: t for s, t in previous._next_ns.items() if s in self._storehouses}
        self._firing = {k for k in previous._firing if k.rpartition(".")[2] in stores}
        self._tracker.restore(previous._tracker.snapshot())

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back the state; storehouses no longer counted are dropped."""
        stores = self._depot.storehouses
        self._seen = {str(e): (int(v[0]), str(v[1])) for e, v in state.get("seen", {}).items()
                      if v[1] in stores}
        self._moved = {s: [(str(m[0]), str(m[1]), int(m[2])) for m in moved]
                       for s, moved in state.get("moved", {}).items() if s in stores}
        self._next_ns = {s: int(t) for s, t in state.get("next_ns", {}).items()
                         if s in self._storehouses}
        self._firing = {str(k) for k in state.get("firing", [])
                        if str(k).rpartition(".")[2] in stores}
        self._away = {str(e): str(o) for e, o in state.get("away", {}).items()}
        self._tracker.restore(state.get("tracks", []))
