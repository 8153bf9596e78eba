"""The last 24 h of each climate sensor's temperature and humidity, for the console's depot at a
glance (issue 30): kept in memory from the readings themselves, so the sparklines stay drawn
while InfluxDB is down (storage may degrade, the officer's view may not).

One value per quarter hour (the first one heard in it) and the latest reading, per sensor and
field; 97 pairs per field at most. Saved with the recent events in the daemon's state file,
every few seconds: a field's slots are turned into JSON again only when a new slot began.
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
        # Each field's slots as last saved, rebuilt only once a new slot has begun.
        self._saved: dict[tuple[str, str], tuple[int, list[float | None]]] = {}

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
        slots = self._slots.get(key)
        if slots is None:  # not setdefault: a deque built per reading and thrown away
            slots = self._slots[key] = deque(maxlen=DAY_NS // SLOT_NS + 1)
        slot = at_ns - at_ns % SLOT_NS
        if not slots or slots[-1][0] < slot:
            slots.append((slot, value))
            self._saved.pop(key, None)

    def latest(self, sensor: str, name: str) -> Latest | None:
        """The last value of a sensor's field, if it ever reported one."""
        return self._latest.get((sensor, name))

    def day(self, sensor: str, name: str, now_ns: int) -> list[tuple[int, float]]:
        """(slot start, value) of the 24 h before `now_ns`, oldest first."""
        since = now_ns - DAY_NS
        return [(at, v) for at, v in self._slots.get((sensor, name), ()) if at >= since]

    def snapshot(self) -> dict[str, object]:
        """JSON-ready, for the state file (saved every few seconds, so compact): per
        "sensor/field" the first slot, the slots' values in order (None for a slot with no
        reading) and the latest [at, value]."""
        saved: dict[str, object] = {}
        for key, slots in self._slots.items():
            cached = self._saved.get(key)
            if cached is None:
                first = slots[0][0]
                values: list[float | None] = [None] * ((slots[-1][0] - first) // SLOT_NS + 1)
                for at, value in slots:
                    values[(at - first) // SLOT_NS] = round(value, 2)
                cached = self._saved[key] = (first, values)
            latest = self._latest[key]
            saved[f"{key[0]}/{key[1]}"] = {"first": cached[0], "values": cached[1],
                                           "latest": [latest.at_ns, latest.value]}
        return saved

    def restore(self, saved: Mapping[str, object]) -> None:
        """Take back `snapshot()`; sensors no longer configured and malformed entries are
        skipped."""
        for key, entry in saved.items():
            sensor, _, name = str(key).partition("/")
            if sensor not in self._sensors or name not in CLIMATE_FIELDS or not isinstance(
                    entry, dict):
                continue
            first, values = entry.get("first"), entry.get("values")
            if isinstance(first, int) and isinstance(values, list):
                for index, value in enumerate(values):
                    if _is_number(value):
                        self._note(sensor, name, float(value), first + index * SLOT_NS)
            latest = entry.get("latest")
            if isinstance(latest, list) and len(latest) == 2 and all(map(_is_number, latest)):
                self._note(sensor, name, float(latest[1]), int(latest[0]))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
