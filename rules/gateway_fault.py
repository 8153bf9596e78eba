"""Faults the gateway finds in itself and its inputs: storage degraded, clock stepped, a
device's clock skewed, a sensor reporting impossible values (EN 50131-1 fault signals)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, WakeAt, no_wake
from rules.depot import Depot, SensorKind

__all__ = ["FAULT_SENSOR", "GatewayFaultRule", "GatewayFaultRuleConfig", "fault_values"]

_NS = 1_000_000_000
# The daemon reports faults as readings of this pseudo-sensor (see `fault_values`).
FAULT_SENSOR = "gateway.fault"


def fault_values(fault: str, subject: str, active: bool, summary: str) -> dict[str, str | bool]:
    """A fault report as reading values: which fault, about what, on or off, and its text."""
    return {"fault": fault, "subject": subject, "active": active, "summary": summary}


class GatewayFaultRuleConfig(RuleConfigBase):
    """Each fault the gateway reports is an alert until it is reported over."""

    type: Literal["gateway_fault"] = "gateway_fault"
    severity: Literal["warning", "alarm", "critical"] = "warning"
    # Faults that are events, not states (a clock step): resolved after this long without
    # another report of the same fault.
    event_hold_s: float = Field(default=600.0, gt=0)
    events: list[str] = Field(default_factory=lambda: ["clock_stepped", "mqtt_session_reset",
                                                       "mqtt_flapping", "file_damaged"])

    def build(self, depot: Depot) -> GatewayFaultRule:
        """The rule for the gateway's fault reports."""
        return GatewayFaultRule(self, depot)


class GatewayFaultRule:
    """Follows `gateway.fault` readings; one alert per fault and subject."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset()

    def __init__(self, config: GatewayFaultRuleConfig, depot: Depot) -> None:
        self._site = depot.site
        self._severity = Severity(config.severity)
        self._hold_ns = int(config.event_hold_s * _NS)
        self._events = frozenset(config.events)
        # (fault, subject) -> when an event fault last came (0 for a state fault).
        self._firing: dict[tuple[str, str], int] = {}
        self.wake_at: WakeAt = no_wake

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Raise or clear the reported fault."""
        if reading.sensor != FAULT_SENSOR:
            return []
        values = reading.values
        fault, subject, active = values.get("fault"), values.get("subject"), values.get("active")
        if not isinstance(fault, str) or not isinstance(subject, str):
            return []
        summary = str(values.get("summary", fault))
        key = (fault, subject)
        if active is True:
            event = fault in self._events
            if event:
                self.wake_at(now_ns + self._hold_ns)
            if key in self._firing:
                if event:
                    self._firing[key] = now_ns
                return []
            self._firing[key] = now_ns if event else 0
            return [self._transition(TransitionKind.FIRING, key, now_ns, summary)]
        if active is False and key in self._firing:
            del self._firing[key]
            return [self._transition(TransitionKind.RESOLVED, key, now_ns, summary)]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Resolve event faults that were not reported again within the hold time."""
        out: list[Outcome] = []
        for key, at in list(self._firing.items()):
            if at and now_ns - at >= self._hold_ns:
                del self._firing[key]
                out.append(self._transition(TransitionKind.RESOLVED, key, now_ns,
                                            f"no {key[0].replace('_', ' ')} since"))
        return out

    def _transition(self, kind: TransitionKind, key: tuple[str, str], now_ns: int,
                    summary: str) -> Transition:
        fault, subject = key
        return Transition(kind=kind, rule=fault, subject=subject, severity=self._severity,
                          at_ns=now_ns, summary=f"gateway {self._site}: {summary}",
                          facts={"fault": fault, "subject": subject})

    def snapshot(self) -> dict[str, Any]:
        """Faults firing, with when event faults last came."""
        return {"firing": [[f, s, at] for (f, s), at in sorted(self._firing.items())]}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back faults firing."""
        self._firing = {(str(f), str(s)): int(at) for f, s, at in state.get("firing", [])}
