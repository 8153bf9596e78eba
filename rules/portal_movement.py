"""Tagged items through RFID portals: direction, records, and exits without a movement order.

PSSM.md movement rows: a tagged item passing an exit portal with no open movement order for it is
an alarm (internal-transfer control, CSP7; issue-voucher practice); direction is the order in
which the inner and outer antenna zones read the tag, within 10 s.

A passage is an event, not a state: nothing observable ends it. So the alert resolves on its own
`clear_after_s` (15 min) after the tag's last unauthorised exit; a later exit of the same tag in
that time extends it. The resolve only closes the page — the on-site check and the entry in the
log still have to be made by the duty officer (PSSM.md response row).

A flood of unknown tags (a box of stray tags carried out, a reader fed junk) must not bury the
alarm that matters under one page per tag (issue 25): past `unknown_tag_cap` unknown-tag alarms
firing at one portal, the next unknown tags there fold into one alarm per portal,
`portal_movement.unknown_tags.<portal>`, which names the first tag and, when it closes, how
many it took in and which (the first 50). Every passage is still a `portal` record.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import FieldValue, Reading, Severity, Transition, TransitionKind
from rules.base import Fact, Outcome, RuleConfigBase, format_duration
from rules.depot import Depot, MovementOrder, SensorKind
from rules.portal_tracker import Passage, PortalTracker, covering_order

__all__ = ["PortalMovementRule", "PortalMovementRuleConfig"]

_NS = 1_000_000_000


class PortalMovementRuleConfig(RuleConfigBase):
    """Portal passages: a `portal` record each, an alarm when an item leaves without an order."""

    type: Literal["portal_movement"] = "portal_movement"
    # Inner then outer antenna within this window is "out", outer then inner is "in".
    direction_window_s: float = Field(default=10.0, gt=0)
    # A registered item leaving with no movement order covering it: diversion until proven not.
    unordered_severity: Literal["warning", "alarm", "critical"] = "critical"
    # A tag not in the register leaving: maybe an unregistered item, maybe a stray tag.
    unknown_tag_severity: Literal["warning", "alarm", "critical"] = "alarm"
    # The exit is an event: the alert closes itself this long after the tag's last exit.
    clear_after_s: float = Field(default=900.0, gt=0)
    # Unknown-tag alarms firing at once per portal before further unknown tags there are
    # folded into one "unknown tags" alarm for the portal (0: fold from the first).
    unknown_tag_cap: int = Field(default=5, ge=0)

    def build(self, depot: Depot) -> PortalMovementRule:
        """The rule for every portal of the depot."""
        return PortalMovementRule(self, depot)


@dataclass(slots=True)
class _Exit:
    portal: str
    last_ns: int  # the tag's latest unauthorised exit; the clear time counts from here


@dataclass(slots=True)
class _Flood:
    last_ns: int  # the latest unknown tag folded in; the clear time counts from here
    count: int  # how many passages were folded in
    epcs: list[str]  # the first _FLOOD_LISTED distinct tags


_FLOOD_LISTED = 50


class PortalMovementRule:
    """Records every passage as a `portal` fact; fires when an item goes out unauthorised."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.PORTAL_ANTENNA})

    def __init__(self, config: PortalMovementRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._tracker = PortalTracker(depot, config.direction_window_s)
        self._unordered = Severity(config.unordered_severity)
        self._unknown = Severity(config.unknown_tag_severity)
        self._clear_ns = int(config.clear_after_s * _NS)
        self._firing: dict[str, _Exit] = {}
        self._cap = config.unknown_tag_cap
        self._floods: dict[str, _Flood] = {}  # by portal

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Pair antenna reads into passages; record them and check exits against the orders."""
        passages = self._tracker.read(reading)
        if not passages:  # most reads: the tag is still in the zone it was read in
            return []
        out: list[Outcome] = []
        for passage in passages:
            out.extend(self._passage(passage, now_ns))
        return out

    def tick(self, now_ns: int) -> list[Outcome]:
        """Record lone reads whose window ran out; close exit alerts past their clear time."""
        out: list[Outcome] = []
        for passage in self._tracker.expire(now_ns):
            out.extend(self._passage(passage, now_ns))
        for epc in sorted(self._firing):
            event = self._firing[epc]
            if now_ns - event.last_ns >= self._clear_ns:
                del self._firing[epc]
                out.append(self._transition(
                    TransitionKind.RESOLVED, epc, event.portal, now_ns,
                    f"no further exit for {format_duration(self._clear_ns / _NS)}, alert closed "
                    "automatically; log the on-site check"))
        for portal_id in sorted(self._floods):
            flood = self._floods[portal_id]
            if now_ns - flood.last_ns >= self._clear_ns:
                del self._floods[portal_id]
                out.append(self._flood_transition(TransitionKind.RESOLVED, portal_id, flood,
                                                  now_ns))
        return out

    def _passage(self, passage: Passage, now_ns: int) -> list[Outcome]:
        portal = self._depot.portals[passage.portal]
        item = self._depot.items.get(passage.epc)
        order = covering_order(self._depot, passage.epc, passage.portal, passage.at_ns)
        fields: dict[str, FieldValue] = {
            "epc": passage.epc, "item": item.name if item else "",
            "order": order.id if order else "",
        }
        if passage.rssi_dbm is not None:
            fields["rssi_dbm"] = passage.rssi_dbm
        if passage.direction == "unknown":
            fields["antenna"] = passage.antenna  # the one antenna that read it
        out: list[Outcome] = [Fact(
            measurement="portal",
            tags={"portal": portal.id, "direction": passage.direction,
                  "storehouse": portal.storehouse},
            fields=fields, at_ns=passage.at_ns,
        )]
        if passage.direction != "out" or order is not None:
            return out
        if passage.epc in self._firing:
            self._firing[passage.epc].last_ns = passage.at_ns
            return out
        if item is None and self._flooded(portal.id):
            out.extend(self._fold(passage, now_ns))
            return out
        self._firing[passage.epc] = _Exit(portal.id, passage.at_ns)
        text = f"left through portal {portal.id}"
        if item is not None:
            text += f" without a movement order{self._order_hint(passage)}"
        out.append(self._transition(TransitionKind.FIRING, passage.epc, portal.id, now_ns, text))
        return out

    def _flooded(self, portal_id: str) -> bool:
        """Whether this portal already has its cap of unknown-tag alarms (or a flood alarm)."""
        if portal_id in self._floods:
            return True
        unknown = sum(1 for epc, e in self._firing.items()
                      if e.portal == portal_id and epc not in self._depot.items)
        return unknown >= self._cap

    def _fold(self, passage: Passage, now_ns: int) -> list[Outcome]:
        flood = self._floods.get(passage.portal)
        if flood is not None:
            flood.last_ns, flood.count = passage.at_ns, flood.count + 1
            if passage.epc not in flood.epcs and len(flood.epcs) < _FLOOD_LISTED:
                flood.epcs.append(passage.epc)
            return []
        flood = self._floods[passage.portal] = _Flood(passage.at_ns, 1, [passage.epc])
        return [self._flood_transition(TransitionKind.FIRING, passage.portal, flood, now_ns)]

    def _flood_transition(self, kind: TransitionKind, portal_id: str, flood: _Flood,
                          now_ns: int) -> Transition:
        portal = self._depot.portals[portal_id]
        storehouse = self._depot.storehouses[portal.storehouse]
        listed = ", ".join(flood.epcs) + (" ..." if flood.count > len(flood.epcs) else "")
        if kind is TransitionKind.FIRING:
            text = (f"portal {portal_id}: more than {self._cap} unknown tags leaving, "
                    f"from {flood.epcs[0]} on counted in this alarm (not in the item register)")
        else:
            text = (f"portal {portal_id}: {flood.count} unknown tags counted in this alarm "
                    f"({listed}); none for {format_duration(self._clear_ns / _NS)}, alert "
                    "closed automatically; log the on-site check")
        return Transition(
            kind=kind, rule="portal_movement", subject=f"unknown_tags.{portal_id}",
            severity=self._unknown, at_ns=now_ns, storehouse=storehouse.id,
            summary=f"{storehouse.name}: {text}",
            facts={"portal": portal_id, "direction": "out", "unknown_tags": flood.count,
                   "epcs": listed},
        )

    def _order_hint(self, passage: Passage) -> str:
        """The nearest order naming the item, so the officer sees a wrong time or portal."""
        orders = [o for o in self._depot.movement_orders if passage.epc in o.epcs]
        if not orders:
            return ""
        at = passage.at_ns

        def distance(o: MovementOrder) -> tuple[int, str]:
            return (max(o.valid_from_ns - at, at - o.valid_until_ns, 0), o.id)

        order = min(orders, key=distance)
        if order.portal != passage.portal:
            return f" (order {order.id} is for portal {order.portal})"
        zone = self._depot.storehouses[self._depot.portals[passage.portal].storehouse].zone
        start = dt.datetime.fromtimestamp(order.valid_from_ns / _NS, tz=zone)
        end = dt.datetime.fromtimestamp(order.valid_until_ns / _NS, tz=zone)
        until = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M}"
        return f" (order {order.id} is valid {start:%Y-%m-%d %H:%M}-{until})"

    def _transition(self, kind: TransitionKind, epc: str, portal_id: str, now_ns: int,
                    text: str) -> Transition:
        portal = self._depot.portals[portal_id]
        storehouse = self._depot.storehouses[portal.storehouse]
        item = self._depot.items.get(epc)
        what = f"{item.name} ({epc})" if item else f"unknown tag {epc} (not in the item register)"
        return Transition(
            kind=kind, rule="portal_movement", subject=epc,
            severity=self._unordered if item else self._unknown,
            at_ns=now_ns, storehouse=storehouse.id,
            summary=f"{storehouse.name}: {what} {text}",
            facts={"epc": epc, "item": item.name if item else "", "lot": item.lot if item else "",
                   "order": "", "portal": portal_id, "direction": "out"},
        )

    def snapshot(self) -> dict[str, Any]:
        """Open antenna tracks and firing exit alerts."""
        return {"tracks": self._tracker.snapshot(),
                "firing": {epc: [e.portal, e.last_ns] for epc, e in sorted(self._firing.items())},
                "floods": {p: [f.last_ns, f.count, list(f.epcs)]
                           for p, f in sorted(self._floods.items())}}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back tracks and firing exit alerts; unknown portals are dropped."""
        self._tracker.restore(state.get("tracks", []))
        self._firing = {}
        for epc, value in state.get("firing", {}).items():
            if isinstance(value, list) and len(value) == 2 and value[0] in self._depot.portals:
                self._firing[str(epc)] = _Exit(str(value[0]), int(value[1]))
        self._floods = {}
        for portal_id, value in state.get("floods", {}).items():
            if isinstance(value, list) and len(value) == 3 and portal_id in self._depot.portals:
                self._floods[str(portal_id)] = _Flood(int(value[0]), int(value[1]),
                                                      [str(e) for e in value[2]][:_FLOOD_LISTED])
