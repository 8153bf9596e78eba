"""The gateway's own health: mains and UPS battery, clock synchronisation, disk free, CPU
temperature (PSSM.md "The gateway itself"), judged on its `gateway.<component>` readings."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import FieldValue, Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, WakeAt, format_duration, no_wake
from rules.depot import Depot, SensorKind

__all__ = ["GatewayHealthRule", "GatewayHealthRuleConfig"]

_NS = 1_000_000_000
SeverityName = Literal["warning", "alarm", "critical"]
# A condition of one component's values: its text while it holds, None while it does not.
_Test = Callable[[Mapping[str, FieldValue]], str | None]


class GatewayHealthRuleConfig(RuleConfigBase):
    """Limits for the gateway's UPS, clock, disk and CPU temperature readings."""

    type: Literal["gateway_health"] = "gateway_health"
    # On battery this long: "mains lost" (PSSM.md: reported within 5 min; a blip pages nobody).
    mains_lost_after_s: float = Field(default=60.0, ge=0, le=300)
    mains_lost_severity: SeverityName = "warning"
    # The UPS's own low-battery flag, or its charge under this: an alarm at once.
    battery_low_pct: float = Field(default=20.0, ge=0, le=100)
    battery_low_severity: SeverityName = "alarm"
    # Not synchronised this long (boot takes a while to sync) or off by more than 1 s: fault.
    clock_unsynchronised_after_s: float = Field(default=300.0, ge=0)
    clock_max_offset_s: float = Field(default=1.0, gt=0)
    clock_severity: SeverityName = "warning"
    disk_min_free_pct: float = Field(default=10.0, ge=0, le=100)
    disk_severity: SeverityName = "warning"
    cpu_max_c: float = Field(default=80.0)
    cpu_severity: SeverityName = "warning"
    # A level clears this far on the good side of its limit.
    hysteresis_pct: float = Field(default=2.0, ge=0)
    hysteresis_c: float = Field(default=5.0, ge=0)

    def alarm_severities(self) -> dict[str, Severity]:
        """Each condition's own severity, by the rule name it raises."""
        return {check.rule: check.severity for check in _checks(self)}

    def build(self, depot: Depot) -> GatewayHealthRule:
        """The rule for the gateway's health readings."""
        return GatewayHealthRule(self, depot)


@dataclass(frozen=True, slots=True)
class _Check:
    rule: str
    component: str
    severity: Severity
    after_ns: int
    holds: _Test
    # Still holding by the hysteresis once raised (None: the same test).
    stays: _Test | None = None


def _number(values: Mapping[str, FieldValue], name: str) -> float | None:
    value = values.get(name)
    return value if isinstance(value, float) else None


def _below(name: str, limit: float, text: str) -> _Test:
    def test(values: Mapping[str, FieldValue]) -> str | None:
        value = _number(values, name)
        return text.format(value) if value is not None and value < limit else None
    return test


def _above(name: str, limit: float, text: str) -> _Test:
    def test(values: Mapping[str, FieldValue]) -> str | None:
        value = _number(values, name)
        return text.format(value) if value is not None and value > limit else None
    return test


def _checks(config: GatewayHealthRuleConfig) -> tuple[_Check, ...]:
    def on_battery(values: Mapping[str, FieldValue]) -> str | None:
        return "mains lost: UPS on battery" if values.get("on_battery") is True else None

    def battery_low(values: Mapping[str, FieldValue]) -> str | None:
        charge = _number(values, "charge_pct")
        if values.get("battery_low") is True:
            return "UPS battery low" + (f" ({charge:.0f} %)" if charge is not None else "")
        if charge is not None and charge < config.battery_low_pct and \
                values.get("on_battery") is True:
            return f"UPS battery at {charge:.0f} %"
        return None

    def unsynchronised(values: Mapping[str, FieldValue]) -> str | None:
        return "clock not synchronised" if values.get("synchronised") is False else None

    def offset(limit: float) -> _Test:
        def test(values: Mapping[str, FieldValue]) -> str | None:
            value = _number(values, "offset_s")
            return (f"clock off by {value:+.3f} s"
                    if value is not None and abs(value) > limit else None)
        return test

    hyst_pct, hyst_c = config.hysteresis_pct, config.hysteresis_c
    disk, cpu = config.disk_min_free_pct, config.cpu_max_c
    return (
        _Check("mains_lost", "ups", Severity(config.mains_lost_severity),
               int(config.mains_lost_after_s * _NS), on_battery),
        _Check("ups_battery_low", "ups", Severity(config.battery_low_severity), 0, battery_low),
        _Check("clock_unsynchronised", "clock", Severity(config.clock_severity),
               int(config.clock_unsynchronised_after_s * _NS), unsynchronised),
        _Check("clock_offset", "clock", Severity(config.clock_severity), 0,
               offset(config.clock_max_offset_s), offset(config.clock_max_offset_s * 0.5)),
        _Check("disk_low", "disk", Severity(config.disk_severity), 0,
               _below("free_pct", disk, "state disk {:.1f} % free"),
               _below("free_pct", disk + hyst_pct, "state disk {:.1f} % free")),
        _Check("cpu_hot", "cpu", Severity(config.cpu_severity), 0,
               _above("temperature_c", cpu, "CPU at {:.0f} °C"),
               _above("temperature_c", cpu - hyst_c, "CPU at {:.0f} °C")),
    )


