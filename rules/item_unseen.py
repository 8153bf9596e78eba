"""A registered item no RFID reader has read for a day (PSSM.md: warning after 24 h).

Any read counts: an inventory reader, or either antenna of a portal. Items that left through a
portal under a covering movement order are expected away and not warned about until a read shows
them back (an `in` passage, or any inventory reader: portals miss tags). The clock starts at the
rule's first event, so a fresh start does not warn at once for every item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, format_duration
from rules.depot import AT_HOME, Depot, SensorKind
from rules.portal_tracker import PortalTracker, covering_order, tag_read

__all__ = ["ItemUnseenRule", "ItemUnseenRuleConfig"]

_NS = 1_000_000_000


class ItemUnseenRuleConfig(RuleConfigBase):
    """Warn when a registered item has not been read for `max_unseen_s`; a read resolves it."""

    type: Literal["item_unseen"] = "item_unseen"
    max_unseen_s: float = Field(default=86400.0, gt=0)
    # Same pairing window as the portal_movement rule, to tell authorised exits from returns.
    direction_window_s: float = Field(default=10.0, gt=0)
    severity: Literal["warning", "alarm", "critical"] = "warning"

    def build(self, depot: Depot) -> ItemUnseenRule:
        """The rule for every item in the register."""
        return ItemUnseenRule(self, depot)


class ItemUnseenRule:
    """Follows when and where each registered item was last read, and which are out on orders."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.PORTAL_ANTENNA,
                                                        SensorKind.INVENTORY_READER})

    def __init__(self, config: ItemUnseenRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._tracker = PortalTracker(depot, config.direction_window_s)
        self._severity = Severity(config.severity)
        self._max_ns = int(config.max_unseen_s * _NS)
        self._inventory = {s.id for s in depot.sensors_of(SensorKind.INVENTORY_READER)}
        # EPC -> (last read, by which sensor; "" before the first read since monitoring began).
        self._last_seen: dict[str, tuple[int, str]] = {}
        self._away: dict[str, str] = {}  # EPC -> the movement order it left under
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """A read of a registered item resets its clock and resolves its warning."""
        antenna = self._tracker.is_antenna(reading.sensor)
        if not antenna and reading.sensor not in self._inventory:
            return []
        tag = tag_read(reading)
        if tag is None:
            return []
        if len(self._last_seen) < len(self._depot.items):  # `_start`'s test, without the call
            self._start(now_ns)
        if antenna:
            for passage in self._tracker.read(reading):
                if passage.epc not in self._depot.items:
                    continue
                if passage.direction == "in":
                    self._away.pop(passage.epc, None)
                elif passage.direction == "out":
                    order = covering_order(self._depot, passage.epc, passage.portal,
                                           passage.at_ns)
                    if order is not None:
                        self._away[passage.epc] = order.id
        epc = tag[0]
        if epc not in self._depot.items:
            return []
        if not antenna:
            self._away.pop(epc, None)  # an inventory reader saw it in a store: it is back
        self._last_seen[epc] = (max(reading.at_ns, self._last_seen[epc][0]), reading.sensor)
        if epc in self._firing:
            self._firing.discard(epc)
            return [self._transition(TransitionKind.RESOLVED, epc, now_ns,
                                     f"read again by {reading.sensor}")]
        return []

    def last_read(self, epc: str) -> tuple[int, str] | None:
        """When and by which sensor the item was last read (None: not since monitoring began)."""
        seen = self._last_seen.get(epc)
        return seen if seen is not None and seen[1] else None

    def tick(self, now_ns: int) -> list[Outcome]:
        """Warn for every item at home and unread for longer than allowed."""
        self._start(now_ns)
        self._tracker.expire(now_ns)  # lone antenna reads already counted as seen
        out: list[Outcome] = []
        for epc, (seen_ns, sensor) in self._last_seen.items():
            if epc in self._firing or epc in self._away or now_ns - seen_ns < self._max_ns:
                continue
            if self._depot.items[epc].state not in AT_HOME:
                continue  # issued, under repair, lost or gone: not expected at a reader
            self._firing.add(epc)
            last = f"last read by {sensor}" if sensor else "not read since monitoring began"
            out.append(self._transition(
                TransitionKind.FIRING, epc, now_ns,
                f"not seen for {format_duration((now_ns - seen_ns) / _NS)} ({last})"))
        return out

    def _start(self, now_ns: int) -> None:
        # Runs per tag read: once every item has a clock (the keys are a subset of the depot's
        # items), a length check instead of a loop over the whole inventory.
        if len(self._last_seen) < len(self._depot.items):
            for epc in self._depot.items:
                self._last_seen.setdefault(epc, (now_ns, ""))

    def _transition(self, kind: TransitionKind, epc: str, now_ns: int,
                    text: str) -> Transition:
        item = self._depot.items[epc]
        storehouse = self._depot.storehouses.get(item.storehouse)
        prefix = f"{storehouse.name}: " if storehouse else ""
        return Transition(
            kind=kind, rule="item_unseen", subject=epc, severity=self._severity,
            at_ns=now_ns, storehouse=item.storehouse,
            summary=f"{prefix}{item.name} ({epc}) {text}",
            facts={"epc": epc, "item": item.name, "lot": item.lot, "kind": item.kind.value,
                   "last_sensor": self._last_seen[epc][1]},
        )

    def snapshot(self) -> dict[str, Any]:
        """Last reads, items away on orders, open antenna tracks and warned items."""
        return {
            "last_seen": {e: [t, s] for e, (t, s) in sorted(self._last_seen.items())},
            "away": dict(sorted(self._away.items())),
            "tracks": self._tracker.snapshot(),
            "firing": sorted(self._firing),
        }

    def take_over(self, previous: ItemUnseenRule) -> None:
        """Take the state of the rule this one replaces; the same book (a roster or order
        change) is taken as it is, another one filtered as `restore` does."""
        items = self._depot.items
        if items is previous._depot.items:
            self._last_seen, self._away = previous._last_seen, previous._away
            self._firing = previous._firing
        else:
            self._last_seen = {e: v for e, v in previous._last_seen.items() if e in items}
            self._away = {e: o for e, o in previous._away.items() if e in items}
            self._firing = {e for e in previous._firing if e in items}
        self._tracker.restore(previous._tracker.snapshot())

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back the state: silence across a restart still counts; unknown items dropped."""
        items = self._depot.items
        self._last_seen = {e: (int(v[0]), str(v[1]))
                           for e, v in state.get("last_seen", {}).items() if e in items}
        self._away = {e: str(o) for e, o in state.get("away", {}).items() if e in items}
        self._tracker.restore(state.get("tracks", []))
        self._firing = {e for e in state.get("firing", []) if e in items}
