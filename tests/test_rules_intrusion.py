"""Intrusion zones, arming by staff, detectors, smoke and panic: the pure rules and decoders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from depot_fixtures import local_ns
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from daemon.alerts.arming import ArmingDesk, ArmingRefused, as_answer
from daemon.config.schema import Config
from daemon.vocabulary.readings import RawMessage, Reading, Transition, TransitionKind
from drivers.decoders.esphome import EsphomeDecoderConfig
from drivers.decoders.io_board import IoBoardDecoderConfig
from drivers.decoders.tasmota import TasmotaDecoderConfig
from drivers.decoders.zigbee2mqtt import Zigbee2MqttDecoder
from rules.anti_masking import AntiMaskingRuleConfig
from rules.base import Fact, Outcome
from rules.depot import Depot
from rules.door_armed import DoorArmedRule, DoorArmedRuleConfig
from rules.smoke_panic import SmokePanicRuleConfig
from rules.zone_arming import ZoneArmingRule, ZoneArmingRuleConfig
from rules.zone_state import ZONE_PREFIX, zone_request

NS = 1_000_000_000
SCHEDULE = {"mode": "schedule", "windows": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                             "from": "18:00", "to": "07:00"}]}
DEPOT: dict[str, Any] = {
    "site": {"id": "intrusion-depot"},
    "state_dir": "/tmp/unused",
    "storehouses": [
        {"id": "SH3", "name": "Ammunition 3", "timezone": "Europe/Vienna", "arming": "staff",
         "armed": SCHEDULE},
        {"id": "VLT", "name": "Vault", "timezone": "Europe/Vienna", "arming": "staff",
         "armed": SCHEDULE},
    ],
    "doors": [
        {"id": "SH3-D1", "storehouse": "SH3", "contact_sensor": "door3"},
        {"id": "VLT-D1", "storehouse": "VLT", "contact_sensor": "vdoor", "two_person": True},
    ],
    "detectors": [
        {"id": "pir3", "kind": "motion", "storehouse": "SH3"},
        {"id": "keypad3", "kind": "keypad", "storehouse": "SH3"},
        {"id": "vkeypad", "kind": "keypad", "storehouse": "VLT"},
    ],
    "roster": [
        {"name": "Anna", "badge": "1001", "zones": ["SH3", "VLT"]},
        {"name": "Ben", "badge": "1002", "zones": ["VLT"]},
    ],
}
NOON = local_ns(2026, 11, 25, 12)  # a Wednesday: the schedule says disarmed


def depot() -> Depot:
    return Config.model_validate(DEPOT).depot()


def zone_rule() -> ZoneArmingRule:
    return ZoneArmingRule(ZoneArmingRuleConfig(), depot())


def ask(rule: ZoneArmingRule, action: str, at: int, *, force: bool = False,
        storehouse: str = "SH3") -> list[Outcome]:
    values = zone_request(action, "Sgt. Novak", "api", force=force)
    return rule.observe(Reading(f"{ZONE_PREFIX}{storehouse}", at, values), at)


def facts(outcomes: list[Outcome]) -> list[dict[str, Any]]:
    return [as_answer(o) for o in outcomes if isinstance(o, Fact)]


def firing(outcomes: list[Outcome]) -> list[str]:
    return [o.key for o in outcomes
            if isinstance(o, Transition) and o.kind is TransitionKind.FIRING]


def test_arming_with_a_door_open_is_refused_naming_the_door() -> None:
    rule = zone_rule()
    rule.observe(Reading("door3", NOON, {"open": True}), NOON)
    rule.observe(Reading("pir3", NOON, {"motion": True}), NOON)
    answer = facts(ask(rule, "arm", NOON + NS))[-1]
    assert answer["result"] == "refused"
    assert answer["not_secured"] == ["door SH3-D1", "motion pir3"]
    assert answer["state"] == "disarmed"


def test_forced_arming_is_recorded_with_what_was_open() -> None:
    rule = zone_rule()
    rule.observe(Reading("door3", NOON, {"open": True}), NOON)
    answer = facts(ask(rule, "arm", NOON + NS, force=True))[-1]
    assert (answer["result"], answer["forced"], answer["state"]) == ("arming", True, "arming")
    assert answer["not_secured"] == ["door SH3-D1"]
    # The open door is set aside: the exit delay ends without an entry delay or an alarm.
    out = rule.tick(NOON + 62 * NS) + rule.tick(NOON + 200 * NS)
    assert [f["result"] for f in facts(out)] == ["armed"]
    assert not firing(out)


def test_entry_delay_runs_out_into_an_alarm_unless_disarmed() -> None:
    for disarm in (False, True):
        rule = zone_rule()
        ask(rule, "arm", NOON)
        rule.tick(NOON + 60 * NS)
        opened = NOON + 100 * NS
        entry = rule.observe(Reading("door3", opened, {"open": True}), opened)
        assert facts(entry)[-1]["state"] == "entry"
        if disarm:
            ask(rule, "disarm", opened + 20 * NS)
        out = rule.tick(opened + 30 * NS)
        assert firing(out) == ([] if disarm else ["intrusion.SH3-D1"])


def test_a_disarmed_staff_zone_raises_no_door_armed_but_a_schedule_zone_does() -> None:
    config = dict(DEPOT, storehouses=[dict(DEPOT["storehouses"][0]),
                                      {**DEPOT["storehouses"][1], "arming": "schedule"}])
    model = Config.model_validate(config).depot()
    rule = DoorArmedRule(DoorArmedRuleConfig(), model)
    night = local_ns(2026, 11, 25, 22)
    for door in ("door3", "vdoor"):
        rule.observe(Reading(door, night, {"open": True}), night)
    assert firing(rule.tick(night + NS)) == ["door_armed.VLT-D1"]


def test_two_person_zone_disarms_by_keypad_only_with_two_people() -> None:
    rule = zone_rule()
    night = local_ns(2026, 11, 25, 22)
    rule.tick(night)  # armed by the schedule on first sight

    def badge(number: str, at: int) -> list[dict[str, Any]]:
        return facts(rule.observe(Reading("vkeypad", at, {"action": "disarm",
                                                          "badge": number}), at))

    assert badge("1001", night)[-1]["result"] == "waiting"
    assert badge("1001", night + NS)[-1]["result"] == "waiting"  # the same person twice
    answer = badge("1002", night + 2 * NS)[-1]
    assert (answer["result"], answer["by"], answer["how"]) == ("disarmed", "Anna + Ben", "keypad")
    refused = badge("9999", night + 3 * NS)[-1]
    assert refused["result"] == "refused" and "9999" not in json.dumps(refused)


def test_zone_state_survives_a_restart() -> None:
    rule = zone_rule()
    ask(rule, "arm", NOON)
    saved = json.loads(json.dumps(rule.snapshot()))
    again = zone_rule()
    again.restore(saved)
    assert facts(again.tick(NOON + 60 * NS))[-1]["result"] == "armed"


EVENTS = st.lists(st.tuples(
    st.sampled_from(["arm", "force", "disarm", "open", "close", "motion", "quiet", "tick"]),
    st.integers(min_value=1, max_value=90)), max_size=25)


def play(rule: ZoneArmingRule, events: list[tuple[str, int]], start: int) -> list[str]:
    now, said = start, []
    for what, step in events:
        now += step * NS
        if what in ("arm", "force", "disarm"):
            out = ask(rule, "arm" if what != "disarm" else "disarm", now, force=what == "force")
        elif what in ("open", "close"):
            out = rule.observe(Reading("door3", now, {"open": what == "open"}), now)
        elif what in ("motion", "quiet"):
            out = rule.observe(Reading("pir3", now, {"motion": what == "motion"}), now)
        else:
            out = rule.tick(now)
        said += [f"{o.key}:{o.kind}" if isinstance(o, Transition)
                 else f"zone:{o.fields['result']}:{o.fields['state']}" for o in out]
    return said


@settings(max_examples=60, deadline=None)
@given(EVENTS, EVENTS)
def test_a_restart_anywhere_changes_nothing(first: list[tuple[str, int]],
                                            then: list[tuple[str, int]]) -> None:
    whole, split = zone_rule(), zone_rule()
    expected = play(whole, first + then, NOON)
    said = play(split, first, NOON)
    restarted = zone_rule()
    restarted.restore(json.loads(json.dumps(split.snapshot())))
    offset = sum(step for _, step in first) * NS
    assert said + play(restarted, then, NOON + offset) == expected


@settings(max_examples=60, deadline=None)
@given(EVENTS)
def test_a_disarmed_zone_never_alarms(events: list[tuple[str, int]]) -> None:
    rule = zone_rule()
    # Disarm requests only: whatever doors and detectors do, no intrusion alarm.
    said = play(rule, [(w, s) for w, s in events if w not in ("arm", "force")], NOON)
    assert not [s for s in said if s.startswith("intrusion")]


def test_arming_desk_answers_and_audits() -> None:
    rule = zone_rule()
    audited: list[tuple[str, str, str]] = []

    class Pipeline:
        def __init__(self) -> None:
            self.fact_listeners: list[Any] = []

        def zone_request(self, storehouse: str, values: Any, now_ns: int) -> list[Fact]:
            out = [o for o in rule.observe(Reading(f"{ZONE_PREFIX}{storehouse}", now_ns,
                                                   values), now_ns) if isinstance(o, Fact)]
            for fact in out:
                for listener in self.fact_listeners:
                    listener(fact)
            return out

    class Clock:
        def now_ns(self) -> int:
            return NOON

    desk = ArmingDesk(Clock(), lambda actor, action, subject, details, at: audited.append(
        (actor, action, subject)))
    desk.attach(Pipeline())
    rule.observe(Reading("door3", NOON, {"open": True}), NOON)
    try:
        desk.request("SH3", "arm", "Sgt. Novak", "api")
    except ArmingRefused as exc:
        assert exc.answer["not_secured"] == ["door SH3-D1"]
        assert "door SH3-D1" in str(exc)
    else:
        raise AssertionError("arming with the door open was not refused")
    assert desk.request("SH3", "arm", "Sgt. Novak", "api", force=True)["forced"] is True
    assert audited == [("Sgt. Novak", "zone_refused", "SH3"), ("Sgt. Novak", "zone_arming", "SH3")]


def test_zigbee2mqtt_detectors_panic_and_keypads() -> None:
    decoder = Zigbee2MqttDecoder()

    def values(body: dict[str, Any]) -> dict[str, Any]:
        return dict(decoder.decode(RawMessage("z/x", json.dumps(body).encode(), 1), "x")[0].values)

    assert values({"occupancy": True, "battery": 90}) == {"motion": True, "battery_pct": 90.0}
    assert values({"vibration": False}) == {"vibration": False}
    assert values({"smoke": True}) == {"smoke": True}
    assert values({"action": "emergency"}) == {"panic": True}
    assert values({"action": "arm_all_zones", "action_code": 1234}) == {
        "action": "arm", "badge": "1234"}
    assert values({"action": "disarm", "action_code": "1001"}) == {
        "action": "disarm", "badge": "1001"}
    # Any other action is no sign of life: counted as an unhandled field (issue 26).
    assert values({"action": "single"}) == {"unhandled_field": "action=single"}


def test_tasmota_switches_as_binary_sensors() -> None:
    decoder = TasmotaDecoderConfig(switches={"Switch1": "motion"}).build()
    for body, motion in (({"Time": "t", "Switch1": "ON"}, True),
                         ({"Switch1": {"Action": "OFF"}}, False)):
        reading = decoder.decode(RawMessage("t", json.dumps(body).encode(), 1), "pir")[0]
        assert reading.values == {"motion": motion}


def test_check_config_warns_about_a_store_with_one_kind_of_detection(tmp_path: Path) -> None:
    assert depot().intrusion_detection("SH3") == {"door", "motion"}
    assert depot().intrusion_detection("VLT") == {"door"}
    path = tmp_path / "depot.json"  # JSON is YAML
    path.write_text(json.dumps(DEPOT))
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "check-config", str(path)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "storehouse VLT has 1 kind(s) of intrusion detection (door)" in done.stderr
    assert "storehouse SH3" not in done.stderr


def test_a_duress_code_is_never_the_usual_one_nor_one_off() -> None:
    for code in ("1001", "1002", "1000"):
        roster = [{"name": "Anna", "badge": "1001", "zones": ["SH3"], "duress_code": code}]
        try:
            Config.model_validate({**DEPOT, "roster": roster})
        except ValueError as exc:
            assert "duress_code must not be the badge" in str(exc)
        else:
            raise AssertionError(f"duress code {code} accepted")


def test_a_duress_code_disarms_as_asked_and_raises_a_silent_alarm() -> None:
    roster = [{"name": "Anna", "badge": "1001", "zones": ["SH3"], "duress_code": "4711"}]
    model = Config.model_validate({**DEPOT, "roster": roster}).depot()
    rule = ZoneArmingRule(ZoneArmingRuleConfig(), model)
    night = local_ns(2026, 11, 25, 22)
    rule.tick(night)
    out = rule.observe(Reading("keypad3", night, {"action": "disarm", "badge": "4711"}), night)
    assert [(f["result"], f["by"]) for f in facts(out)] == [("disarmed", "Anna")]
    assert [(o.key, o.kind.value) for o in out if isinstance(o, Transition)] == [
        ("duress.SH3", "firing"), ("duress.SH3", "resolved")]
    assert "4711" not in json.dumps([o.summary for o in out if isinstance(o, Transition)])


def test_esphome_binary_sensor_and_io_board_detector_inputs() -> None:
    decoder = EsphomeDecoderConfig(field="motion").build()
    for payload, motion in ((b"ON", True), (b"OFF", False)):
        assert decoder.decode(RawMessage("n/binary_sensor/pir/state", payload, 1),
                              "pir")[0].values == {"motion": motion}
    board = IoBoardDecoderConfig(fields={"vibration": "vib", "glass_break": "gb"}).build()
    reading = board.decode(RawMessage("serial:io", b"vib=1 gb=0", 1), "io1")[0]
    assert reading.values == {"vibration": True, "glass_break": False}


def test_walk_test_records_detectors_instead_of_alarming() -> None:
    rule = zone_rule()
    night = local_ns(2026, 11, 25, 22)
    rule.tick(night)  # armed by the schedule
    started = facts(ask(rule, "walk_test", night))[-1]
    assert started["result"] == "started"
    out = rule.observe(Reading("pir3", night + NS, {"motion": True}), night + NS)
    out += rule.tick(night + 2 * NS)
    assert not firing(out)  # recorded, not alarmed
    result = [f for f in facts(out) if f["result"] == "passed"]
    assert result and result[0]["seen"] == ["pir3"] and result[0]["not_seen"] == []
    refused = facts(ask(rule, "walk_test", night, storehouse="VLT"))[-1]
    assert refused["result"] == "refused"


def test_a_keypad_panic_key_alarms_in_every_state() -> None:
    rule = SmokePanicRuleConfig().build(depot())
    out = rule.observe(Reading("keypad3", NOON, {"panic": True}), NOON)
    assert firing(out) == ["panic.keypad3"]
    assert rule.observe(Reading("keypad3", NOON, {"action": "arm", "badge": "1001"}), NOON) == []


def test_a_staff_zone_on_the_default_schedule_is_never_not_secured() -> None:
    # Found in the intrusion work: `always` (no schedule given) raised "not secured" 15 min
    # after every disarm. It has no closing time: staff decide alone.
    stores = [{"id": "SH3", "name": "Ammunition 3", "arming": "staff"}]
    model = Config.model_validate({**DEPOT, "storehouses": stores,
                                   "doors": DEPOT["doors"][:1],
                                   "detectors": DEPOT["detectors"][:2],
                                   "roster": DEPOT["roster"][:1]}).depot()
    rule = ZoneArmingRule(ZoneArmingRuleConfig(), model)
    assert facts(ask(rule, "disarm", NOON))[-1]["state"] == "disarmed"
    out = [o for minute in range(1, 121) for o in rule.tick(NOON + minute * 60 * NS)]
    assert not firing(out)
    # A weekly schedule still expects it armed from its closing time (18:00).
    scheduled = zone_rule()
    ask(scheduled, "disarm", NOON)
    evening = local_ns(2026, 11, 25, 18)
    late = [o for minute in range(0, 20) for o in scheduled.tick(evening + minute * 60 * NS)]
    assert firing(late) == ["not_secured.SH3"]


def confirming_rule() -> ZoneArmingRule:
    stores = [{**DEPOT["storehouses"][0], "confirmation": "sequential"}, DEPOT["storehouses"][1]]
    detectors = [*DEPOT["detectors"], {"id": "vib3", "kind": "vibration", "storehouse": "SH3"}]
    model = Config.model_validate({**DEPOT, "storehouses": stores,
                                   "detectors": detectors}).depot()
    return ZoneArmingRule(ZoneArmingRuleConfig(), model)


def severities(outcomes: list[Outcome]) -> list[tuple[str, str, str]]:
    return [(o.key, o.kind.value, o.severity.value) for o in outcomes
            if isinstance(o, Transition)]


def test_sequential_confirmation_needs_a_second_detector_within_the_window() -> None:
    night = local_ns(2026, 11, 25, 22)
    rule = confirming_rule()
    rule.tick(night)  # armed by the schedule
    out = rule.observe(Reading("pir3", night, {"motion": True}), night)
    out += rule.tick(night + NS)
    assert severities(out) == [("intrusion.pir3", "firing", "alarm")]
    assert "unconfirmed" in next(o for o in out if isinstance(o, Transition)).summary
    # The same detector again is no confirmation; a different one 20 min later is.
    out = rule.observe(Reading("pir3", night + 5 * NS, {"motion": False}), night + 5 * NS)
    assert severities(out) == [("intrusion.pir3", "resolved", "alarm")]
    rule.observe(Reading("pir3", night + 9 * NS, {"motion": True}), night + 9 * NS)
    assert severities(rule.tick(night + 10 * NS)) == [("intrusion.pir3", "firing", "alarm")]
    later = night + 1200 * NS
    rule.observe(Reading("vib3", later, {"vibration": True}), later)
    out = rule.tick(later + NS)
    assert severities(out) == [("intrusion.vib3", "firing", "critical"),
                               ("intrusion_confirmed.SH3", "firing", "critical"),
                               ("intrusion_confirmed.SH3", "resolved", "critical")]
    # Outside the window (and after a disarm) a detector alone is unconfirmed again.
    rule = confirming_rule()
    rule.tick(night)
    rule.observe(Reading("pir3", night, {"motion": True}), night)
    rule.tick(night + NS)
    much_later = night + 1900 * NS
    rule.observe(Reading("vib3", much_later, {"vibration": True}), much_later)
    assert severities(rule.tick(much_later + NS)) == [("intrusion.vib3", "firing", "alarm")]


def test_a_zone_without_confirmation_alarms_critical_at_the_first_detector() -> None:
    night = local_ns(2026, 11, 25, 22)
    rule = zone_rule()
    rule.tick(night)
    rule.observe(Reading("pir3", night, {"motion": True}), night)
    assert severities(rule.tick(night + NS)) == [("intrusion.pir3", "firing", "critical")]


def test_anti_masking_is_a_fault_in_every_state_from_an_io_board_input() -> None:
    board = IoBoardDecoderConfig(fields={"motion": "pir", "masked": "am"}).build()
    reading = board.decode(RawMessage("serial:io", b"pir=0 am=1", NOON), "pir3")[0]
    assert reading.values == {"motion": False, "masked": True}
    rule = AntiMaskingRuleConfig().build(depot())
    assert rule.observe(reading, NOON) == []  # the 10 s fault debounce
    saved = json.loads(json.dumps(rule.snapshot()))
    rule = AntiMaskingRuleConfig().build(depot())
    rule.restore(saved)
    assert severities(rule.tick(NOON + 10 * NS)) == [("anti_masking.pir3", "firing", "alarm")]
    # A door contact's `masked` is not a detector's: ignored.
    assert rule.observe(Reading("door3", NOON, {"masked": True}), NOON) == []
    clear = Reading("pir3", NOON + 20 * NS, {"masked": False})
    assert severities(rule.observe(clear, clear.at_ns)) == [
        ("anti_masking.pir3", "resolved", "alarm")]


def test_zone_views_show_each_zone_its_delay_and_the_last_walk_test() -> None:
    rule = zone_rule()
    night = local_ns(2026, 11, 25, 22)
    views = {v.storehouse: v for v in rule.views(NOON)}
    assert (views["SH3"].state, views["SH3"].since_ns, views["SH3"].how) == (
        "disarmed", None, "schedule")
    assert rule.snapshot()["zones"] == {}  # a view changes nothing
    ask(rule, "arm", NOON)
    (sh3, vlt) = rule.views(NOON + NS)
    assert (sh3.state, sh3.by, sh3.how, sh3.delay_ends_ns) == (
        "arming", "Sgt. Novak", "api", NOON + 60 * NS)
    assert vlt.state == "disarmed" and vlt.last_walk_test is None
    rule.tick(night)
    ask(rule, "walk_test", night)
    assert rule.views(night)[0].walk_test
    rule.tick(night + 1801 * NS)  # nobody walked: failed
    restored = zone_rule()
    restored.restore(json.loads(json.dumps(rule.snapshot())))
    last = restored.views(night + 1802 * NS)[0].last_walk_test
    assert last is not None and (last.result, last.by, last.not_seen) == (
        "failed", "Sgt. Novak", ("pir3",))


def test_a_duress_code_is_nobody_elses_badge_and_nobody_shares_one() -> None:
    for anna, ben, expected in (
            ("2002", None, "the duress_code of Anna is the badge or code of Ben, or one off it"),
            ("2003", None, "the duress_code of Anna is the badge or code of Ben, or one off it"),
            ("4711", "4711", "Anna and Ben have the same duress_code")):
        roster = [{"name": "Anna", "badge": "1001", "zones": ["SH3"], "duress_code": anna},
                  {"name": "Ben", "badge": "2002", "zones": ["VLT"], "duress_code": ben}]
        try:
            Config.model_validate({**DEPOT, "roster": roster})
        except ValidationError as exc:
            message = exc.errors()[0]["msg"]
            assert expected in message and anna not in message and "2002" not in message
        else:
            raise AssertionError(f"duress codes {anna}/{ben} accepted")
    roster = [{"name": "Anna", "badge": "1001", "zones": ["SH3"], "duress_code": "4711"},
              {"name": "Ben", "badge": "2002", "zones": ["VLT"], "duress_code": "5822"}]
    assert Config.model_validate({**DEPOT, "roster": roster}).depot().duress == {
        "4711": "Anna", "5822": "Ben"}


@settings(max_examples=60, deadline=None)
@given(EVENTS, EVENTS)
def test_a_restart_anywhere_changes_nothing_with_confirmation(
        first: list[tuple[str, int]], then: list[tuple[str, int]]) -> None:
    whole, split = confirming_rule(), confirming_rule()
    expected = play(whole, first + then, NOON)
    said = play(split, first, NOON)
    restarted = confirming_rule()
    restarted.restore(json.loads(json.dumps(split.snapshot())))
    offset = sum(step for _, step in first) * NS
    assert said + play(restarted, then, NOON + offset) == expected


@settings(max_examples=60, deadline=None)
@given(EVENTS)
def test_a_confirmed_intrusion_always_follows_two_different_detectors(
        events: list[tuple[str, int]]) -> None:
    rule = confirming_rule()
    said = play(rule, events, NOON)
    for index, entry in enumerate(said):
        if entry.startswith("intrusion_confirmed.SH3:firing"):
            subjects = {s.split(":")[0] for s in said[:index]
                        if s.startswith("intrusion.") and ":firing" in s}
            assert len(subjects) >= 2, said[:index + 1]
