"""The last 24 h of each climate sensor's temperature and humidity, for the console's depot at a
glance (issue 30): kept in memory from the readings themselves, so the sparklines stay drawn
while InfluxDB is down (storage may degrade, the officer's view may not).

One value per quarter hour (the last one heard in it) and the latest reading, per sensor and
field; 96 pairs per field at most. Saved with the recent events in the daemon's state file.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from daemon.vocabulary.readings import Reading

__all__ = ["CLIMATE_FIELDS", "ClimateHistory", "Latest"]

_NS = 1_000_000_000
SLOT_NS = 15 * 60 * _NS
DAY_NS = 24 * 3600 * _NS
# The climate fields the glance shows, in its order.
CLIMATE_FIELDS = ("temperature_c", "humidity_pct")


@dataclass(frozen=True, slots=True)
class Latest:
    """A sensor field's last value and when it was read."""

    value: float
    at_ns: int


class ClimateHistory:
    """Quarter-hour values of the last day and the latest value per climate sensor field."""

    def __init__(self, sensors: Iterable[str]) -> None:
        self._sensors = frozenset(sensors)
        # (sensor, field) -> (slot start, value), oldest first.
        self._slots: dict[tuple[str, str], deque[tuple[int, float]]] = {}
        self._latest: dict[tuple[str, str], Latest] = {}

    def __contains__(self, sensor: object) -> bool:
        return sensor in self._sensors

    def reading(self, reading: Reading) -> None:
        """A climate sensor's reading: each of its climate fields noted."""
        for name in CLIMATE_FIELDS:
            value = reading.values.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self._note(reading.sensor, name, float(value), reading.at_ns)

    def _note(self, sensor: str, name: str, value: float, at_ns: int) -> None:
        key = (sensor, name)
        latest = self._latest.get(key)
        if latest is not None and at_ns < latest.at_ns:
            return  # a late reading (a replay) does not rewrite what the officer saw last
        self._latest[key] = Latest(value, at_ns)
        slots = self._slots.setdefault(key, deque(maxlen=DAY_NS // SLOT_NS + 1))
        slot = at_ns - at_ns % SLOT_NS
        if slots and slots[-1][0] == slot:
            slots[-1] = (slot, value)
        else:
            slots.append((slot, value))

    def latest(self, sensor: str, name: str) -> Latest | None:
        """The last value of a sensor's field, if it ever reported one."""
        return self._latest.get((sensor, name))

    def day(self, sensor: str, name: str, now_ns: int) -> list[tuple[int, float]]:
        """(slot start, value) of the 24 h before `now_ns`, oldest first."""
        since = now_ns - DAY_NS
        return [(at, v) for at, v in self._slots.get((sensor, name), ()) if at >= since]

    def snapshot(self) -> dict[str, object]:
        """JSON-ready, for the state file: "sensor/field" -> slots [[at, value] ...]
        and latest [at, value]."""
        return {f"{s}/{f}": {"slots": [list(p) for p in slots],
                             "latest": [self._latest[(s, f)].at_ns, self._latest[(s, f)].value]}
                for (s, f), slots in self._slots.items()}

    def restore(self, saved: Mapping[str, object]) -> None:
        """Take back `snapshot()`; sensors no longer configured and malformed entries are
        skipped."""
        for key, entry in saved.items():
            sensor, _, name = str(key).partition("/")
            if sensor not in self._sensors or name not in CLIMATE_FIELDS or not isinstance(
                    entry, dict):
                continue
            for pair in entry.get("slots", []):
                if _is_pair(pair):
                    self._note(sensor, name, float(pair[1]), int(pair[0]))
            latest = entry.get("latest")
            if isinstance(latest, list) and _is_pair(latest):
                self._note(sensor, name, float(latest[1]), int(latest[0]))


def _is_pair(value: object) -> bool:
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))
