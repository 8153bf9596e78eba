"""Storehouse climate: temperature and humidity bands with sustain times and hysteresis."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import FieldValue, Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, format_duration
from rules.depot import ClimateClass, Depot, SensorKind

__all__ = ["ClimateBand", "ClimateRule", "ClimateRuleConfig", "climate_transition", "dew_point_c"]

_NS = 1_000_000_000


# The last dew point worked out, with the two float objects it came from: a climate reading's
# line protocol and the condensation rule both ask about the same two objects.
_last_dew_point: tuple[float, float, float] | None = None


def dew_point_c(temperature_c: float, humidity_pct: float) -> float:
    """Dew point by the Magnus formula (Sonntag 1990 constants, ±0.35 °C from -45 to 60 °C)."""
    global _last_dew_point
    last = _last_dew_point
    if last is not None and last[0] is temperature_c and last[1] is humidity_pct:
        return last[2]
    dew_point = _dew_point_c(temperature_c, humidity_pct)
    _last_dew_point = (temperature_c, humidity_pct, dew_point)
    return dew_point


def _dew_point_c(temperature_c: float, humidity_pct: float) -> float:
    b, c = 17.62, 243.12
    if temperature_c <= -c:
        # Far outside the formula's range (a broken probe; c + T = 0 divides by zero): air
        # that cold holds next to no water, so its dew point is as low as it goes.
        return -273.15
    gamma = math.log(max(humidity_pct, 0.1) / 100.0) + b * temperature_c / (c + temperature_c)
    if gamma >= b:  # humidity far above 100 %: saturated air, dew point at the temperature
        return round(temperature_c, 2)
    return round(c * gamma / (b - gamma), 2)


def climate_transition(depot: Depot, kind: TransitionKind, rule: str, sensor: str,
                       severity: Severity, now_ns: int, text: str,
                       facts: Mapping[str, FieldValue]) -> Transition:
    """An alert about a climate sensor, worded "<storehouse name> (<sensor>): <text>"."""
    storehouse = depot.sensors[sensor].storehouse
    return Transition(
        kind=kind, rule=rule, subject=sensor, severity=severity, at_ns=now_ns,
        storehouse=storehouse, summary=f"{depot.storehouses[storehouse].name} ({sensor}): {text}",
        facts=facts,
    )


class ClimateRuleConfig(RuleConfigBase):
    """Temperature and humidity limits; defaults are the PSSM.md storage-climate rows."""

    type: Literal["climate"] = "climate"
    fixed_severities: ClassVar[dict[str, Severity]] = {
        "temperature_warning": Severity.WARNING, "temperature_alarm": Severity.ALARM,
        "temperature_critical": Severity.CRITICAL, "humidity_warning": Severity.WARNING,
        "humidity_alarm": Severity.ALARM}
    temperature_warning_c: float = 30.0
    temperature_warning_for_s: float = Field(default=1800.0, ge=0)
    # US Army MM0148: above 100 °F for 24 h, cool the store and assess relocation.
    temperature_alarm_c: float = 37.8
    temperature_alarm_for_s: float = Field(default=86400.0, ge=0)
    # Ordnance is designed for 54-71 °C; two consecutive samples keep one bad read from paging.
    temperature_critical_c: float = 50.0
    temperature_critical_samples: int = Field(default=2, ge=1)
    humidity_warning_pct: float = Field(default=65.0, ge=0, le=100)
    humidity_warning_for_s: float = Field(default=21600.0, ge=0)
    humidity_alarm_pct: float = Field(default=70.0, ge=0, le=100)
    propellant_humidity_alarm_pct: float = Field(default=60.0, ge=0, le=100)
    humidity_alarm_for_s: float = Field(default=86400.0, ge=0)
    hysteresis_c: float = Field(default=1.0, ge=0)
    hysteresis_pct: float = Field(default=3.0, ge=0)

    def build(self, depot: Depot) -> ClimateRule:
        """The rule for every climate sensor of the depot."""
        return ClimateRule(self, depot)


@dataclass(frozen=True, slots=True)
class ClimateBand:
    """One limit on one field: exceeded for `for_s` and `samples` in a row, cleared below it."""

    name: str
    field: str
    unit: str
    limit: float
    for_s: float
    samples: int
    hysteresis: float
    severity: Severity


@dataclass(slots=True)
class _BandState:
    above_since_ns: int | None = None
    consecutive: int = 0
    firing: bool = False
    last_value: float = 0.0


def _bands(config: ClimateRuleConfig, climate_class: ClimateClass) -> tuple[ClimateBand, ...]:
    humidity_alarm = (
        config.propellant_humidity_alarm_pct
        if climate_class is ClimateClass.PROPELLANT
        else config.humidity_alarm_pct
    )
    t, h = config.hysteresis_c, config.hysteresis_pct
    return (
        ClimateBand("temperature_warning", "temperature_c", "°C", config.temperature_warning_c,
                    config.temperature_warning_for_s, 1, t, Severity.WARNING),
        ClimateBand("temperature_alarm", "temperature_c", "°C", config.temperature_alarm_c,
                    config.temperature_alarm_for_s, 1, t, Severity.ALARM),
        ClimateBand("temperature_critical", "temperature_c", "°C", config.temperature_critical_c,
                    0.0, config.temperature_critical_samples, t, Severity.CRITICAL),
        ClimateBand("humidity_warning", "humidity_pct", "% RH", config.humidity_warning_pct,
                    config.humidity_warning_for_s, 1, h, Severity.WARNING),
        ClimateBand("humidity_alarm", "humidity_pct", "% RH", humidity_alarm,
                    config.humidity_alarm_for_s, 1, h, Severity.ALARM),
    )


class ClimateRule:
    """Fires when a climate sensor stays above a band long enough; clears below the hysteresis."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.CLIMATE})

    def __init__(self, config: ClimateRuleConfig, depot: Depot) -> None:
        self._depot = depot
        # One tuple of bands per climate class, shared by its sensors (frozen): 0.4 MiB less
        # with 2,000 sensors than a tuple each (issue 29).
        per_class = {c: _bands(config, c) for c in ClimateClass}
        self._bands: dict[str, tuple[ClimateBand, ...]] = {
            s.id: per_class[depot.storehouses[s.storehouse].climate_class]
            for s in depot.sensors_of(SensorKind.CLIMATE)
        }
        self._state: dict[tuple[str, str], _BandState] = {
            (sensor, band.name): _BandState()
            for sensor, bands in self._bands.items()
            for band in bands
        }
        self._pair_states()

    def _pair_states(self) -> None:
        # Per sensor, each band with its state: one lookup per reading, not one per band.
        self._banded = {sensor: tuple((band, self._state[(sensor, band.name)]) for band in bands)
                        for sensor, bands in self._bands.items()}

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Update every band of the reading's sensor."""
        banded = self._banded.get(reading.sensor)
        if banded is None:
            return []
        out: list[Outcome] = []
        values = reading.values
        for band, state in banded:
            value = values.get(band.field)
            if not isinstance(value, float):  # a bool is no float
                continue
            state.last_value = value
            if value > band.limit:
                state.consecutive += 1
                if state.above_since_ns is None:
                    state.above_since_ns = reading.at_ns
                out.extend(self._maybe_fire(reading.sensor, band, state, now_ns))
            elif value <= band.limit - band.hysteresis:
                state.consecutive = 0
                state.above_since_ns = None
                if state.firing:
                    state.firing = False
                    out.append(self._transition(
                        TransitionKind.RESOLVED, reading.sensor, band, state, now_ns,
                        f"back to {value:.1f} {band.unit} (limit {band.limit:g} {band.unit})",
                    ))
            else:
                # Inside the hysteresis band: a firing alert holds, a pending one starts over.
                state.consecutive = 0
                if not state.firing:
                    state.above_since_ns = None
        return out

    def tick(self, now_ns: int) -> list[Outcome]:
        """Fire bands whose sustain time ran out since the last reading."""
        out: list[Outcome] = []
        for sensor, bands in self._bands.items():
            for band in bands:
                out.extend(self._maybe_fire(sensor, band, self._state[(sensor, band.name)], now_ns))
        return out

    def snapshot(self) -> dict[str, Any]:
        """Sustain timers and firing bands per sensor."""
        # Spelled out, not dataclasses.asdict: it deep-copies field by field, and a door opening
        # saves the whole state up to twice a second (most of a save's CPU, issue 29).
        return {f"{sensor}/{band}": {"above_since_ns": s.above_since_ns,
                                     "consecutive": s.consecutive, "firing": s.firing,
                                     "last_value": s.last_value}
                for (sensor, band), s in self._state.items()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back sustain timers and firing bands."""
        for key, saved in state.items():
            sensor, _, band = key.partition("/")
            if (sensor, band) in self._state:
                self._state[(sensor, band)] = _BandState(**saved)
        self._pair_states()

    def _maybe_fire(
        self, sensor: str, band: ClimateBand, state: _BandState, now_ns: int
    ) -> list[Transition]:
        if state.firing or state.above_since_ns is None or state.consecutive < band.samples:
            return []
        held_s = (now_ns - state.above_since_ns) / _NS
        if held_s < band.for_s:
            return []
        state.firing = True
        held = f" for {format_duration(held_s)}" if band.for_s > 0 else ""
        return [self._transition(
            TransitionKind.FIRING, sensor, band, state, now_ns,
            f"{state.last_value:.1f} {band.unit} above {band.limit:g} {band.unit}{held}",
        )]

    def _transition(
        self, kind: TransitionKind, sensor: str, band: ClimateBand, state: _BandState,
        now_ns: int, detail: str,
    ) -> Transition:
        return climate_transition(self._depot, kind, band.name, sensor, band.severity, now_ns,
                                  f"{band.field.split('_')[0]} {detail}",
                                  {band.field: state.last_value, "limit": band.limit})
