"""Reads of tagged items judged against their place in the lifecycle (issue 27).

An item `destroyed` or `transferred` has left the book for good: any portal or inventory read of
its tag again is an alarm (a certificate that lies, a tag cloned, an item diverted back). A `lost`
item read again is a warning: perhaps found, to be checked and put back on the book. A loss
report made by the records desk (an item marked lost, or missing at a count) comes in as a
request `loss:<epc>` and is an alarm of its own carrying the report's summary, so it reaches the
officers through the notifiers like any alarm.

Reads and reports are events, not states: the alert closes itself `clear_after_s` after the
last read (as a portal exit does); the on-site check still has to be logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, format_duration
from rules.depot import GONE, Depot, ItemState, SensorKind
from rules.portal_tracker import tag_read

__all__ = ["LOSS_PREFIX", "ItemStateRule", "ItemStateRuleConfig"]

_NS = 1_000_000_000
# Sensor name of the records desk's loss report: `loss:<epc>`.
LOSS_PREFIX = "loss:"


class ItemStateRuleConfig(RuleConfigBase):
    """Alarms for reads of items destroyed or transferred, warnings for lost ones read, and
    an alarm per loss report."""

    type: Literal["item_state"] = "item_state"
    gone_severity: Literal["warning", "alarm", "critical"] = "critical"
    lost_read_severity: Literal["warning", "alarm", "critical"] = "warning"
    loss_severity: Literal["warning", "alarm", "critical"] = "alarm"
    clear_after_s: float = Field(default=900.0, gt=0)

    def build(self, depot: Depot) -> ItemStateRule:
        """The rule for every item on the book."""
        return ItemStateRule(self, depot)


class ItemStateRule:
    """Keeps the open read and loss alerts, each with its last event time."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.PORTAL_ANTENNA,
                                                        SensorKind.INVENTORY_READER})

    def __init__(self, config: ItemStateRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._config = config
        self._clear_ns = int(config.clear_after_s * _NS)
        self._where = {s.id: s.storehouse for s in depot.sensors.values()}
        # subject ("<state>.<epc>" or "lost.<epc>") -> last event time.
        self._firing: dict[str, int] = {}

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """A read of an item no longer on the book, or a loss report."""
        if reading.sensor.startswith(LOSS_PREFIX):
            return self._loss(reading, now_ns)
        tag = tag_read(reading)
        if tag is None:
            return []
        item = self._depot.items.get(tag[0])
        if item is None or (item.state not in GONE and item.state is not ItemState.LOST):
            return []
        subject = f"{item.state.value}.{item.epc}"
        if subject in self._firing:
            self._firing[subject] = reading.at_ns
            return []
        self._firing[subject] = reading.at_ns
        where = self._where.get(reading.sensor, item.storehouse)
        if item.state is ItemState.LOST:
            text, severity = "marked lost, read again: found? check it and put it back on the " \
                             "book", self._config.lost_read_severity
        else:
            text, severity = (f"{item.state.value} on the book, read again: it should not be "
                              "here"), self._config.gone_severity
        return [self._transition(TransitionKind.FIRING, subject, where, Severity(severity),
                                 f"{item.name} ({item.epc}) {text} (by {reading.sensor})",
                                 now_ns, {"epc": item.epc, "state": item.state.value,
                                          "sensor": reading.sensor})]

    def _loss(self, reading: Reading, now_ns: int) -> list[Outcome]:
        epc = reading.sensor[len(LOSS_PREFIX):]
        item = self._depot.items.get(epc)
        if item is None:
            return []
        subject = f"lost.{epc}"
        known = subject in self._firing
        self._firing[subject] = now_ns
        if known:
            return []
        summary = str(reading.values.get("summary", "")) or f"{item.name} ({epc}) lost"
        return [self._transition(TransitionKind.FIRING, subject, item.storehouse,
                                 Severity(self._config.loss_severity), summary, now_ns,
                                 {"epc": epc, "report": str(reading.values.get("report", "")),
                                  "cause": str(reading.values.get("cause", ""))})]

    def tick(self, now_ns: int) -> list[Outcome]:
        """Close alerts whose last event is older than the clear time."""
        out: list[Outcome] = []
        for subject in sorted(self._firing):
            if now_ns - self._firing[subject] < self._clear_ns:
                continue
            del self._firing[subject]
            epc = subject.partition(".")[2]
            item = self._depot.items.get(epc)
            out.append(self._transition(
                TransitionKind.RESOLVED, subject, item.storehouse if item else "",
                Severity(self._config.gone_severity),
                f"{item.name if item else epc} ({epc}): nothing further for "
                f"{format_duration(self._clear_ns / _NS)}, alert closed automatically; log the "
                "on-site check", now_ns, {"epc": epc}))
        return out

    def _transition(self, kind: TransitionKind, subject: str, storehouse: str,
                    severity: Severity, text: str, now_ns: int,
                    facts: Mapping[str, str]) -> Transition:
        place = self._depot.storehouses.get(storehouse)
        return Transition(kind=kind, rule="item_state", subject=subject, severity=severity,
                          at_ns=now_ns, storehouse=storehouse,
                          summary=f"{place.name}: {text}" if place else text, facts=dict(facts))

    def snapshot(self) -> dict[str, Any]:
        """Open alerts with their last event time."""
        return {"firing": dict(sorted(self._firing.items()))}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back the open alerts."""
        self._firing = {str(k): int(v) for k, v in state.get("firing", {}).items()}
