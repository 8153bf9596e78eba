"""A storehouse's intrusion zone as staff set it: disarmed, arming, armed, entry, alarm.

Arming requests reach the rules as readings of the pseudo-sensor `zone:<storehouse>` (from the
API, an MQTT command or a keypad), so the zone's state machine stays pure: the same requests
and ticks always give the same states. Every change is a `zone` fact (an InfluxDB point and an
audit entry).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.vocabulary.readings import FieldValue
from rules.base import Fact
from rules.walk_test import WalkResult

__all__ = ["ZONE_PREFIX", "Zone", "ZoneState", "ZoneView", "zone_fact", "zone_request"]

# Readings of `zone:<storehouse>` are arming requests, not a sensor's.
ZONE_PREFIX = "zone:"


class ZoneState(enum.StrEnum):
    """Where a zone stands; `arming` and `entry` run the exit and the entry delay."""

    DISARMED = "disarmed"
    ARMING = "arming"
    ARMED = "armed"
    ENTRY = "entry"
    ALARM = "alarm"


def zone_request(action: str, by: str, how: str, *, force: bool = False,
                 note: str = "") -> dict[str, FieldValue]:
    """The values of an arming request reading: `arm` or `disarm`, who asked, and how."""
    return {"action": action, "by": by, "how": how, "force": force, "note": note}


@dataclass(slots=True)
class Zone:
    """One staff-armed zone: its state, who set it, the running delay, and what is bypassed."""

    state: ZoneState
    since_ns: int
    by: str = ""
    how: str = ""
    # End of the exit or the entry delay, while one runs.
    deadline_ns: int | None = None
    # The door whose opening started the entry delay.
    entry_door: str = ""
    # Sensors an officer armed over (forced): ignored until they report secure again.
    bypassed: set[str] = field(default_factory=set)
    # Since when the schedule says armed while the zone is disarmed ("not secured").
    expected_since_ns: int | None = None

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state."""
        return {"state": self.state.value, "since_ns": self.since_ns, "by": self.by,
                "how": self.how, "deadline_ns": self.deadline_ns,
                "entry_door": self.entry_door, "bypassed": sorted(self.bypassed),
                "expected_since_ns": self.expected_since_ns}

    @classmethod
    def restore(cls, saved: Mapping[str, Any]) -> Zone:
        """A zone from `snapshot()`; raises on a damaged state."""
        deadline, expected = saved.get("deadline_ns"), saved.get("expected_since_ns")
        return cls(ZoneState(saved["state"]), int(saved["since_ns"]), str(saved.get("by", "")),
                   str(saved.get("how", "")), None if deadline is None else int(deadline),
                   str(saved.get("entry_door", "")), {str(s) for s in saved.get("bypassed", [])},
                   None if expected is None else int(expected))


@dataclass(frozen=True, slots=True)
class ZoneView:
    """One storehouse's zone at a glance (the console's panel, the API): its state, since when
    and by whom, the end of a running exit or entry delay, and whether a walk test runs."""

    storehouse: str
    state: ZoneState
    # `staff` zones keep their own state; `schedule` zones are as their schedule says.
    arming: str
    # None where nothing set it since the start (a schedule zone, a staff zone unseen yet).
    since_ns: int | None
    by: str
    how: str
    delay_ends_ns: int | None
    # A walk test running now, and how the last one ended (None: none since records began).
    walk_test: bool
    last_walk_test: WalkResult | None


def zone_fact(storehouse: str, state: ZoneState, at_ns: int, *, result: str, by: str,
              how: str, action: str = "", not_secured: Iterable[str] = (), forced: bool = False,
              note: str = "") -> Fact:
    """A `zone` point: the zone's state after a request or a delay, who or what moved it, and
    the result (`arming`, `armed`, `entry`, `alarm`, `disarmed`, `refused`, `unchanged` ...)."""
    # Every field always present with one type: the InfluxDB schema never changes a type.
    fields: dict[str, FieldValue] = {
        "state": state.value, "result": result, "action": action, "by": by, "how": how,
        "forced": forced, "not_secured": ", ".join(not_secured), "note": note}
    return Fact("zone", {"storehouse": storehouse}, fields, at_ns)
