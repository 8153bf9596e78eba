"""Which doors stand open and since when, followed from contact readings (door rules share it)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from daemon.vocabulary.readings import Reading
from rules.depot import Door

__all__ = ["DoorChange", "DoorContacts"]

# A contact reading about a door: (door, open or not, when the current opening began). A plain
# tuple: three door rules ask on every contact reading, and a dataclass each cost more than
# what they did with it.
DoorChange = tuple[str, bool, int | None]


class DoorContacts:
    """Open-since time per door; a repeated "open" keeps the first time, "closed" clears it."""

    def __init__(self, doors: Iterable[Door]) -> None:
        self._door_of_sensor = {door.contact_sensor: door.id for door in doors}
        self.open_since: dict[str, int] = {}

    def follow(self, reading: Reading) -> DoorChange | None:
        """The change a reading makes, or None when it is not about a followed door's contact."""
        door = self._door_of_sensor.get(reading.sensor)
        is_open = reading.values.get("open")
        if door is None or not isinstance(is_open, bool):
            return None
        if is_open:
            return door, True, self.open_since.setdefault(door, reading.at_ns)
        return door, False, self.open_since.pop(door, None)

    def snapshot(self) -> dict[str, int]:
        """Open-since times."""
        return dict(self.open_since)

    def restore(self, saved: Mapping[str, int]) -> None:
        """Take back open-since times of doors that still exist."""
        doors = set(self._door_of_sensor.values())
        self.open_since = {d: int(t) for d, t in saved.items() if d in doors}