class GatewayHealthRule:
    """Follows `gateway.ups`, `gateway.clock`, `gateway.disk` and `gateway.cpu` readings."""

    # No depot sensor: it judges the gateway's own readings, which every rule is handed.
    kinds: ClassVar[frozenset[SensorKind]] = frozenset()

    def __init__(self, config: GatewayHealthRuleConfig, depot: Depot) -> None:
        self._site = depot.site
        self._checks = _checks(config)
        self._by_sensor = {f"gateway.{c.component}": tuple(k for k in self._checks
                                                          if k.component == c.component)
                           for c in self._checks}
        # Rule -> since when its condition holds, and its text then; rules raised.
        self._since: dict[str, tuple[int, str]] = {}
        self._firing: set[str] = set()
        self.wake_at: WakeAt = no_wake

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Judge one health reading against its component's limits."""
        checks = self._by_sensor.get(reading.sensor)
        if checks is None:
            return []
        out: list[Outcome] = []
        for check in checks:
            test = check.stays if check.rule in self._firing and check.stays else check.holds
            text = test(reading.values)
            if text is None:
                since = self._since.pop(check.rule, None)
                if check.rule in self._firing:
                    self._firing.discard(check.rule)
                    held = format_duration((now_ns - since[0]) / _NS) if since else "a while"
                    out.append(self._transition(check, TransitionKind.RESOLVED, now_ns,
                                                f"{check.rule.replace('_', ' ')} over "
                                                f"after {held}"))
                continue
            since_ns = self._since.get(check.rule, (now_ns, text))[0]
            self._since[check.rule] = (since_ns, text)
            out.extend(self._due(check, now_ns))
        return out

    def tick(self, now_ns: int) -> list[Outcome]:
        """Raise conditions that have now held past their delay."""
        return [o for check in self._checks if check.rule in self._since
                for o in self._due(check, now_ns)]

    def _due(self, check: _Check, now_ns: int) -> list[Outcome]:
        since_ns, text = self._since[check.rule]
        if check.rule in self._firing:
            return []
        if now_ns - since_ns < check.after_ns:
            self.wake_at(since_ns + check.after_ns)
            return []
        self._firing.add(check.rule)
        if check.after_ns:
            text = f"{text} for {format_duration((now_ns - since_ns) / _NS)}"
        return [self._transition(check, TransitionKind.FIRING, now_ns, text)]

    def _transition(self, check: _Check, kind: TransitionKind, now_ns: int,
                    text: str) -> Transition:
        return Transition(kind=kind, rule=check.rule, subject=check.component,
                          severity=check.severity, at_ns=now_ns,
                          summary=f"gateway {self._site}: {text}",
                          facts={"component": check.component})

    def snapshot(self) -> dict[str, Any]:
        """Conditions holding (since when, their text) and those raised."""
        return {"since": {r: [at, text] for r, (at, text) in self._since.items()},
                "firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back conditions holding and raised."""
        known = {c.rule for c in self._checks}
        self._since = {r: (int(at), str(text))
                       for r, (at, text) in state.get("since", {}).items() if r in known}
        self._firing = {r for r in state.get("firing", []) if r in known}
