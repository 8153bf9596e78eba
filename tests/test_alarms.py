"""The alarm lifecycle on a virtual clock: checks, repeats, escalation, silences, inhibition."""

from __future__ import annotations

import json

import pytest

from daemon.alerts.alarm import AlarmState, Finding, LifecycleError
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.settings import AlertingConfig
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Severity, TransitionKind

NS = 1_000_000_000
T0 = 1_800_000_000 * NS
LADDER = {"critical": [{"after_s": 0, "notify": ["duty"]},
                       {"after_s": 120, "notify": ["deputy"]},
                       {"after_s": 300, "notify": ["commander"]}]}


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, str, frozenset[str] | None]] = []
        self.audit: list[tuple[str, str, str]] = []

    def notify(self, alert: Alert, targets: frozenset[str] | None) -> None:
        self.sent.append((alert.key, alert.state.value, str(alert.facts["lifecycle"]), targets))

    def log(self, actor: str, action: str, subject: str, details: object, at_ns: int) -> None:
        self.audit.append((actor, action, subject))


def desk(**config: object) -> tuple[AlarmDesk, Recorder]:
    rec = Recorder()
    return AlarmDesk(AlertingConfig.model_validate(config), rec.notify, rec.log), rec


def change(key: str, state: str, severity: str = "critical", storehouse: str = "SH1",
           at: int = T0) -> Alert:
    rule, _, subject = key.partition(".")
    return Alert(key=key, rule=rule, subject=subject, severity=Severity(severity),
                 state=TransitionKind(state), summary=f"{key} {state}", storehouse=storehouse,
                 started_ns=at, changed_ns=at)


def test_critical_alarm_stays_open_until_the_on_site_check() -> None:
    d, rec = desk()
    d.condition(change("door_armed.SH1-D1", "firing"), T0)
    d.condition(change("door_armed.SH1-D1", "resolved"), T0 + 60 * NS)
    alarm = d.get("door_armed.SH1-D1")
    assert alarm.state is AlarmState.FIRING and not alarm.condition_active
    d.acknowledge("door_armed.SH1-D1", "Sgt. Berger", "on my way", T0 + 90 * NS)
    d.record_check("door_armed.SH1-D1", "Sgt. Berger", Finding.FALSE_ALARM, "wind", T0 + 600 * NS)
    assert d.get("door_armed.SH1-D1").state is AlarmState.CLEARED
    assert [s[1:3] for s in rec.sent] == [("firing", "firing"), ("firing", "firing"),
                                          ("firing", "acknowledged"), ("resolved", "cleared")]
    assert [a[1] for a in rec.audit] == ["raised", "condition_ended", "acknowledged", "checked",
                                         "cleared"]
    with pytest.raises(LifecycleError, match="already cleared"):
        d.acknowledge("door_armed.SH1-D1", "x", "", T0 + 700 * NS)


def test_a_check_cannot_precede_the_acknowledgement() -> None:
    # Issue 30: one tap on "Record check" recorded an intrusion on an unowned alarm.
    d, rec = desk()
    d.condition(change("tamper.s1", "firing"), T0)
    with pytest.raises(LifecycleError, match="not acknowledged yet"):
        d.record_check("tamper.s1", "Cpl. Kovac", Finding.INTRUSION, "", T0 + 60 * NS)
    alarm = d.get("tamper.s1")
    assert (alarm.state, alarm.finding, alarm.acked_by) == (AlarmState.FIRING, None, None)
    assert [a[1] for a in rec.audit] == ["raised"]


def test_the_headline_keeps_what_the_alarm_was_raised_for() -> None:
    d, _ = desk()
    d.condition(change("door_armed.SH1-D1", "firing"), T0)
    raised = d.get("door_armed.SH1-D1").summary
    d.condition(change("door_armed.SH1-D1", "resolved"), T0 + 60 * NS)
    assert d.get("door_armed.SH1-D1").headline == raised


