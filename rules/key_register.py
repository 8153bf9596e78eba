"""The key register: storehouse and vault keys issued to and returned by roster people.

A key cabinet's event (`epc` of the key, `badge`, `action` taken/returned) becomes a `key` fact
naming the person (never the badge), which the records desk writes to the register; the rule
judges the keys out on the book (`Depot.keys_out`): a key past its due time is a warning, a
vault key (a storehouse with a two-person door) still out at `overnight_at` local time an alarm
(issue 19; PSSM.md key control). Both resolve when the key is returned.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import FieldValue, Reading, Severity, Transition, TransitionKind
from rules.base import Fact, Outcome, RuleConfigBase
from rules.depot import Depot, KeyIssue, SensorKind

__all__ = ["KeyRegisterRule", "KeyRegisterRuleConfig"]

_NS = 1_000_000_000
_ACTIONS = frozenset({"taken", "returned"})


class KeyRegisterRuleConfig(RuleConfigBase):
    """Key cabinet events to the register; overdue keys warn, vault keys out overnight alarm."""

    type: Literal["key_register"] = "key_register"
    # A key taken from a cabinet is due back after this (one taken at the desk: its due time).
    cabinet_due_s: float = Field(default=43200.0, gt=0)
    overnight_at: dt.time = Field(default=dt.time(22, 0))
    overdue_severity: Literal["warning", "alarm", "critical"] = "warning"
    overnight_severity: Literal["warning", "alarm", "critical"] = "alarm"

    def alarm_severities(self) -> dict[str, Severity]:
        """The two conditions' rule names and their severities."""
        return {"key_overdue": Severity(self.overdue_severity),
                "key_overnight": Severity(self.overnight_severity)}

    def build(self, depot: Depot) -> KeyRegisterRule:
        """The rule for the depot's keys and key cabinets."""
        return KeyRegisterRule(self, depot)


class KeyRegisterRule:
    """Cabinet events in, overdue and overnight keys out."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.KEY_CABINET})

    def __init__(self, config: KeyRegisterRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._config = config
        self._vaults = frozenset(d.storehouse for d in depot.doors.values() if d.two_person)
        self._firing: set[str] = set()  # "overdue.<epc>", "overnight.<epc>"

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """A cabinet's event as a `key` fact (the desk puts it on the register)."""
        sensor = self._depot.sensors.get(reading.sensor)
        if sensor is None or sensor.kind is not SensorKind.KEY_CABINET:
            return []
        epc, badge, action = (reading.values.get(k) for k in ("epc", "badge", "action"))
        if not isinstance(epc, str) or not isinstance(badge, str) or action not in _ACTIONS:
            return []
        person = self._depot.roster.get(badge)
        item = self._depot.items.get(epc)
        fields: dict[str, FieldValue] = {
            "epc": epc, "item": item.name if item else "", "cabinet": sensor.id,
            "person": person.name if person else "",
            # Unknown badges by their keyed hash only (never the number).
            "badge_hash": "" if person else self._depot.badge_hash(badge),
            "due_in_s": self._config.cabinet_due_s}
        return [Fact("key", {"storehouse": sensor.storehouse, "action": str(action)}, fields,
                     reading.at_ns)]

    def tick(self, now_ns: int) -> list[Outcome]:
        """Raise and resolve the overdue and overnight conditions of the keys out."""
        out: list[Outcome] = []
        keys = self._depot.keys_out
        for name in sorted(self._firing):
            condition, _, epc = name.partition(".")
            if epc not in keys:
                self._firing.discard(name)
                out.append(self._transition(TransitionKind.RESOLVED, condition, epc, None,
                                            now_ns))
        for epc, issue in keys.items():
            if now_ns > issue.due_ns and f"overdue.{epc}" not in self._firing:
                self._firing.add(f"overdue.{epc}")
                out.append(self._transition(TransitionKind.FIRING, "overdue", epc, issue,
                                            now_ns))
            if (f"overnight.{epc}" not in self._firing and self._is_vault_key(epc)
                    and issue.issued_ns < self._last_overnight(epc, now_ns)):
                self._firing.add(f"overnight.{epc}")
                out.append(self._transition(TransitionKind.FIRING, "overnight", epc, issue,
                                            now_ns))
        return out

    def _is_vault_key(self, epc: str) -> bool:
        item = self._depot.items.get(epc)
        return item is not None and item.storehouse in self._vaults

    def _last_overnight(self, epc: str, now_ns: int) -> int:
        """The latest `overnight_at` in the key's storehouse's zone at or before `now_ns`."""
        item = self._depot.items[epc]
        zone = self._depot.storehouses[item.storehouse].zone
        local = dt.datetime.fromtimestamp(now_ns / _NS, tz=zone)
        moment = dt.datetime.combine(local.date(), self._config.overnight_at, tzinfo=zone)
        if moment > local:
            moment -= dt.timedelta(days=1)
        return int(moment.timestamp() * _NS)

    def _transition(self, kind: TransitionKind, condition: str, epc: str,
                    issue: KeyIssue | None, now_ns: int) -> Transition:
        item = self._depot.items.get(epc)
        storehouse = item.storehouse if item else ""
        store = self._depot.storehouses.get(storehouse)
        what = f"{item.name} ({epc})" if item else f"key {epc}"
        config = self._config
        severity = Severity(config.overdue_severity if condition == "overdue"
                            else config.overnight_severity)
        if issue is None:
            summary = f"{what} returned"
        elif condition == "overdue":
            summary = f"{what} held by {issue.person}, overdue since the due time"
        else:
            summary = f"vault key {what} held by {issue.person} out overnight"
        return Transition(
            kind=kind, rule=f"key_{condition}", subject=epc, severity=severity, at_ns=now_ns,
            storehouse=storehouse, summary=f"{store.name}: {summary}" if store else summary,
            facts={"epc": epc, "person": issue.person if issue else "",
                   "due_ns": float(issue.due_ns) if issue else 0.0})

    def snapshot(self) -> dict[str, Any]:
        """The conditions raised."""
        return {"firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back the conditions raised (resolved at the next tick if the key is back)."""
        self._firing = {str(n) for n in state.get("firing", [])}
