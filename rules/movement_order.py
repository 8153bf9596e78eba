"""A movement order whose window ended with listed items never read going out: count uncertain.

PSSM.md movement rows: portals never read 100 % (an average of 99.8 % hides bad pallets), so an
authorised movement with expected tags unread is a warning to count by hand, not an alarm.

The warning asks for a reconciliation against the book, which PSSM.md schedules daily: it stays
up for `clear_after_s` (24 h) after it fired, i.e. through the next day's reconciliation, then
closes itself. Orders whose window had ended before the rule first ran are not judged: nobody
watched them. An order whose window was already open at a fresh start (no snapshot) is judged on
what was seen since, so it may warn (fail secure); the summary then says "watched only since".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Fact, Outcome, RuleConfigBase, format_duration
from rules.depot import Depot, MovementOrder, SensorKind
from rules.portal_tracker import PortalTracker

__all__ = ["MovementOrderCountRule", "MovementOrderCountRuleConfig"]

_NS = 1_000_000_000
_NAMED = 5  # missing items named in the summary; the rest are counted


class MovementOrderCountRuleConfig(RuleConfigBase):
    """At the end of a movement order's window, warn when not every listed item went out."""

    type: Literal["movement_order_count"] = "movement_order_count"
    # Same pairing window as the portal_movement rule: inner then outer read = "out".
    direction_window_s: float = Field(default=10.0, gt=0)
    severity: Literal["warning", "alarm", "critical"] = "warning"
    # Kept through the next day's reconciliation against the book (PSSM.md: daily).
    clear_after_s: float = Field(default=86400.0, gt=0)

    def build(self, depot: Depot) -> MovementOrderCountRule:
        """The rule for every movement order of the depot."""
        return MovementOrderCountRule(self, depot)