def test_check_while_the_condition_lasts_clears_when_it_ends() -> None:
    d, _ = desk()
    d.condition(change("tamper.s1", "firing"), T0)
    d.acknowledge("tamper.s1", "Cpl. Kovac", "", T0 + 30 * NS)
    d.record_check("tamper.s1", "Cpl. Kovac", Finding.FAULT, "broken housing", T0 + 60 * NS)
    assert d.get("tamper.s1").state is AlarmState.ACKNOWLEDGED
    d.condition(change("tamper.s1", "resolved"), T0 + 120 * NS)
    assert d.get("tamper.s1").state is AlarmState.CLEARED


def test_warnings_clear_with_their_condition() -> None:
    d, rec = desk()
    d.condition(change("door_held_open.D1", "firing", "warning"), T0)
    d.condition(change("door_held_open.D1", "resolved", "warning"), T0 + NS)
    assert d.alarms() == []
    assert rec.sent[-1][1] == "resolved"


def test_unacknowledged_alarm_repeats_and_acknowledging_stops_it() -> None:
    d, rec = desk()
    d.condition(change("tamper.s1", "firing"), T0)
    for s in range(1, 400):
        d.tick(T0 + s * NS)
    assert len(rec.sent) == 4  # at 0, 120, 240, 360 s
    d.acknowledge("tamper.s1", "duty", "", T0 + 400 * NS)
    for s in range(400, 1000):
        d.tick(T0 + s * NS)
    assert len(rec.sent) == 5


def test_escalation_ladder_and_restart_mid_escalation() -> None:
    d, rec = desk(escalation=LADDER, repeat_s={"critical": 10_000})
    d.condition(change("door_forced.D1", "firing"), T0)
    assert rec.sent[-1][3] == frozenset({"duty"})
    for s in range(1, 200):
        d.tick(T0 + s * NS)
    assert rec.sent[-1][3] == frozenset({"deputy"})
    # The daemon restarts: state through JSON, a fresh desk, and time goes on.
    saved = json.loads(json.dumps(d.snapshot()))
    d2, rec2 = desk(escalation=LADDER, repeat_s={"critical": 10_000})
    d2.restore(saved)
    for s in range(200, 301):
        d2.tick(T0 + s * NS)
    assert rec2.sent == [("door_forced.D1", "firing", "firing", frozenset({"commander"}))]
    assert d2.get("door_forced.D1").escalation_step == 2
    # Acknowledging tells everyone reached so far.
    d2.acknowledge("door_forced.D1", "commander", "", T0 + 310 * NS)
    assert rec2.sent[-1][3] == frozenset({"duty", "deputy", "commander"})


def test_silence_of_a_critical_rule_needs_a_second_officer() -> None:
    d, rec = desk()
    silence = d.add_silence({"rule": "tamper", "storehouse": "SH1"}, "Sgt. Berger",
                            "replacing contacts", T0 + 3600 * NS, T0)
    assert silence.needs_approval
    d.condition(change("tamper.s1", "firing"), T0 + NS)
    assert len(rec.sent) == 1  # not approved yet: the alarm goes out
    with pytest.raises(LifecycleError, match="second, different officer"):
        d.approve_silence(silence.id, "Sgt. Berger", T0 + 2 * NS)
    d.approve_silence(silence.id, "Lt. Ertl", T0 + 2 * NS)
    d.condition(change("tamper.s2", "firing"), T0 + 3 * NS)
    assert d.get("tamper.s2").silenced_by == silence.id
    assert [s[0] for s in rec.sent] == ["tamper.s1"]
    d.expire_silence(silence.id, "Lt. Ertl", T0 + 100 * NS)
    d.tick(T0 + 101 * NS)
    assert rec.sent[-1][0] == "tamper.s2"  # heard of once the silence is over


