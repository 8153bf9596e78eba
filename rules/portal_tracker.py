"""Which way a tag passed a portal: the order its inner and outer antennas read it (PSSM.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from daemon.vocabulary.readings import Reading
from rules.depot import Depot, MovementOrder

__all__ = ["Direction", "Passage", "PortalTracker", "Side", "covering_order", "tag_read"]

Side = Literal["inner", "outer"]
Direction = Literal["in", "out", "unknown"]

_SIDES: tuple[Side, ...] = ("inner", "outer")


@dataclass(frozen=True, slots=True)
class Passage:
    """A tag's way through a portal; `unknown` when only one antenna read it within the window.

    `at_ns` is when the second antenna read it (for `unknown`: the lone antenna's last read);
    `antenna` is the sensor that read it last; `rssi_dbm` the strongest read, None if none said.
    """

    portal: str
    epc: str
    direction: Direction
    at_ns: int
    antenna: str
    rssi_dbm: float | None


@dataclass(slots=True)
class _Track:
    side: Side  # the antenna zone the tag was read in last
    first_ns: int
    last_ns: int
    rssi_dbm: float | None
    # Already reported as a passage: lingering reads on the same side say nothing new, and on
    # expiry it is dropped quietly instead of being reported as `unknown`.
    passed: bool


# The last reading asked about and its answer: a tag read meets three portal trackers and the
# item_unseen rule, and each asks. Readings are frozen, so the same object gets the same answer.
_last: tuple[Reading, tuple[str, float | None] | None] | None = None


def tag_read(reading: Reading) -> tuple[str, float | None] | None:
    """The EPC (upper case) and RSSI of an RFID reading, or None when it carries no EPC."""
    global _last
    last = _last
    if last is not None and last[0] is reading:
        return last[1]
    tag = _tag_read(reading)
    _last = (reading, tag)
    return tag


def _tag_read(reading: Reading) -> tuple[str, float | None] | None:
    epc = reading.values.get("epc")
    if not isinstance(epc, str) or not epc.strip():
        return None
    rssi = reading.values.get("rssi_dbm")
    number = float(rssi) if isinstance(rssi, int | float) and not isinstance(rssi, bool) else None
    return epc.strip().upper(), number


def covering_order(depot: Depot, epc: str, portal: str, at_ns: int) -> MovementOrder | None:
    """The first movement order (config order) that lets `epc` pass `portal` at `at_ns`."""
    return next((o for o in depot.movement_orders if o.covers(epc, portal, at_ns)), None)


def _stronger(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


class PortalTracker:
    """Pairs reads of one EPC by a portal's two antennas into passages; pure and deterministic.

    Inner then outer within the window is `out`, outer then inner is `in` (RFID Journal; the
    10 s window is our judgement). Repeated reads by the same antenna only refresh the window.
    Reads arrive per sensor in time order (the engine drops stale ones); a read of the other
    antenna stamped slightly earlier than the last one still pairs, in arrival order.
    """

    def __init__(self, depot: Depot, window_s: float) -> None:
        self._window_ns = int(window_s * 1_000_000_000)
        self._antennas: dict[str, tuple[str, Side]] = {}
        for portal in depot.portals.values():
            self._antennas[portal.inner_sensor] = (portal.id, "inner")
            self._antennas[portal.outer_sensor] = (portal.id, "outer")
        self._sensor_of = {(p, side): s for s, (p, side) in self._antennas.items()}
        self._tracks: dict[tuple[str, str], _Track] = {}

    def is_antenna(self, sensor: str) -> bool:
        """Whether a sensor is one of the depot's portal antennas."""
        return sensor in self._antennas

    def read(self, reading: Reading) -> list[Passage]:
        """Passages completed (or given up as `unknown`) by one antenna reading."""
        antenna = self._antennas.get(reading.sensor)
        tag = tag_read(reading)
        if antenna is None or tag is None:
            return []
        (portal, side), (epc, rssi), at_ns = antenna, tag, reading.at_ns
        key = (portal, epc)
        out: list[Passage] = []
        track = self._tracks.get(key)
        # Below, plain comparisons where max(), min() and _stronger() said the same: this runs
        # for every antenna read, in each of the three rules that follow portals.
        if track is not None and (at_ns - track.last_ns > self._window_ns
                                  or track.first_ns - at_ns > self._window_ns):
            # The gap to the track, max(at_ns - last, first - at_ns, 0), exceeds the window.
            if at_ns < track.first_ns:
                # A read far older than the track: it can pair with nothing newer.
                return [Passage(portal, epc, "unknown", at_ns, reading.sensor, rssi)]
            del self._tracks[key]
            out.extend(self._lapsed(key, track))
            track = None
        if track is None:
            self._tracks[key] = _Track(side, at_ns, at_ns, rssi, passed=False)
            return out
        if side == track.side:
            if at_ns < track.first_ns:
                track.first_ns = at_ns
            if at_ns > track.last_ns:
                track.last_ns = at_ns
            if rssi is not None and (track.rssi_dbm is None or rssi > track.rssi_dbm):
                track.rssi_dbm = rssi
            return out
        direction: Direction = "out" if track.side == "inner" else "in"
        passed_ns = max(at_ns, track.last_ns)
        out.append(Passage(portal, epc, direction, passed_ns, reading.sensor,
                           _stronger(track.rssi_dbm, rssi)))
        # The tag now sits in the second zone: more reads there refresh, a read back in the
        # first zone within the window is a new passage the other way.
        self._tracks[key] = _Track(side, at_ns, passed_ns, rssi, passed=True)
        return out

    def expire(self, now_ns: int) -> list[Passage]:
        """Tracks whose window ran out by `now_ns`: lone reads become `unknown` passages."""
        out: list[Passage] = []
        for key in sorted(self._tracks):
            track = self._tracks[key]
            if now_ns - track.last_ns > self._window_ns:
                del self._tracks[key]
                out.extend(self._lapsed(key, track))
        return out

    def _lapsed(self, key: tuple[str, str], track: _Track) -> list[Passage]:
        if track.passed:
            return []
        portal, epc = key
        return [Passage(portal, epc, "unknown", track.last_ns,
                        self._sensor_of[(portal, track.side)], track.rssi_dbm)]

    def snapshot(self) -> list[list[Any]]:
        """Open tracks as JSON-ready rows, sorted."""
        return [[portal, epc, t.side, t.first_ns, t.last_ns, t.rssi_dbm, t.passed]
                for (portal, epc), t in sorted(self._tracks.items())]

    def restore(self, rows: Any) -> None:
        """Take back `snapshot()` rows; rows of unknown portals or bad shape are dropped."""
        portals = {p for p, _ in self._antennas.values()}
        self._tracks = {}
        for row in rows if isinstance(rows, list) else []:
            if not isinstance(row, list) or len(row) != 7:
                continue
            portal, epc, side, first_ns, last_ns, rssi, passed = row
            if portal not in portals or side not in _SIDES or not isinstance(epc, str):
                continue
            self._tracks[(portal, epc)] = _Track(
                "inner" if side == "inner" else "outer", int(first_ns), int(last_ns),
                None if rssi is None else float(rssi), bool(passed))

