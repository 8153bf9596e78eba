"""Access-control rules: badge verdicts, visitors and escorts, forced doors, the two-person rule."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from depot_fixtures import NS, local_ns

from daemon.config.loading import load_config
from daemon.vocabulary.readings import FieldValue, Reading, Severity, Transition
from rules.badge_access import BadgeAccessRuleConfig
from rules.base import Fact, Outcome, Rule
from rules.depot import Depot, Person
from rules.door_forced import DoorForcedRuleConfig
from rules.kinds import RULE_KINDS
from rules.two_person import TwoPersonRuleConfig

SCENARIO_DEPOT = Path(__file__).parent / "scenarios" / "depot.yaml"
T0 = local_ns(2026, 11, 25, 23)  # a Wednesday night: SH1 armed, VLT always armed
ANNA, BEN, CARL, DANA, EVA = "1001", "1002", "1003", "1004", "2001"  # Dana expired, Eva visitor
UNKNOWN, LATER = "9999", "1005"
BADGES = (ANNA, BEN, CARL, DANA, EVA, UNKNOWN, LATER)

ACCESS_KINDS = (BadgeAccessRuleConfig(), DoorForcedRuleConfig(), TwoPersonRuleConfig())

Event = tuple[float, str, dict[str, FieldValue]]


@functools.cache
def depot() -> Depot:
    """The scenario depot, plus one person whose badge becomes valid tomorrow."""
    base = load_config(SCENARIO_DEPOT).depot()
    later = Person("Pte. Finn Gruber", frozenset({"SH1"}), valid_from_ns=T0 + 86400 * NS)
    return dataclasses.replace(base, roster={**base.roster, LATER: later})


def badge(at_s: float, reader: str, number: str) -> Event:
    return (at_s, reader, {"badge": number})


def door(at_s: float, contact: str, is_open: bool) -> Event:
    return (at_s, contact, {"open": is_open})


def run(kinds: Sequence[Any], events: Sequence[Event], end_s: int,
        restart_at_s: float | None = None) -> list[tuple[float, Outcome]]:
    """Feed events in time order with a tick every whole second; optionally restart once."""
    rules: list[Rule] = [k.build(depot()) for k in kinds]
    steps = sorted([(at, 0, i) for i, (at, _, _) in enumerate(events)]
                   + [(float(s), 1, -1) for s in range(end_s + 1)])
    out: list[tuple[float, Outcome]] = []
    for at_s, is_tick, index in steps:
        if restart_at_s is not None and at_s >= restart_at_s:
            restart_at_s = None
            # Through JSON, as the daemon's state file does.
            states = [json.loads(json.dumps(rule.snapshot())) for rule in rules]
            rules = [k.build(depot()) for k in kinds]
            for rule, state in zip(rules, states, strict=True):
                rule.restore(state)
        now = T0 + round(at_s * NS)
        if is_tick:
            outcomes = [o for rule in rules for o in rule.tick(now)]
        else:
            _, sensor, values = events[index]
            reading = Reading(sensor=sensor, at_ns=now, values=values)
            outcomes = [o for rule in rules for o in rule.observe(reading, now)]
        out += [(at_s, o) for o in outcomes]
    return out


def alerts(out: Sequence[tuple[float, Outcome]]) -> list[tuple[float, str, str]]:
    return [(at, o.key, o.kind.value) for at, o in out if isinstance(o, Transition)]


def access_facts(out: Sequence[tuple[float, Outcome]]) -> list[tuple[float, str, str, str]]:
    """(read time in s, door, result, person) of every `access` fact."""
    return [((o.at_ns - T0) / NS, o.tags["door"], o.tags["result"], str(o.fields["person"]))
            for _, o in out if isinstance(o, Fact) and o.measurement == "access"]


def transition(out: Sequence[tuple[float, Outcome]], key: str) -> Transition:
    return next(o for _, o in out if isinstance(o, Transition) and o.key == key)


# --- badge_access -----------------------------------------------------------------------------

BADGE_CASES: list[tuple[str, list[Event], list[tuple[float, str, str]],
                        list[tuple[float, str, str, str]]]] = [
    ("granted",
     [badge(0, "sh1-reader1", ANNA)],
     [],
     [(0, "SH1-D1", "granted", "Sgt. Anna Berger")]),
    ("unknown badge",
     [badge(0, "sh1-reader1", UNKNOWN)],
     [(0, "badge_access.SH1-D1", "firing")],
     [(0, "SH1-D1", "unknown", "")]),
    ("expired",
     [badge(0, "sh2-reader1", DANA)],
     [(0, "badge_access.SH2-D1", "firing")],
     [(0, "SH2-D1", "expired", "Lt. Dana Ertl")]),
    ("not yet valid",
     [badge(0, "sh1-reader1", LATER)],
     [(0, "badge_access.SH1-D1", "firing")],
     [(0, "SH1-D1", "not_yet_valid", "Pte. Finn Gruber")]),
    ("zone not allowed",
     [badge(0, "vlt-reader1", CARL)],
     [(0, "badge_access.VLT-D1", "firing")],
     [(0, "VLT-D1", "zone_not_allowed", "Pte. Carl Dorn")]),
    ("visitor outside their zones",
     [badge(0, "vlt-reader1", ANNA), badge(5, "vlt-reader1", EVA)],
     [(5, "badge_access.VLT-D1", "firing")],
     [(0, "VLT-D1", "granted", "Sgt. Anna Berger"),
      (5, "VLT-D1", "zone_not_allowed", "Visitor Eva Fink")]),
    ("visitor escorted, escort first",
     [badge(0, "sh1-reader1", CARL), badge(60, "sh1-reader1", EVA)],
     [],
     [(0, "SH1-D1", "granted", "Pte. Carl Dorn"), (60, "SH1-D1", "granted", "Visitor Eva Fink")]),
    ("visitor escorted, escort after",
     [badge(0, "sh1-reader1", EVA), badge(60, "sh1-reader1", CARL)],
     [],
     # The visitor's fact is written once the escort is seen, stamped with the visitor's read.
     [(60, "SH1-D1", "granted", "Pte. Carl Dorn"), (0, "SH1-D1", "granted", "Visitor Eva Fink")]),
    ("visitor alone",
     [badge(0, "sh1-reader1", EVA)],
     [(61, "visitor_escort.SH1-D1", "firing")],
     [(0, "SH1-D1", "escort_missing", "Visitor Eva Fink")]),
    ("escort 61 s before the visitor",
     [badge(0, "sh1-reader1", CARL), badge(61, "sh1-reader1", EVA)],
     [(122, "visitor_escort.SH1-D1", "firing")],
     [(0, "SH1-D1", "granted", "Pte. Carl Dorn"),
      (61, "SH1-D1", "escort_missing", "Visitor Eva Fink")]),
    ("escort 61 s after the visitor",
     [badge(0, "sh1-reader1", EVA), badge(61, "sh1-reader1", CARL)],
     [(61, "visitor_escort.SH1-D1", "firing")],
     [(61, "SH1-D1", "granted", "Pte. Carl Dorn"),
      (0, "SH1-D1", "escort_missing", "Visitor Eva Fink")]),
    ("escort at another door",
     [badge(0, "sh2-reader1", ANNA), badge(5, "sh1-reader1", EVA)],
     [(66, "visitor_escort.SH1-D1", "firing")],
     [(0, "SH2-D1", "granted", "Sgt. Anna Berger"),
      (5, "SH1-D1", "escort_missing", "Visitor Eva Fink")]),
    ("an expired badge escorts nobody",
     [badge(0, "sh1-reader1", DANA), badge(5, "sh1-reader1", EVA)],
     [(0, "badge_access.SH1-D1", "firing"), (66, "visitor_escort.SH1-D1", "firing")],
     [(0, "SH1-D1", "expired", "Lt. Dana Ertl"),
      (5, "SH1-D1", "escort_missing", "Visitor Eva Fink")]),
    ("refused reads extend one alert",
     [badge(0, "sh1-reader1", UNKNOWN), badge(100, "sh1-reader1", DANA)],
     [(0, "badge_access.SH1-D1", "firing")],
     [(0, "SH1-D1", "unknown", ""), (100, "SH1-D1", "expired", "Lt. Dana Ertl")]),
]


@pytest.mark.parametrize(("events", "expected_alerts", "expected_facts"),
                         [c[1:] for c in BADGE_CASES], ids=[c[0] for c in BADGE_CASES])
def test_badge_access(events: list[Event], expected_alerts: list[tuple[float, str, str]],
                      expected_facts: list[tuple[float, str, str, str]]) -> None:
    out = run([BadgeAccessRuleConfig()], events, 200)
    assert alerts(out) == expected_alerts
    assert access_facts(out) == expected_facts


@pytest.mark.parametrize(("events", "expected"), [
    ([badge(0, "sh1-reader1", UNKNOWN)],
     [(0, "badge_access.SH1-D1", "firing"), (300, "badge_access.SH1-D1", "resolved")]),
    ([badge(0, "sh1-reader1", UNKNOWN), badge(100, "sh1-reader1", DANA)],
     [(0, "badge_access.SH1-D1", "firing"), (400, "badge_access.SH1-D1", "resolved")]),
    ([badge(0, "sh1-reader1", EVA)],
     [(61, "visitor_escort.SH1-D1", "firing"), (361, "visitor_escort.SH1-D1", "resolved")]),
])
def test_access_alerts_clear_300_s_after_the_last_event(
        events: list[Event], expected: list[tuple[float, str, str]]) -> None:
    out = run([BadgeAccessRuleConfig()], events, 500)
    assert alerts(out) == expected
    assert transition(out, expected[1][1]).kind.value == "firing"


def test_refused_badge_alert_says_what_and_where_without_the_number() -> None:
    out = run([BadgeAccessRuleConfig()], [badge(0, "sh2-reader1", DANA)], 1)
    fired = transition(out, "badge_access.SH2-D1")
    assert fired.severity is Severity.ALARM
    assert fired.summary == ("Propellant magazine 2: expired badge of Lt. Dana Ertl refused at"
                             " door SH2-D1")
    assert fired.facts == {"door": "SH2-D1", "person": "Lt. Dana Ertl",
                           "badge_hash": depot().badge_hash(DANA), "result": "expired"}


def test_access_fact_is_ready_for_influxdb() -> None:
    out = run([BadgeAccessRuleConfig()], [badge(3, "sh1-reader1", UNKNOWN)], 3)
    assert [o for _, o in out if isinstance(o, Fact)] == [Fact(
        measurement="access", tags={"door": "SH1-D1", "result": "unknown"},
        fields={"person": "", "badge_hash": depot().badge_hash(UNKNOWN)}, at_ns=T0 + 3 * NS)]


def test_unescorted_visitor_alert() -> None:
    out = run([BadgeAccessRuleConfig()], [badge(0, "sh1-reader1", EVA)], 61)
    fired = transition(out, "visitor_escort.SH1-D1")
    assert fired.summary == ("Small-arms store 1: visitor without escort: Visitor Eva Fink badged"
                             " at door SH1-D1, no roster member within 60 s")
    assert fired.facts["result"] == "escort_missing"


def test_reads_that_are_no_badge_reads_are_ignored() -> None:
    events: list[Event] = [(0, "sh1-reader1", {"heartbeat": True}),
                           (1, "sh1-door1", {"badge": ANNA}), (2, "sh1-reader1", {"badge": ""})]
    assert run(ACCESS_KINDS, events, 5) == []


# --- door_forced ------------------------------------------------------------------------------

FORCED_CASES: list[tuple[str, list[Event], list[tuple[float, str, str]]]] = [
    ("badged entry",
     [badge(0, "sh1-reader1", CARL), door(5, "sh1-door1", True), door(10, "sh1-door1", False)],
     []),
    ("no badge",
     [door(5, "sh1-door1", True), door(10, "sh1-door1", False)],
     [(6, "door_forced.SH1-D1", "firing"), (10, "door_forced.SH1-D1", "resolved")]),
    ("badge 30 s before",
     [badge(0, "sh1-reader1", CARL), door(30, "sh1-door1", True)],
     []),
    ("badge 31 s before",
     [badge(0, "sh1-reader1", CARL), door(31, "sh1-door1", True)],
     [(32, "door_forced.SH1-D1", "firing")]),
    ("refused badge",
     [badge(0, "sh2-reader1", DANA), door(5, "sh2-door1", True)],
     [(6, "door_forced.SH2-D1", "firing")]),
    ("badge at another door",
     [badge(0, "sh2-reader1", ANNA), door(5, "sh1-door1", True)],
     [(6, "door_forced.SH1-D1", "firing")]),
    ("badge read reaches the gateway just after the contact",
     [door(5, "sh1-door1", True), badge(5.2, "sh1-reader1", CARL)],
     []),
    ("contact bounce shorter than the debounce",
     [door(5, "sh1-door1", True), door(5.2, "sh1-door1", False)],
     []),
    ("door without a reader",
     [door(5, "sh1-door2", True)],
     []),
    ("each opening judged once; a later badge does not excuse it",
     [door(5, "sh1-door1", True), badge(8, "sh1-reader1", CARL), door(9, "sh1-door1", True),
      door(12, "sh1-door1", False), door(20, "sh1-door1", True)],
     [(6, "door_forced.SH1-D1", "firing"), (12, "door_forced.SH1-D1", "resolved")]),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in FORCED_CASES],
                         ids=[c[0] for c in FORCED_CASES])
def test_door_forced(events: list[Event], expected: list[tuple[float, str, str]]) -> None:
    assert alerts(run([DoorForcedRuleConfig()], events, 60)) == expected


def test_door_forced_alert() -> None:
    out = run([DoorForcedRuleConfig()], [door(5, "vlt-door1", True)], 6)
    fired = transition(out, "door_forced.VLT-D1")
    assert fired.severity is Severity.ALARM
    assert fired.summary == ("Weapons vault: door VLT-D1 forced: opened with no granted badge"
                             " in the 30 s before")
    assert fired.facts == {"door": "VLT-D1", "open": True}


# --- two_person -------------------------------------------------------------------------------

VLT = "vlt-reader1"
ENTER = [badge(0, VLT, ANNA), badge(10, VLT, BEN), door(20, "vlt-door1", True),
         door(25, "vlt-door1", False)]

TWO_PERSON_CASES: list[tuple[str, list[Event], list[tuple[float, str, str]]]] = [
    ("two distinct persons", ENTER, []),
    ("the same person twice",
     [badge(0, VLT, ANNA), badge(10, VLT, ANNA), door(20, "vlt-door1", True),
      door(25, "vlt-door1", False)],
     [(21, "two_person.VLT-D1", "firing"), (25, "two_person.VLT-D1", "resolved"),
      (51, "two_person_alone.VLT-D1", "firing")]),
    ("nobody badged",
     [door(20, "vlt-door1", True), door(25, "vlt-door1", False)],
     [(21, "two_person.VLT-D1", "firing"), (25, "two_person.VLT-D1", "resolved")]),
    ("first badge 61 s before opening",
     [badge(0, VLT, ANNA), badge(30, VLT, BEN), door(61, "vlt-door1", True)],
     # Whoever badged for a one-person entry is recorded inside, alone.
     [(62, "two_person.VLT-D1", "firing"), (92, "two_person_alone.VLT-D1", "firing")]),
    ("first badge 60 s before opening",
     [badge(0, VLT, ANNA), badge(30, VLT, BEN), door(60, "vlt-door1", True)],
     []),
    ("a refused badge does not count",
     [badge(0, VLT, ANNA), badge(10, VLT, CARL), door(20, "vlt-door1", True)],
     [(21, "two_person.VLT-D1", "firing"), (51, "two_person_alone.VLT-D1", "firing")]),
    ("an expired badge does not count",
     [badge(0, VLT, ANNA), badge(10, VLT, DANA), door(20, "vlt-door1", True)],
     [(21, "two_person.VLT-D1", "firing"), (51, "two_person_alone.VLT-D1", "firing")]),
    ("one left alone after the other badges out",
     [*ENTER, badge(100, VLT, BEN), door(102, "vlt-door1", True), door(105, "vlt-door1", False),
      badge(140, VLT, ANNA), door(142, "vlt-door1", True), door(145, "vlt-door1", False)],
     [(131, "two_person_alone.VLT-D1", "firing"), (140, "two_person_alone.VLT-D1", "resolved")]),
    ("alone exactly 30 s is not too long",
     [*ENTER, badge(100, VLT, BEN), badge(130, VLT, ANNA), door(132, "vlt-door1", True)],
     []),
    ("both leave together: their way out is not an entry",
     [*ENTER, badge(100, VLT, BEN), badge(105, VLT, ANNA), door(107, "vlt-door1", True),
      door(110, "vlt-door1", False)],
     []),
    ("a second person badging in ends the alone alarm",
     [*ENTER, badge(100, VLT, BEN), badge(150, VLT, BEN)],
     [(131, "two_person_alone.VLT-D1", "firing"), (150, "two_person_alone.VLT-D1", "resolved")]),
    ("someone alone entering after the others left is judged",
     [*ENTER, badge(100, VLT, BEN), badge(105, VLT, ANNA), badge(110, VLT, BEN),
      door(112, "vlt-door1", True)],
     [(113, "two_person.VLT-D1", "firing"), (143, "two_person_alone.VLT-D1", "firing")]),
    ("an opening long after the last left is judged",
     [*ENTER, badge(100, VLT, BEN), badge(105, VLT, ANNA), door(170, "vlt-door1", True)],
     [(171, "two_person.VLT-D1", "firing")]),
    ("a door without the two-person rule",
     [badge(0, "sh1-reader1", ANNA), door(5, "sh1-door1", True)],
     []),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in TWO_PERSON_CASES],
                         ids=[c[0] for c in TWO_PERSON_CASES])
def test_two_person(events: list[Event], expected: list[tuple[float, str, str]]) -> None:
    assert alerts(run([TwoPersonRuleConfig()], events, 200)) == expected


def test_two_person_alerts_say_who() -> None:
    events = [badge(0, VLT, BEN), badge(10, VLT, BEN), door(20, "vlt-door1", True)]
    out = run([TwoPersonRuleConfig()], events, 60)
    violated = transition(out, "two_person.VLT-D1")
    assert violated.severity is Severity.CRITICAL
    assert violated.summary == ("Weapons vault: two-person rule violated: door VLT-D1 opened with"
                                " only Cpl. Ben Kovac badged in the 60 s before")
    assert violated.facts == {"door": "VLT-D1", "open": True, "persons": "Cpl. Ben Kovac",
                              "badge_hashes": depot().badge_hash(BEN), "badges": 1}
    alone = transition(out, "two_person_alone.VLT-D1")
    assert alone.summary == ("Weapons vault: one person alone in the vault for more than 30 s:"
                             " Cpl. Ben Kovac (door VLT-D1)")
    assert alone.facts == {"door": "VLT-D1", "person": "Cpl. Ben Kovac",
                           "badge_hash": depot().badge_hash(BEN)}


# --- all access rules together ----------------------------------------------------------------

ALL_CASES = [(c[0], c[1]) for c in BADGE_CASES + FORCED_CASES + TWO_PERSON_CASES]


def test_all_cases_together_alternate_per_key() -> None:
    for _, events in ALL_CASES:
        firing: set[str] = set()
        for _, o in run(ACCESS_KINDS, events, 420):
            if isinstance(o, Transition):
                assert (o.key in firing) == (o.kind.value == "resolved"), o
                firing ^= {o.key}


@pytest.mark.parametrize("events", [c[1] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES])
def test_restart_mid_scenario_changes_nothing(events: list[Event]) -> None:
    without = run(ACCESS_KINDS, events, 420)
    last = int(max(at for at, _, _ in events)) + 2
    for restart_at_s in [*range(0, last), 61.5, 131.5]:
        assert run(ACCESS_KINDS, events, 420, restart_at_s=restart_at_s) == without, restart_at_s


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


@pytest.mark.parametrize("events", [c[1] for c in ALL_CASES], ids=[c[0] for c in ALL_CASES])
def test_no_badge_number_in_any_outcome_or_snapshot(events: list[Event]) -> None:
    for number in BADGES:  # the hashes themselves must not happen to spell a number
        assert all(number not in depot().badge_hash(b) for b in BADGES)
    # Timestamps are blanked: nanoseconds since the epoch may contain any digits.
    texts = [str(dataclasses.replace(o, at_ns=0)) for _, o in run(ACCESS_KINDS, events, 420)]
    rules = [k.build(depot()) for k in ACCESS_KINDS]
    for at_s, sensor, values in events:
        now = T0 + round(at_s * NS)
        for rule in rules:
            rule.observe(Reading(sensor=sensor, at_ns=now, values=values), now)
    texts += [s for rule in rules for s in _strings(rule.snapshot())]
    for number in BADGES:
        assert not [t for t in texts if number in t], number


def test_access_rule_kinds_are_registered_with_defaults() -> None:
    for kind in (BadgeAccessRuleConfig, DoorForcedRuleConfig, TwoPersonRuleConfig):
        assert kind in RULE_KINDS
        assert kind.__doc__
        assert type(kind().build(depot())).__doc__


@pytest.mark.parametrize(("kind", "defaults"), [
    (BadgeAccessRuleConfig, {"severity": "alarm", "clear_after_s": 300.0,
                             "escort_window_s": 60.0}),
    (DoorForcedRuleConfig, {"severity": "alarm", "window_s": 30.0, "debounce_ms": 400.0}),
    (TwoPersonRuleConfig, {"severity": "critical", "window_s": 60.0, "alone_s": 30.0,
                           "debounce_ms": 400.0}),
])
def test_pssm_defaults(kind: Any, defaults: dict[str, object]) -> None:
    assert kind().model_dump(exclude={"type", "enabled"}) == defaults
    with pytest.raises(ValueError, match="extra"):
        kind.model_validate({"window_minutes": 1})
