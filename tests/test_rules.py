"""The rule engine core: pure, deterministic, PSSM.md defaults."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from depot_fixtures import NS, config, local_ns
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.alerts.book import AlertBook
from daemon.config.loading import load_config
from daemon.vocabulary.readings import Reading, Transition, TransitionKind
from rules.climate import ClimateRuleConfig
from rules.door_armed import DoorArmedRuleConfig
from rules.engine import Engine, Verdict
from rules.kinds import RULE_KINDS
from rules.sensor_silent import SensorSilentRuleConfig
from rules.tamper import TamperRuleConfig

T0 = local_ns(2026, 11, 25, 12)  # a Wednesday noon: SH1 disarmed


def engine(*kinds: object) -> Engine:
    depot = config().depot()
    return Engine([(k.type, k.build(depot)) for k in kinds], depot)  # type: ignore[attr-defined]


def reading(sensor: str, at: int, **values: float | bool) -> Reading:
    return Reading(sensor=sensor, at_ns=at, values=values)


def keys(verdict: Verdict) -> list[tuple[str, str]]:
    return [(t.key, t.kind.value) for t in verdict.transitions]


def quiet(verdict: Verdict) -> bool:
    return not verdict.transitions and not verdict.facts


def test_temperature_warning_needs_30_minutes_above_30c() -> None:
    e = engine(ClimateRuleConfig())
    assert e.observe(reading("clim1", T0, temperature_c=31.0), T0).transitions == []
    assert e.tick(T0 + 29 * 60 * NS).transitions == []
    fired = e.tick(T0 + 30 * 60 * NS)
    assert keys(fired) == [("temperature_warning.clim1", "firing")]
    assert "31.0 °C above 30 °C" in fired.transitions[0].summary
    assert fired.transitions[0].storehouse == "SH1"


def test_temperature_dip_below_limit_restarts_the_sustain_time() -> None:
    e = engine(ClimateRuleConfig())
    e.observe(reading("clim1", T0, temperature_c=31.0), T0)
    e.observe(reading("clim1", T0 + 20 * 60 * NS, temperature_c=29.5), T0 + 20 * 60 * NS)
    t = T0 + 21 * 60 * NS
    e.observe(reading("clim1", t, temperature_c=31.0), t)
    assert e.tick(T0 + 40 * 60 * NS).transitions == []
    assert keys(e.tick(t + 30 * 60 * NS)) == [("temperature_warning.clim1", "firing")]


def test_hysteresis_holds_the_alert_until_one_degree_below() -> None:
    e = engine(ClimateRuleConfig(temperature_warning_for_s=0))
    assert keys(e.observe(reading("clim1", T0, temperature_c=30.5), T0)) == [
        ("temperature_warning.clim1", "firing")]
    assert e.observe(reading("clim1", T0 + NS, temperature_c=29.5), T0 + NS).transitions == []
    assert keys(e.observe(reading("clim1", T0 + 2 * NS, temperature_c=29.0), T0 + 2 * NS)) == [
        ("temperature_warning.clim1", "resolved")]


def test_critical_temperature_needs_two_consecutive_samples() -> None:
    e = engine(ClimateRuleConfig())
    assert e.observe(reading("clim1", T0, temperature_c=51.0), T0).transitions == []
    assert quiet(e.observe(reading("clim1", T0 + 60 * NS, temperature_c=45.0), T0 + 60 * NS))
    assert quiet(e.observe(reading("clim1", T0 + 120 * NS, temperature_c=51.0), T0 + 120 * NS))
    out = e.observe(reading("clim1", T0 + 180 * NS, temperature_c=52.0), T0 + 180 * NS)
    assert ("temperature_critical.clim1", "firing") in keys(out)


@pytest.mark.parametrize(("sensor", "humidity", "fires"), [
    ("clim1", 69.0, False),  # standard store: alarm above 70 % for 24 h
    ("clim1", 71.0, True),
    ("clim2", 61.0, True),  # propellant store: 60 % (UFC 3-410-03FA)
])
def test_humidity_alarm_limits_by_climate_class(sensor: str, humidity: float,
                                                 fires: bool) -> None:
    e = engine(ClimateRuleConfig())
    e.observe(reading(sensor, T0, humidity_pct=humidity), T0)
    out = e.tick(T0 + 24 * 3600 * NS)
    assert ((f"humidity_alarm.{sensor}", "firing") in keys(out)) == fires


@pytest.mark.parametrize(("when", "armed"), [
    (local_ns(2026, 11, 25, 12), False),  # Wednesday noon
    (local_ns(2026, 11, 25, 18, 0), True),  # Wednesday 18:00, window opens
    (local_ns(2026, 11, 26, 6, 59), True),  # Thursday early: window from Wednesday
    (local_ns(2026, 11, 26, 7, 0), False),
    (local_ns(2026, 11, 28, 3, 0), True),  # Saturday 03:00: Friday's window crosses midnight
    (local_ns(2026, 11, 28, 12, 0), False),  # Saturday noon: no window
    (local_ns(2026, 12, 25, 12, 0), True),  # holiday: armed all day
])
def test_door_opened_while_armed(when: int, armed: bool) -> None:
    e = engine(DoorArmedRuleConfig())
    assert quiet(e.observe(reading("door1", when, open=True), when))
    out = e.tick(when + NS // 2)
    assert keys(out) == ([("door_armed.SH1-D1", "firing")] if armed else [])


def test_door_opening_shorter_than_the_debounce_is_ignored() -> None:
    e = engine(DoorArmedRuleConfig())
    night = local_ns(2026, 11, 25, 23)
    e.observe(reading("door1", night, open=True), night)
    e.observe(reading("door1", night + NS // 4, open=False), night + NS // 4)
    assert quiet(e.tick(night + NS))


def test_door_armed_alarm_is_not_repeated_and_resolves_on_close() -> None:
    e = engine(DoorArmedRuleConfig())
    night = local_ns(2026, 11, 25, 23)
    e.observe(reading("door1", night, open=True), night)
    assert len(e.tick(night + NS).transitions) == 1
    assert e.observe(reading("door1", night + NS, open=True), night + NS).transitions == []
    assert quiet(e.tick(night + 2 * NS))
    assert keys(e.observe(reading("door1", night + 3 * NS, open=False), night + 3 * NS)) == [
        ("door_armed.SH1-D1", "resolved")]


def test_door_left_open_when_arming_begins_alarms() -> None:
    e = engine(DoorArmedRuleConfig())
    before = local_ns(2026, 11, 25, 17, 50)
    e.observe(reading("door1", before, open=True), before)
    assert quiet(e.tick(before + 60 * NS))
    assert keys(e.tick(local_ns(2026, 11, 25, 18, 0))) == [("door_armed.SH1-D1", "firing")]


def test_storehouse_without_schedule_is_always_armed() -> None:
    e = engine(DoorArmedRuleConfig())
    e.observe(reading("door2", T0, open=True), T0)
    assert keys(e.tick(T0 + NS)) == [("door_armed.SH2-D1", "firing")]


def test_tamper_fires_armed_or_not_after_the_debounce() -> None:
    e = engine(TamperRuleConfig())
    assert quiet(e.observe(reading("door1", T0, tamper=True), T0))
    assert keys(e.observe(reading("door1", T0 + NS, tamper=True), T0 + NS)) == [
        ("tamper.door1", "firing")]
    assert quiet(e.tick(T0 + 2 * NS))
    assert keys(e.observe(reading("door1", T0 + 3 * NS, tamper=False), T0 + 3 * NS)) == [
        ("tamper.door1", "resolved")]


def test_sensor_silent_per_supervision_class() -> None:
    e = engine(SensorSilentRuleConfig())
    assert quiet(e.tick(T0))
    assert [k for k, _ in keys(e.tick(T0 + 11 * NS))] == ["sensor_silent.door2"]  # wired 10 s
    assert [k for k, _ in keys(e.tick(T0 + 181 * NS))] == ["sensor_silent.door1"]  # radio
    assert sorted(k for k, _ in keys(e.tick(T0 + 901 * NS))) == [
        "sensor_silent.clim1", "sensor_silent.clim2"]
    t = T0 + 1000 * NS
    assert keys(e.observe(reading("clim1", t), t)) == [("sensor_silent.clim1", "resolved")]


def test_every_rule_kind_has_a_docstring_and_default_config() -> None:
    depot = config().depot()
    for kind in RULE_KINDS:
        assert kind.__doc__
        rule = kind().build(depot)
        assert type(rule).__doc__


SENSORS = ["door1", "door2", "clim1", "clim2"]
events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=4000),  # seconds forward
        st.sampled_from([*SENSORS, "tick"]),
        st.floats(min_value=-10, max_value=60, allow_nan=False),
        st.booleans(),
        st.booleans(),
    ),
    max_size=60,
)


def replay(script: list[tuple[int, str, float, bool, bool]]) -> list[Transition]:
    e = engine(*(kind() for kind in RULE_KINDS))
    now = T0
    out: list[Transition] = []
    for step_s, target, value, flag, tamper in script:
        now += step_s * NS
        if target == "tick":
            out += e.tick(now).transitions
        elif target.startswith("door"):
            out += e.observe(reading(target, now, open=flag, tamper=tamper), now).transitions
        else:
            out += e.observe(reading(target, now, temperature_c=value, humidity_pct=value + 30),
                             now).transitions
    return out


@settings(max_examples=150, deadline=None)
@given(events)
def test_replay_is_deterministic_and_alerts_alternate(
        script: list[tuple[int, str, float, bool, bool]]) -> None:
    first, second = replay(script), replay(script)
    assert first == second
    state: dict[str, TransitionKind] = defaultdict(lambda: TransitionKind.RESOLVED)
    book = AlertBook()
    for transition in first:
        # A rule never fires twice without resolving in between, nor resolves what is not firing.
        assert transition.kind is not state[transition.key]
        state[transition.key] = transition.kind
        assert book.apply(transition) is not None


SCENARIO_DEPOT = load_config(Path(__file__).parent / "scenarios" / "depot.yaml")
EPCS = ["E28011700000020A1B2C3D01", "E28011700000020A1B2C3D02", "E28011700000020A1B2C3DFF"]
all_events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=900),  # seconds forward
        st.sampled_from(["tick", "sh1-door1", "vlt-door1", "sh1-reader1", "vlt-reader1",
                         "p1-inner", "p1-outer", "sh1-inventory", "sh2-climate1"]),
        st.sampled_from(["1001", "1002", "1003", "1004", "2001", "9999"]),
        st.sampled_from(EPCS),
        st.booleans(),
        st.floats(min_value=-5, max_value=60, allow_nan=False),
    ),
    max_size=50,
)


def replay_all_kinds(script: list[tuple[int, str, str, str, bool, float]],
                     restart_at: int | None = None) -> list[Transition]:
    depot = SCENARIO_DEPOT.depot()

    def build() -> Engine:
        return Engine([(k.type, k.build(depot)) for k in SCENARIO_DEPOT.rule_set()], depot)

    e = build()
    now = local_ns(2026, 11, 25, 9, 30)
    out: list[Transition] = []
    for index, (step_s, target, badge, epc, flag, value) in enumerate(script):
        if index == restart_at:
            saved = json.loads(json.dumps(e.snapshot()))
            e = build()
            e.restore(saved)
        now += step_s * NS
        if target == "tick":
            out += e.tick(now).transitions
            continue
        kind = depot.sensors[target].kind.value
        values: dict[str, float | bool | str] = (
            {"open": flag} if kind == "door" else
            {"badge": badge} if kind == "badge_reader" else
            {"temperature_c": value, "humidity_pct": value + 20} if kind == "climate" else
            {"epc": epc, "rssi_dbm": -50.0})
        out += e.observe(Reading(target, now, values), now).transitions
    return out


@settings(max_examples=100, deadline=None)
@given(all_events, st.integers(min_value=0, max_value=50))
def test_every_rule_kind_is_deterministic_and_survives_restarts(
        script: list[tuple[int, str, str, str, bool, float]], restart_at: int) -> None:
    first = replay_all_kinds(script)
    assert first == replay_all_kinds(script)
    # A restart (snapshot through JSON, fresh engine, restore) anywhere changes nothing.
    assert first == replay_all_kinds(script, restart_at)
    state: dict[str, TransitionKind] = defaultdict(lambda: TransitionKind.RESOLVED)
    for transition in first:
        assert transition.kind is not state[transition.key], transition
        state[transition.key] = transition.kind
        for badge in ("1001", "1002", "1003", "1004", "2001", "9999"):
            # As a number of its own: "9999" inside a printed 30.999999999999993 is no badge.
            alone = re.compile(rf"(?<!\d){badge}(?!\d)")
            assert not alone.search(transition.summary), transition.summary
            assert not alone.search(str(transition.facts)), transition.facts


def test_climate_swing_spans_hours_and_forgets_them_past_its_window() -> None:
    from rules.climate_swing import ClimateSwingRuleConfig

    hour = 3600 * NS
    e = engine(ClimateSwingRuleConfig())
    assert quiet(e.observe(reading("clim1", T0, temperature_c=12.0), T0))
    assert quiet(e.observe(reading("clim1", T0 + 1, temperature_c=14.0), T0 + 1))
    t = T0 + 2 * hour
    assert keys(e.observe(reading("clim1", t, temperature_c=23.0), t)) == [
        ("climate_swing.clim1", "firing")]
    t += 23 * hour  # T0's hour is out of the 24 h window: 23 - 23 °C in the rest
    assert keys(e.observe(reading("clim1", t, temperature_c=22.0), t)) == [
        ("climate_swing.clim1", "resolved")]


any_values = st.dictionaries(
    st.sampled_from(["open", "tamper", "battery_low", "battery_pct", "temperature_c",
                     "humidity_pct", "badge", "epc", "rssi_dbm", "contact", "state"]),
    st.one_of(st.booleans(), st.floats(min_value=-40, max_value=120, allow_nan=False),
              st.sampled_from(["1001", "2001", "9999", *EPCS, "", "ON"])),
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(SCENARIO_DEPOT.depot().sensors)), any_values,
                          st.integers(min_value=0, max_value=600)), max_size=30))
def test_a_rule_ignores_the_sensor_kinds_it_does_not_declare(
        script: list[tuple[str, dict[str, float | bool | str], int]]) -> None:
    # The engine skips a rule for readings of kinds outside its `kinds`: that must lose nothing,
    # so for those readings the rule must return nothing and leave its state as it was.
    depot = SCENARIO_DEPOT.depot()
    now = local_ns(2026, 11, 25, 9, 30)
    for kind in SCENARIO_DEPOT.rule_set():
        rule = kind.build(depot)
        declared = getattr(rule, "kinds", None)
        if declared is None:
            continue
        before = json.dumps(rule.snapshot(), sort_keys=True)
        at = now
        for sensor, values, step_s in script:
            at += step_s * NS
            if depot.sensors[sensor].kind in declared:
                continue
            assert rule.observe(Reading(sensor, at, values), at) == [], (kind.type, sensor)
        assert json.dumps(rule.snapshot(), sort_keys=True) == before, kind.type


@settings(max_examples=100, deadline=None)
@given(all_events)
def test_the_engine_with_the_depot_gives_what_every_rule_on_every_reading_gives(
        script: list[tuple[int, str, str, str, bool, float]]) -> None:
    depot = SCENARIO_DEPOT.depot()

    def run(engine: Engine) -> list[tuple[list[Transition], list[object]]]:
        now = local_ns(2026, 11, 25, 9, 30)
        out = []
        for step_s, target, badge, epc, flag, value in script:
            now += step_s * NS
            if target == "tick":
                verdict = engine.tick(now)
            else:
                values = {"open": flag, "badge": badge, "epc": epc, "temperature_c": value,
                          "humidity_pct": value + 20, "tamper": flag, "battery_pct": value}
                verdict = engine.observe(Reading(target, now, values), now)
            out.append((verdict.transitions, verdict.facts))
        return out

    rules = SCENARIO_DEPOT.rule_set()
    assert run(Engine([(k.type, k.build(depot)) for k in rules], depot)) == run(
        Engine([(k.type, k.build(depot)) for k in rules]))


def test_an_opening_asks_for_a_tick_at_its_debounce_mark() -> None:
    e = engine(DoorArmedRuleConfig(), TamperRuleConfig())
    night = local_ns(2026, 11, 25, 23)
    e.observe(reading("door1", night, open=True), night)
    assert e.wakes == [night + 400_000_000]
    e.wakes.clear()
    e.observe(reading("clim1", night, tamper=True), night)
    assert e.wakes == [night + 400_000_000]


def test_a_deadline_tick_ticks_only_the_rules_that_asked_for_it() -> None:
    """A door's debounce end ticks the door rule, not "sensor silent" (which has come due too):
    that waits for the full tick; the full tick forgets what was asked (rules ask again)."""
    e = engine(SensorSilentRuleConfig(), DoorArmedRuleConfig(), TamperRuleConfig())
    night = local_ns(2026, 11, 25, 23)
    assert quiet(e.tick(night))
    opened = night + 20 * NS  # door2 (wired) has been silent past its 10 s since `night`
    e.observe(reading("door1", opened, open=True), opened)
    e.observe(reading("clim1", opened + NS // 10, tamper=True), opened + NS // 10)
    e.wakes.clear()
    first = opened + 400_000_000
    assert keys(e.tick_asked(first)) == [("door_armed.SH1-D1", "firing")]
    assert e.wakes == [first + NS // 10]  # the tamper flag's deadline, still to come
    assert keys(e.tick_asked(first + NS // 10)) == [("tamper.clim1", "firing")]
    assert quiet(e.tick_asked(first + NS))  # nothing asked any more
    assert [k for k, _ in keys(e.tick(first + NS))] == ["sensor_silent.door2"]
    second = first + 2 * NS
    assert keys(e.observe(reading("door2", second, open=True), second)) == [
        ("sensor_silent.door2", "resolved")]
    assert quiet(e.tick(second + NS // 10))  # in its debounce: the door rule asks again
    assert keys(e.tick_asked(second + 400_000_000)) == [("door_armed.SH2-D1", "firing")]


def test_a_reload_keeps_the_deadline_asked_for() -> None:
    old = engine(DoorArmedRuleConfig(), TamperRuleConfig())
    night = local_ns(2026, 11, 25, 23)
    old.observe(reading("door1", night, open=True), night)
    fresh = engine(TamperRuleConfig(), DoorArmedRuleConfig())
    fresh.take_over(old)
    assert keys(fresh.tick_asked(night + 400_000_000)) == [("door_armed.SH1-D1", "firing")]


def test_an_opening_past_the_debounce_that_closed_before_a_tick_still_alarms() -> None:
    e = engine(DoorArmedRuleConfig())
    night = local_ns(2026, 11, 25, 23)
    e.observe(reading("door1", night, open=True), night)
    closed = night + 6 * NS // 10
    assert keys(e.observe(reading("door1", closed, open=False), closed)) == [
        ("door_armed.SH1-D1", "firing"), ("door_armed.SH1-D1", "resolved")]
    assert quiet(e.tick(closed + NS))