class MovementOrderCountRule:
    """Counts each order's listed items read going out through its portal within its window."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.PORTAL_ANTENNA})

    def __init__(self, config: MovementOrderCountRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._tracker = PortalTracker(depot, config.direction_window_s)
        self._severity = Severity(config.severity)
        self._clear_ns = int(config.clear_after_s * _NS)
        self._orders = {o.id: o for o in depot.movement_orders}
        self._started_ns: int | None = None
        self._seen: dict[str, set[str]] = {}
        self._closed: set[str] = set()
        # Order id -> (when the warning fired, EPCs not read), for the resolve's facts.
        self._firing: dict[str, tuple[int, list[str]]] = {}

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Note listed items read going out through their order's portal in its window."""
        if not self._tracker.is_antenna(reading.sensor):
            return []
        if self._started_ns is None:  # `_start`'s own test, without the call per tag read
            self._start(now_ns)
        for passage in self._tracker.read(reading):
            if passage.direction != "out":
                continue
            for order in self._orders.values():
                if order.id not in self._closed and order.covers(
                        passage.epc, passage.portal, passage.at_ns):
                    self._seen.setdefault(order.id, set()).add(passage.epc)
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Judge orders whose window has ended; close old warnings."""
        self._start(now_ns)
        # Lone reads are no exits; portal_movement records them, here they only expire.
        self._tracker.expire(now_ns)
        out: list[Outcome] = []
        for order in self._orders.values():
            if order.id not in self._closed and now_ns > order.valid_until_ns:
                self._closed.add(order.id)
                out.extend(self._judge(order, now_ns))
        for order_id in sorted(self._firing):
            fired_ns, missing = self._firing[order_id]
            if now_ns - fired_ns >= self._clear_ns:
                del self._firing[order_id]
                out.append(self._transition(
                    TransitionKind.RESOLVED, self._orders[order_id], missing, now_ns,
                    f"count-uncertain reminder closed after "
                    f"{format_duration(self._clear_ns / _NS)}; reconcile against the book"))
        return out

    def _judge(self, order: MovementOrder, now_ns: int) -> list[Outcome]:
        read = self._seen.pop(order.id, set()) & order.epcs
        missing = sorted(order.epcs - read)
        portal = self._depot.portals.get(order.portal)
        storehouse = portal.storehouse if portal else ""
        out: list[Outcome] = [Fact(
            measurement="movement_order",
            tags={"portal": order.portal, "order": order.id, "storehouse": storehouse},
            fields={"expected_count": float(len(order.epcs)), "read_count": float(len(read)),
                    "complete": not missing, "missing_epcs": ",".join(missing)},
            at_ns=order.valid_until_ns,
        )]
        if not missing:
            return out
        names = [self._name(epc) for epc in missing[:_NAMED]]
        if len(missing) > _NAMED:
            names.append(f"{len(missing) - _NAMED} more")
        self._firing[order.id] = (now_ns, missing)
        out.append(self._transition(
            TransitionKind.FIRING, order, missing, now_ns,
            f"count uncertain, {len(read)} of {len(order.epcs)} items read going out "
            f"(not read: {', '.join(names)}){self._partial(order)}; count by hand"))
        return out

    def _partial(self, order: MovementOrder) -> str:
        """Says so when monitoring began inside the window: items may have left unseen."""
        if self._started_ns is None or self._started_ns <= order.valid_from_ns:
            return ""
        portal = self._depot.portals.get(order.portal)
        storehouse = self._depot.storehouses.get(portal.storehouse) if portal else None
        zone = storehouse.zone if storehouse else dt.UTC
        since = dt.datetime.fromtimestamp(self._started_ns / _NS, tz=zone)
        return f", watched only since {since:%H:%M}"

    def _name(self, epc: str) -> str:
        item = self._depot.items.get(epc)
        return item.name if item else epc

    def _transition(self, kind: TransitionKind, order: MovementOrder, missing: list[str],
                    now_ns: int, text: str) -> Transition:
        portal = self._depot.portals.get(order.portal)
        storehouse = self._depot.storehouses.get(portal.storehouse) if portal else None
        prefix = f"{storehouse.name}: " if storehouse else ""
        return Transition(
            kind=kind, rule="movement_order_count", subject=order.id, severity=self._severity,
            at_ns=now_ns, storehouse=storehouse.id if storehouse else "",
            summary=f"{prefix}movement order {order.id} at portal {order.portal}: {text}",
            facts={"order": order.id, "portal": order.portal,
                   "expected_count": float(len(order.epcs)),
                   "read_count": float(len(order.epcs) - len(missing)),
                   "missing_epcs": ",".join(missing),
                   "missing_items": ", ".join(self._name(epc) for epc in missing)},
        )

    def _start(self, now_ns: int) -> None:
        if self._started_ns is not None:
            return
        self._started_ns = now_ns
        # Orders over before anyone watched are not judged: that would warn for every one.
        self._closed |= {o.id for o in self._orders.values() if o.valid_until_ns <= now_ns}

    def snapshot(self) -> dict[str, Any]:
        """Start time, open tracks, items seen per open order, judged orders, warnings."""
        return {
            "started_ns": self._started_ns,
            "tracks": self._tracker.snapshot(),
            "seen": {o: sorted(epcs) for o, epcs in sorted(self._seen.items())},
            "closed": sorted(self._closed),
            "firing": {o: [t, m] for o, (t, m) in sorted(self._firing.items())},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back the state; orders no longer in the config are dropped."""
        started = state.get("started_ns")
        self._started_ns = None if started is None else int(started)
        self._tracker.restore(state.get("tracks", []))
        orders = self._orders
        self._seen = {o: {str(e) for e in epcs} for o, epcs in state.get("seen", {}).items()
                      if o in orders}
        self._closed = {o for o in state.get("closed", []) if o in orders}
        self._firing = {o: (int(v[0]), [str(e) for e in v[1]])
                        for o, v in state.get("firing", {}).items() if o in orders}