def test_silence_of_a_warning_rule_is_active_at_once() -> None:
    d, rec = desk()
    silence = d.add_silence({"rule": "battery_low"}, "tech", "battery swap",
                            T0 + 600 * NS, T0)
    assert not silence.needs_approval
    d.condition(change("battery_low.s1", "firing", "warning"), T0 + NS)
    assert rec.sent == []
    with pytest.raises(LifecycleError, match="reason"):
        d.add_silence({"rule": "battery_low"}, "tech", " ", T0 + 600 * NS, T0)


def test_inhibition_one_cause_one_page() -> None:
    d, rec = desk()
    d.condition(change("input_lost.mqtt", "firing", "alarm", storehouse=""), T0)
    d.condition(change("sensor_silent.s1", "firing", "alarm"), T0 + NS)
    d.condition(change("sensor_silent.s2", "firing", "alarm"), T0 + NS)
    assert [s[0] for s in rec.sent] == ["input_lost.mqtt"]
    assert d.get("sensor_silent.s1").inhibited_by == "input_lost.mqtt"
    # The cause is checked and cleared: what it hid waits out the grace (60 s by default)...
    d.condition(change("input_lost.mqtt", "resolved", "alarm", storehouse=""), T0 + 60 * NS)
    d.acknowledge("input_lost.mqtt", "duty", "", T0 + 80 * NS)
    d.record_check("input_lost.mqtt", "duty", Finding.FAULT, "switch reboot", T0 + 90 * NS)
    assert [s[0] for s in rec.sent][-1] == "input_lost.mqtt"
    # ...in which s2 reports again: cleared without an on-site check, never paged.
    d.condition(change("sensor_silent.s2", "resolved", "alarm"), T0 + 100 * NS)
    assert d.get("sensor_silent.s2").state is AlarmState.CLEARED
    assert ("system", "cleared", "sensor_silent.s2") in rec.audit
    d.tick(T0 + 140 * NS)
    assert "sensor_silent.s1" not in {s[0] for s in rec.sent}
    # s1 is still silent when the grace is over: paged now, and it needs its check.
    d.tick(T0 + 151 * NS)
    assert [s[0] for s in rec.sent][-1] == "sensor_silent.s1"
    assert "sensor_silent.s2" not in {s[0] for s in rec.sent}
    d.condition(change("sensor_silent.s1", "resolved", "alarm"), T0 + 200 * NS)
    assert d.get("sensor_silent.s1").state is AlarmState.FIRING


def test_the_officers_api_down_mutes_no_sensor() -> None:
    # input_lost.api says officers cannot reach the gateway; the sensors still report.
    d, rec = desk()
    d.condition(change("input_lost.api", "firing", "alarm", storehouse=""), T0)
    d.condition(change("sensor_silent.s1", "firing", "alarm"), T0 + NS)
    assert d.get("sensor_silent.s1").inhibited_by is None
    assert [s[0] for s in rec.sent] == ["input_lost.api", "sensor_silent.s1"]


def test_a_lost_input_mutes_only_the_sensors_behind_it() -> None:
    # A serial door contact going silent while the broker is down is its own alarm; a sensor
    # whose input the config does not tell (no `input`) may be behind any input.
    d, rec = desk()

    def silent(sensor: str, **facts: str) -> Alert:
        return Alert(key=f"sensor_silent.{sensor}", rule="sensor_silent", subject=sensor,
                     severity=Severity.ALARM, state=TransitionKind.FIRING, summary="silent",
                     storehouse="SH1", started_ns=T0, changed_ns=T0, facts=facts)

    d.condition(change("input_lost.serial:io1", "firing", "alarm", storehouse=""), T0)
    d.condition(silent("s1", input="mqtt"), T0 + NS)
    d.condition(silent("s2", input="serial:io1"), T0 + NS)
    d.condition(silent("s3"), T0 + NS)
    assert d.get("sensor_silent.s1").inhibited_by is None
    assert d.get("sensor_silent.s2").inhibited_by == "input_lost.serial:io1"
    assert d.get("sensor_silent.s3").inhibited_by == "input_lost.serial:io1"
    assert [s[0] for s in rec.sent] == ["input_lost.serial:io1", "sensor_silent.s1"]
