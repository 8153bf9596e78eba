"""Water in a store: the `water_leak` rule (pure, with a hypothesis property) and the device
watch no longer counting a leak probe's `water_leak` as an unhandled field."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.cli.replay import load_scenario
from daemon.ingest.devices import DeviceWatch
from daemon.vocabulary.readings import Reading, Transition, TransitionKind
from rules.engine import Engine
from rules.water_leak import WaterLeakRule, WaterLeakRuleConfig

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_800_000_000 * NS
SCENARIO = Path(__file__).parent / "scenarios" / "water-leak-store-floor.yaml"
DEPOT = load_scenario(SCENARIO)[1].depot()
PROBE = "sh1-leak1"


def wet(rule: WaterLeakRule, at: int, water: bool, sensor: str = PROBE) -> list[Transition]:
    out = rule.observe(Reading(sensor, at, {"water_leak": water}), at)
    return [t for t in out if isinstance(t, Transition)]


def keys(transitions: list[Transition]) -> list[tuple[str, str]]:
    return [(t.key, t.kind.value) for t in transitions]


def test_water_alarms_after_the_debounce_and_resolves_when_dry() -> None:
    rule = WaterLeakRuleConfig().build(DEPOT)
    assert wet(rule, T0, True) == []
    fired = wet(rule, T0 + 500 * MS, True)
    assert keys(fired) == [("water_leak.sh1-leak1", "firing")]
    assert fired[0].severity.value == "alarm"
    assert fired[0].storehouse == "SH1" and "Ammunition store 1" in fired[0].summary
    assert wet(rule, T0 + NS, True) == []  # still wet: not raised twice
    assert keys(wet(rule, T0 + 2 * NS, False)) == [("water_leak.sh1-leak1", "resolved")]
    assert wet(rule, T0 + 3 * NS, False) == []


def test_a_blip_shorter_than_the_debounce_is_not_processed() -> None:
    rule = WaterLeakRuleConfig().build(DEPOT)
    assert wet(rule, T0, True) == []
    assert wet(rule, T0 + 200 * MS, False) == []
    assert rule.tick(T0 + NS) == []


def test_a_tick_confirms_water_that_outlasted_the_debounce() -> None:
    engine = Engine([("water_leak", WaterLeakRuleConfig().build(DEPOT))], DEPOT)
    engine.observe(Reading(PROBE, T0, {"water_leak": True}), T0)
    assert engine.wakes == [T0 + 400 * MS]
    assert [t.key for t in engine.tick(T0 + 400 * MS).transitions] == ["water_leak.sh1-leak1"]


def test_water_from_a_sensor_of_another_kind_is_not_this_rules() -> None:
    rule = WaterLeakRuleConfig().build(DEPOT)
    assert wet(rule, T0, True, sensor="c1") == []
    assert rule.tick(T0 + 10 * NS) == []


def test_a_probes_water_leak_is_handled_a_climate_sensors_is_not() -> None:
    faults: list[tuple[str, str, bool]] = []
    watch = DeviceWatch(DEPOT, lambda f, s, a, _summary, _now: faults.append((f, s, a)))
    kept = watch.sort([Reading(PROBE, T0, {"water_leak": True, "battery_pct": 90.0})], T0)
    assert [r.values for r in kept] == [{"water_leak": True, "battery_pct": 90.0}]
    assert watch.unhandled == {} and faults == []
    # The no-silent-loss check still holds for kinds whose rules do not read it.
    watch.sort([Reading("c1", T0, {"temperature_c": 18.0, "water_leak": True})], T0)
    assert watch.unhandled == {"c1": {"water_leak": 1}}
    assert faults == [("unhandled_field", "c1", True)]


# (milliseconds forward, report: True wet / False dry / None a tick)
script = st.lists(st.tuples(st.integers(min_value=0, max_value=1500),
                            st.sampled_from([True, False, None])), max_size=40)


def run(steps: list[tuple[int, bool | None]], restart_at: int | None = None
        ) -> list[tuple[int, str]]:
    rule = WaterLeakRuleConfig().build(DEPOT)
    now, out = T0, []
    for index, (step_ms, report) in enumerate(steps):
        if index == restart_at:
            saved = json.loads(json.dumps(rule.snapshot()))
            rule = WaterLeakRuleConfig().build(DEPOT)
            rule.restore(saved)
        now += step_ms * MS
        made = rule.tick(now) if report is None else rule.observe(
            Reading(PROBE, now, {"water_leak": report}), now)
        out += [(now, t.kind.value) for t in made if isinstance(t, Transition)]
    return out


@settings(max_examples=300, deadline=None)
@given(script, st.integers(min_value=0, max_value=40))
def test_alarm_only_for_water_that_stood_the_debounce_and_always_resolved_by_dry(
        steps: list[tuple[int, bool | None]], restart_at: int) -> None:
    made = run(steps)
    assert made == run(steps, restart_at)  # a restart anywhere changes nothing
    # The model: an alarm once water has stood 400 ms (seen at a report or a tick), resolved
    # by the first dry report, and nothing else.
    now, since, firing = T0, None, False
    expected: list[tuple[int, str]] = []
    for step_ms, report in steps:
        now += step_ms * MS
        if report is False:
            since = None
            if firing:
                expected.append((now, TransitionKind.RESOLVED.value))
            firing = False
            continue
        if report is True and since is None:
            since = now
        if since is not None and not firing and now - since >= 400 * MS:
            firing = True
            expected.append((now, TransitionKind.FIRING.value))
    assert made == expected
