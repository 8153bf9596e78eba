"""The gateway's own inputs (broker connection, serial ports) lost: an alarm (fail secure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, WakeAt, format_duration, no_wake
from rules.depot import Depot, SensorKind

__all__ = ["GATEWAY_PREFIX", "NOT_SENSOR_INPUTS", "InputLostRule", "InputLostRuleConfig"]

_NS = 1_000_000_000
# Readings about the gateway itself come from sensor ids `gateway.<component>`, values {"up"}.
GATEWAY_PREFIX = "gateway."
# Components watched like inputs that no sensor reports through (the officers' HTTP API).
NOT_SENSOR_INPUTS = frozenset({"api"})


class InputLostRuleConfig(RuleConfigBase):
    """An input of the gateway down for longer than `after_s`."""

    type: Literal["input_lost"] = "input_lost"
    fixed_severities: ClassVar[dict[str, Severity]] = {"input_lost": Severity.ALARM}
    # EN 50131-1 §8.9.1: faults shorter than 10 s are not processed.
    after_s: float = Field(default=10.0, ge=0)

    def build(self, depot: Depot) -> InputLostRule:
        """The rule for the gateway's inputs."""
        return InputLostRule(self, depot)


class InputLostRule:
    """Fires when a gateway input stays down; every sensor behind it is then blind."""

    # No depot sensor: it judges the gateway's own readings, which every rule is handed.
    kinds: ClassVar[frozenset[SensorKind]] = frozenset()

    def __init__(self, config: InputLostRuleConfig, depot: Depot) -> None:
        self._site = depot.site
        self._after_ns = int(config.after_s * _NS)
        self._down_since: dict[str, int] = {}
        self._firing: set[str] = set()
        self.wake_at: WakeAt = no_wake

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow an input's up/down state."""
        if not reading.sensor.startswith(GATEWAY_PREFIX):
            return []
        up = reading.values.get("up")
        component = reading.sensor.removeprefix(GATEWAY_PREFIX)
        if up is False:
            self._down_since.setdefault(component, reading.at_ns)
            return self._check(component, now_ns)
        if up is True:
            since = self._down_since.pop(component, None)
            if component in self._firing:
                self._firing.discard(component)
                lost = format_duration((now_ns - (since or now_ns)) / _NS)
                return [self._transition(TransitionKind.RESOLVED, component, now_ns,
                                         f"back after {lost}")]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Fire for inputs down past the limit."""
        out: list[Outcome] = []
        for component in list(self._down_since):
            out.extend(self._check(component, now_ns))
        return out

    def _check(self, component: str, now_ns: int) -> list[Outcome]:
        since = self._down_since.get(component)
        if since is None or component in self._firing:
            return []
        if now_ns - since < self._after_ns:
            self.wake_at(since + self._after_ns)
            return []
        self._firing.add(component)
        return [self._transition(TransitionKind.FIRING, component, now_ns,
                                 f"lost for {format_duration((now_ns - since) / _NS)}")]

    def _transition(self, kind: TransitionKind, component: str, now_ns: int,
                    text: str) -> Transition:
        return Transition(
            kind=kind, rule="input_lost", subject=component, severity=Severity.ALARM,
            at_ns=now_ns, summary=f"gateway {self._site}: input {component} {text}",
            facts={"component": component},
        )

    def snapshot(self) -> dict[str, Any]:
        """Down-since times and inputs reported lost."""
        return {"down_since": dict(self._down_since), "firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back down-since times and lost inputs."""
        self._down_since = {c: int(t) for c, t in state.get("down_since", {}).items()}
        self._firing = set(state.get("firing", []))
