"""The spool's disk quota: a warning at 80 %, an alarm when full (climate points then shed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.depot import Depot, SensorKind

__all__ = ["SpoolQuotaRule", "SpoolQuotaRuleConfig"]


class SpoolQuotaRuleConfig(RuleConfigBase):
    """Spool fill above `warning_pct` (warning) and at `full_pct` (alarm)."""

    type: Literal["spool_quota"] = "spool_quota"
    fixed_severities: ClassVar[dict[str, Severity]] = {"spool_quota": Severity.WARNING,
                                                       "spool_full": Severity.ALARM}
    warning_pct: float = Field(default=80.0, gt=0, le=100)
    full_pct: float = Field(default=100.0, gt=0, le=100)
    hysteresis_pct: float = Field(default=5.0, ge=0)

    def build(self, depot: Depot) -> SpoolQuotaRule:
        """The rule for the gateway's spool."""
        return SpoolQuotaRule(self, depot)


class SpoolQuotaRule:
    """Follows `gateway.spool` readings with `fill_pct`, which the daemon reports every few s."""

    # No depot sensor: it judges the gateway's own readings, which every rule is handed.
    kinds: ClassVar[frozenset[SensorKind]] = frozenset()

    def __init__(self, config: SpoolQuotaRuleConfig, depot: Depot) -> None:
        self._site = depot.site
        self._levels = (("spool_quota", config.warning_pct, Severity.WARNING),
                        ("spool_full", config.full_pct, Severity.ALARM))
        self._hysteresis = config.hysteresis_pct
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Compare the fill level with both limits."""
        fill = reading.values.get("fill_pct")
        if reading.sensor != "gateway.spool" or not isinstance(fill, float):
            return []
        out: list[Outcome] = []
        for rule, limit, severity in self._levels:
            if fill >= limit and rule not in self._firing:
                self._firing.add(rule)
                text = ("full: climate and health points are being shed"
                        if rule == "spool_full" else f"above {limit:g} % of its quota")
                out.append(self._transition(TransitionKind.FIRING, rule, severity, now_ns,
                                            f"{text} ({fill:.0f} %)", fill))
            elif fill < limit - self._hysteresis and rule in self._firing:
                self._firing.discard(rule)
                out.append(self._transition(TransitionKind.RESOLVED, rule, severity, now_ns,
                                            f"back to {fill:.0f} %", fill))
        return out

    def _transition(self, kind: TransitionKind, rule: str, severity: Severity, now_ns: int,
                    text: str, fill: float) -> Transition:
        return Transition(kind=kind, rule=rule, subject="spool", severity=severity,
                          at_ns=now_ns, summary=f"gateway {self._site}: spool {text}",
                          facts={"fill_pct": round(fill, 1)})

    def tick(self, now_ns: int) -> list[Outcome]:
        """The level changes only with readings."""
        return []

    def snapshot(self) -> dict[str, Any]:
        """Levels reported."""
        return {"firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back levels reported."""
        self._firing = set(state.get("firing", []))
