"""Two-person rule on vault doors: two distinct authorised badges before opening, never one alone.

US Army MP1002 via PSSM.md; the timings are ours [I]. For a door with `two_person: true`:

- Entry: when the door opens (contact open for the debounce) and nobody is recorded inside, at
  least two distinct authorised persons (granted, not escort-only visitors) must have badged at
  its reader within `window_s` before it (a read up to the opening's confirmation also counts).
  Persons are told apart by roster name, so the same person badging twice, even with two
  badges, counts once. Otherwise `two_person.<door>` fires (critical) until the door closes.
- Inside: whoever badged for an entry is recorded inside. While anyone is inside, a read by a
  person inside means they leave, a read by anyone else authorised means they join; openings
  are not judged then. When exactly one person is recorded inside for more than `alone_s`
  (after the others badged out, or after a one-person entry), `two_person_alone.<door>` fires,
  and resolves when they badge out or a second authorised person badges in.
- Exit: once the last person has badged out, the next opening within `window_s` is their way
  out and is not judged, unless someone badged at the reader since.

Nobody who does not badge out is ever recorded as having left: fail secure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import FieldValue, Reading, Severity, Transition, TransitionKind
from rules.badge_access import badge_read
from rules.base import Outcome, RuleConfigBase, format_duration
from rules.depot import Depot, SensorKind

__all__ = ["TwoPersonRule", "TwoPersonRuleConfig"]

_NS = 1_000_000_000


class TwoPersonRuleConfig(RuleConfigBase):
    """Vault doors: two distinct authorised badges before opening; one person alone alarms."""

    type: Literal["two_person"] = "two_person"
    severity: Literal["alarm", "critical"] = "critical"
    # MP1002 two-person rule; [I] both badges within 60 s before the door opens.
    window_s: float = Field(default=60.0, gt=0)
    # [I] one person alone inside for more than 30 s.
    alone_s: float = Field(default=30.0, ge=0)
    # EN 50131-1 §8.9.1: intrusion signals shorter than 400 ms are not processed.
    debounce_ms: float = Field(default=400.0, ge=0)

    def build(self, depot: Depot) -> TwoPersonRule:
        """The rule for every door with `two_person: true` and a badge reader."""
        return TwoPersonRule(self, depot)


@dataclass(slots=True)
class _Vault:
    """What the rule knows about one two-person door."""

    # Authorised reads while nobody is inside: (at_ns, name, badge hash), oldest first.
    badged: list[tuple[int, str, str]] = field(default_factory=list)
    open_since: int | None = None
    checked: bool = False
    # Name -> badge hash of whoever is recorded inside, in the order they came.
    inside: dict[str, str] = field(default_factory=dict)
    alone_since: int | None = None
    left_at: int | None = None
    violated: bool = False
    alone: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"badged": [list(b) for b in self.badged], "open_since": self.open_since,
                "checked": self.checked, "inside": dict(self.inside),
                "alone_since": self.alone_since, "left_at": self.left_at,
                "violated": self.violated, "alone": self.alone}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> _Vault:
        def ns(key: str) -> int | None:
            value = data.get(key)
            return None if value is None else int(value)

        return cls(
            badged=[(int(b[0]), str(b[1]), str(b[2])) for b in data.get("badged", [])],
            open_since=ns("open_since"), checked=bool(data.get("checked", False)),
            inside={str(k): str(v) for k, v in data.get("inside", {}).items()},
            alone_since=ns("alone_since"), left_at=ns("left_at"),
            violated=bool(data.get("violated", False)), alone=bool(data.get("alone", False)),
        )


class TwoPersonRule:
    """Judges vault entries by who badged before them, and tracks who is left inside."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.DOOR, SensorKind.BADGE_READER})

    def __init__(self, config: TwoPersonRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._severity = Severity(config.severity)
        self._window_ns = int(config.window_s * _NS)
        self._alone_ns = int(config.alone_s * _NS)
        self._debounce_ns = int(config.debounce_ms * 1_000_000)
        self._vaults = {d.id: _Vault() for d in depot.doors.values()
                        if d.two_person and d.badge_reader}
        self._door_of_contact = {depot.doors[d].contact_sensor: d for d in self._vaults}
        # `badge_read` answers None for any other sensor: a door contact's reading (most of
        # this rule's) is not asked about.
        self._readers = frozenset(s.id for s in depot.sensors_of(SensorKind.BADGE_READER))

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow authorised reads at vault readers and the vault doors' state."""
        read = badge_read(self._depot, reading) if reading.sensor in self._readers else None
        if read is not None:
            vault = self._vaults.get(read.door.id)
            if vault is None or not read.authorised:
                return []
            door = read.door.id
            if not vault.inside:
                vault.badged.append((read.at_ns, read.name, read.badge_hash))
                self._prune(vault, now_ns)
                return self._check(door, now_ns)
            if read.name in vault.inside:
                del vault.inside[read.name]
                if not vault.inside:
                    vault.left_at = read.at_ns
                return self._count_inside(door, read.at_ns, now_ns,
                                          f"{read.name} badged out")
            vault.inside[read.name] = read.badge_hash
            return self._count_inside(door, read.at_ns, now_ns, f"{read.name} badged in")
        door_id = self._door_of_contact.get(reading.sensor)
        is_open = reading.values.get("open")
        if door_id is None or not isinstance(is_open, bool):
            return []
        vault = self._vaults[door_id]
        if is_open:
            if vault.open_since is None:
                vault.open_since = reading.at_ns
            return self._check(door_id, now_ns)
        vault.open_since = None
        vault.checked = False
        if vault.violated:
            vault.violated = False
            return [self._transition(TransitionKind.RESOLVED, "two_person", door_id, now_ns,
                                     f"door {door_id} closed after the two-person violation",
                                     {"door": door_id, "open": False})]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Judge confirmed openings; fire for one person alone too long."""
        out: list[Outcome] = []
        for door, vault in self._vaults.items():
            out.extend(self._check(door, now_ns))
            self._prune(vault, now_ns)
            if (vault.alone_since is not None and not vault.alone
                    and now_ns - vault.alone_since > self._alone_ns and len(vault.inside) == 1):
                vault.alone = True
                (name, badge_hash), = vault.inside.items()
                alone = format_duration(self._alone_ns / _NS)
                out.append(self._transition(
                    TransitionKind.FIRING, "two_person_alone", door, now_ns,
                    f"one person alone in the vault for more than {alone}: {name}"
                    f" (door {door})",
                    {"door": door, "person": name, "badge_hash": badge_hash}))
        return out

    def snapshot(self) -> dict[str, Any]:
        """Each vault door's reads, opening, persons inside and firing alerts."""
        return {"vaults": {d: v.to_json() for d, v in self._vaults.items()}}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back each vault door's state."""
        for door, data in state.get("vaults", {}).items():
            if door in self._vaults:
                self._vaults[door] = _Vault.from_json(data)

    def _prune(self, vault: _Vault, now_ns: int) -> None:
        # Reads older than the window before the (pending) opening can never count again.
        ref = vault.open_since if vault.open_since is not None and not vault.checked else now_ns
        vault.badged = [b for b in vault.badged if b[0] >= ref - self._window_ns]

    def _check(self, door: str, now_ns: int) -> list[Outcome]:
        vault = self._vaults[door]
        since = vault.open_since
        if since is None or vault.checked or now_ns - since < self._debounce_ns:
            return []
        vault.checked = True
        if vault.inside:
            return []  # someone inside lets a colleague in or goes out: not an entry
        if (vault.left_at is not None and since - vault.left_at <= self._window_ns
                and not vault.badged):
            vault.left_at = None
            return []  # the last ones out, who badged out just before
        vault.left_at = None
        persons: dict[str, str] = {}
        for at_ns, name, badge_hash in vault.badged:
            if at_ns >= since - self._window_ns:
                persons.setdefault(name, badge_hash)
        vault.badged.clear()
        vault.inside = persons
        out: list[Outcome] = []
        if len(persons) < 2:
            vault.violated = True
            window = format_duration(self._window_ns / _NS)
            who = ("no authorised badge" if not persons
                   else f"only {', '.join(persons)} badged")
            out.append(self._transition(
                TransitionKind.FIRING, "two_person", door, now_ns,
                f"two-person rule violated: door {door} opened with {who} in the {window}"
                " before",
                {"door": door, "open": True, "persons": ", ".join(persons),
                 "badge_hashes": ", ".join(persons.values()), "badges": len(persons)}))
        out.extend(self._count_inside(door, since, now_ns, ""))
        return out

    def _count_inside(self, door: str, at_ns: int, now_ns: int, why: str) -> list[Outcome]:
        vault = self._vaults[door]
        if len(vault.inside) == 1:
            if vault.alone_since is None:
                vault.alone_since = at_ns
            return []
        vault.alone_since = None
        if not vault.alone:
            return []
        vault.alone = False
        return [self._transition(TransitionKind.RESOLVED, "two_person_alone", door, now_ns,
                                 f"no longer one person alone in the vault: {why}"
                                 f" (door {door})",
                                 {"door": door, "inside": len(vault.inside)})]

    def _transition(self, kind: TransitionKind, rule: str, door_id: str, now_ns: int,
                    text: str, facts: Mapping[str, FieldValue]) -> Transition:
        storehouse = self._depot.storehouses[self._depot.doors[door_id].storehouse]
        return Transition(
            kind=kind, rule=rule, subject=door_id, severity=self._severity, at_ns=now_ns,
            storehouse=storehouse.id, summary=f"{storehouse.name}: {text}", facts=facts,
        )
