"""The daily max/min climate record per storehouse, taken at 08:00 local (US Navy practice)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import FieldValue, Reading
from rules.base import Fact, Outcome, RuleConfigBase
from rules.depot import Depot, SensorKind

__all__ = ["ClimateRecordRule", "ClimateRecordRuleConfig"]

_NS = 1_000_000_000
# Reading field -> the running extremes' keys.
_EXTREMES = (("temperature_c", "max_temperature", "min_temperature"),
             ("humidity_pct", "max_humidity", "min_humidity"))


class ClimateRecordRuleConfig(RuleConfigBase):
    """Writes `climate_daily` (max/min temperature and humidity) once a day per storehouse."""

    type: Literal["climate_record"] = "climate_record"
    read_at: dt.time = Field(default=dt.time(8, 0))

    def build(self, depot: Depot) -> ClimateRecordRule:
        """The rule for every storehouse with climate sensors."""
        return ClimateRecordRule(self, depot)


class ClimateRecordRule:
    """Folds every climate reading into its storehouse's running max/min; a fact at read time."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.CLIMATE})

    def __init__(self, config: ClimateRecordRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._read_at = config.read_at
        self._storehouses = sorted({s.storehouse for s in depot.sensors_of(SensorKind.CLIMATE)})
        self._extremes: dict[str, dict[str, float]] = {s: {} for s in self._storehouses}
        self._next_ns: dict[str, int] = {}
        # The earliest read time of any storehouse, once every one has its own: before it a
        # reading closes no day, without a look at each storehouse.
        self._quiet_until: int | None = None

    def _next_reading_time(self, storehouse: str, after_ns: int) -> int:
        zone = self._depot.storehouses[storehouse].zone
        local = dt.datetime.fromtimestamp(after_ns / _NS, tz=zone)
        target = dt.datetime.combine(local.date(), self._read_at, tzinfo=zone)
        if target <= local:
            target = dt.datetime.combine(local.date() + dt.timedelta(days=1), self._read_at,
                                         tzinfo=zone)
        return int(target.timestamp() * _NS)

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Fold one reading in."""
        sensor = self._depot.sensors.get(reading.sensor)
        if sensor is None or sensor.kind is not SensorKind.CLIMATE:
            return []
        quiet_until = self._quiet_until
        out = (self._close_days(now_ns) if quiet_until is None or now_ns >= quiet_until
               else [])
        extremes = self._extremes[sensor.storehouse]
        for field, high, low in _EXTREMES:
            value = reading.values.get(field)
            if isinstance(value, float):
                extremes[high] = max(extremes.get(high, value), value)
                extremes[low] = min(extremes.get(low, value), value)
        return out

    def tick(self, now_ns: int) -> list[Outcome]:
        """Write the record when a storehouse's read time passes."""
        return self._close_days(now_ns)

    def _close_days(self, now_ns: int) -> list[Outcome]:
        out: list[Outcome] = []
        for storehouse in self._storehouses:
            due = self._next_ns.get(storehouse)
            if due is None:  # computed once, not per reading and storehouse
                due = self._next_ns[storehouse] = self._next_reading_time(storehouse, now_ns)
            if now_ns < due:
                continue
            extremes = self._extremes[storehouse]
            if extremes:
                fields: dict[str, FieldValue] = {
                    "max_c": extremes.get("max_temperature", float("nan")),
                    "min_c": extremes.get("min_temperature", float("nan")),
                    "max_humidity_pct": extremes.get("max_humidity", float("nan")),
                    "min_humidity_pct": extremes.get("min_humidity", float("nan")),
                }
                out.append(Fact("climate_daily", {"storehouse": storehouse},
                                {k: v for k, v in fields.items() if v == v}, due))
            self._extremes[storehouse] = {}
            self._next_ns[storehouse] = self._next_reading_time(storehouse, due)
        self._quiet_until = min((self._next_ns[s] for s in self._storehouses), default=None)
        return out

    def snapshot(self) -> dict[str, Any]:
        """Running extremes and the next read time per storehouse."""
        return {"extremes": self._extremes, "next_ns": self._next_ns}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back running extremes: a restart does not lose the day's max/min."""
        for storehouse, extremes in state.get("extremes", {}).items():
            if storehouse in self._extremes:
                self._extremes[storehouse] = {k: float(v) for k, v in extremes.items()}
        self._next_ns = {s: int(t) for s, t in state.get("next_ns", {}).items()
                         if s in self._extremes}
        self._quiet_until = None
