"""The overview's climate row: temperature and humidity per sensor against the climate rule's
bands, taken from the config, and the daily climate record."""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.config.schema import Config
from daemon.dashboards.panels import SITE, STORE, TIME, Json, organize, panel, row, table, target
from rules.climate import ClimateRuleConfig
from rules.depot import ClimateClass

__all__ = ["ClimateBands", "climate_panels"]


@dataclass(frozen=True, slots=True)
class ClimateBands:
    """The climate rule's limits as the dashboard draws them; defaults are the rule's."""

    temperature_warning_c: float = 30.0
    temperature_alarm_c: float = 37.8
    temperature_critical_c: float = 50.0
    humidity_warning_pct: float = 65.0
    humidity_alarm_pct: float = 70.0
    propellant_humidity_alarm_pct: float = 60.0
    # Storehouse ids of climate class `propellant` (their humidity alarm is lower).
    propellant_storehouses: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> ClimateBands | None:
        """The bands the config's climate rule runs with; None if the rule is switched off."""
        rule = next((r for r in config.rule_set() if isinstance(r, ClimateRuleConfig)), None)
        if rule is None:
            return None
        return cls(
            temperature_warning_c=rule.temperature_warning_c,
            temperature_alarm_c=rule.temperature_alarm_c,
            temperature_critical_c=rule.temperature_critical_c,
            humidity_warning_pct=rule.humidity_warning_pct,
            humidity_alarm_pct=rule.humidity_alarm_pct,
            propellant_humidity_alarm_pct=rule.propellant_humidity_alarm_pct,
            propellant_storehouses=tuple(
                s.id for s in config.storehouses if s.climate_class is ClimateClass.PROPELLANT),
        )


def climate_panels(y: int, bands: ClimateBands | None) -> list[Json]:
    """The climate row at height `y`; `bands` None draws no limits (the rule is off)."""
    return [row("Climate", y - 1), _temperature(y, bands), _humidity(y, bands),
            _daily_record(y + 8, bands)]


def _temperature(y: int, bands: ClimateBands | None) -> Json:
    steps = _temperature_steps(bands) if bands is not None else None
    return _series("temperature_c", "celsius", steps, "Temperature", [], (0, y))


def _humidity(y: int, bands: ClimateBands | None) -> Json:
    if bands is None:
        return _series("humidity_pct", "humidity", None, "Relative humidity", [], (12, y))
    overrides: list[Json] = []
    if bands.propellant_storehouses:
        # Series are named "<storehouse> <sensor>": propellant storehouses get their lower alarm.
        names = "|".join(re.escape(s) for s in bands.propellant_storehouses)
        overrides.append({
            "matcher": {"id": "byRegexp", "options": f"^({names}) .*"},
            "properties": [{"id": "thresholds", "value": _humidity_steps(
                bands, bands.propellant_humidity_alarm_pct)}],
        })
    return _series("humidity_pct", "humidity", _humidity_steps(bands, bands.humidity_alarm_pct),
                   "Relative humidity", overrides, (12, y))


def _series(field: str, unit: str, steps: Json | None, title: str, overrides: list[Json],
            at: tuple[int, int]) -> Json:
    x, y = at
    custom: Json = {"drawStyle": "line", "lineWidth": 2, "fillOpacity": 0,
                    "showPoints": "never", "spanNulls": True}
    defaults: Json = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}}
    if steps is not None:
        custom["thresholdsStyle"] = {"mode": "dashed+area"}
        defaults["thresholds"] = steps
    return panel(
        "timeseries", title, (x, y, 12, 8), [
            target(f'SELECT mean("{field}") FROM "climate" WHERE {SITE} AND {STORE} '
                   f'AND {TIME} GROUP BY time($__interval), "storehouse", "sensor" '
                   "fill(none)", alias="$tag_storehouse $tag_sensor"),
        ],
        description=f"{title} per sensor against the climate rule's warning (yellow), "
        "alarm (orange) and critical (red) limits" + (
            "." if steps is not None else "; the climate rule is switched off."),
        options={"legend": {"showLegend": True, "displayMode": "list",
                            "placement": "bottom", "calcs": []},
                 "tooltip": {"mode": "multi", "sort": "desc"}},
        defaults=defaults, overrides=overrides,
    )


def _daily_record(y: int, bands: ClimateBands | None) -> Json:
    overrides = [] if bands is None else [
        {"matcher": {"id": "byName", "options": field}, "properties": [
            {"id": "thresholds", "value": _temperature_steps(bands)},
            {"id": "custom.cellOptions", "value": {"type": "color-text"}}]}
        for field in ("max °C", "min °C")]
    return table(
        "Daily climate record (08:00)", (0, y, 24, 6),
        'SELECT "max_c", "min_c", "max_humidity_pct", "min_humidity_pct", '
        f'"storehouse" FROM "climate_daily" WHERE {SITE} AND {STORE} AND {TIME}',
        description="Each storehouse's highest and lowest temperature and humidity of the day "
        "before, taken at 08:00 local time (the climate_record rule). Last 30 days.",
        timeFrom="30d", hideTimeOverride=True,
        transformations=[
            organize({"Time": "taken", "max_c": "max °C", "min_c": "min °C",
                      "max_humidity_pct": "max % RH", "min_humidity_pct": "min % RH"}),
            {"id": "sortBy", "options": {"sort": [{"field": "taken", "desc": True}]}},
        ],
        defaults={"decimals": 1}, overrides=overrides,
    )


def _steps(*limits: tuple[float, str]) -> Json:
    """Absolute thresholds: green below the first limit, then each band's colour, ascending."""
    steps: list[Json] = [{"color": "green", "value": None}]
    # A lower band that starts above a higher one is hidden by it (e.g. propellant humidity:
    # the 60 % alarm lies below the 65 % warning), so keep only the ascending steps.
    for value, color in sorted(limits):
        steps.append({"color": color, "value": value})
    return {"mode": "absolute", "steps": steps}


def _temperature_steps(b: ClimateBands) -> Json:
    return _steps((b.temperature_warning_c, "yellow"), (b.temperature_alarm_c, "orange"),
                  (b.temperature_critical_c, "red"))


def _humidity_steps(b: ClimateBands, alarm_pct: float) -> Json:
    limits = [(alarm_pct, "orange")]
    if b.humidity_warning_pct < alarm_pct:
        limits.append((b.humidity_warning_pct, "yellow"))
    return _steps(*limits)
