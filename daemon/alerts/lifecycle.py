"""The alarm lifecycle officers work with: firing -> acknowledged -> cleared.

Alertmanager-style stages on top of the rules' conditions: a new alarm is checked against
silences and inhibitions (both just "mute" predicates), then notified; unacknowledged alarms are
re-sent and escalated on a ladder; an alarm that needs an on-site check (PSSM.md: never cleared
remotely) stays open until the check is recorded, whatever its condition does. Pure and
synchronous like the engine: every call takes `now_ns`, so a virtual clock drives it in tests.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import DepotwatchError
from daemon.vocabulary.readings import FieldValue, Severity, TransitionKind
from rules.input_lost import NOT_SENSOR_INPUTS

__all__ = [
    "CRITICAL_RULES",
    "Alarm",
    "AlarmDesk",
    "AlarmState",
    "AlertingConfig",
    "Finding",
    "LifecycleError",
    "Silence",
    "routed",
]

_NS = 1_000_000_000
# Rules whose alarms can be critical: silencing them takes a second officer's approval.
CRITICAL_RULES = frozenset({"door_armed", "tamper", "two_person", "two_person_alone",
                            "portal_movement", "temperature_critical", "door_forced"})
MATCHER_KEYS = ("rule", "storehouse", "door", "subject")


class Finding(enum.StrEnum):
    """What the on-site check found (MP1003: every alarm logged with its nature)."""

    INTRUSION = "intrusion"
    FAULT = "fault"
    FALSE_ALARM = "false_alarm"


class AlarmState(enum.StrEnum):
    """Where an alarm is in its lifecycle."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class LifecycleError(DepotwatchError):
    """An officer's action the lifecycle refuses; the message says why."""


class EscalationStep(BaseModel):
    """Who is told once an alarm has gone `after_s` without acknowledgement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_s: float = Field(ge=0)
    notify: list[str] = Field(min_length=1)


def _same(label: str, source: str, target: str) -> bool:
    """Whether an inhibiting alarm's label covers the muted one's."""
    if label == "input" and not target:
        return True  # which input feeds the sensor is not known: any lost input may be why
    return source == target


class InhibitRule(BaseModel):
    """While a `source_rule` alarm is open, `target_rule` alarms with equal labels stay muted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_rule: str
    target_rule: str
    # "input": the gateway input (`mqtt`, `serial:<id>`, ...) a sensor reports through, or the
    # lost input itself; an alarm whose input the config does not tell matches every input.
    equal: list[Literal["storehouse", "subject", "door", "input"]] = Field(default_factory=list)
    # Subjects of the source rule that do not mute anything (the officers' API is no input
    # that sensors report through).
    source_subject_not: list[str] = Field(default_factory=list)


SeverityName = Literal["warning", "alarm", "critical"]


def _default_repeat() -> dict[SeverityName, float]:
    return {"critical": 120.0, "alarm": 300.0, "warning": 1800.0}


def _default_check_required() -> list[SeverityName]:
    return ["critical", "alarm"]


def _default_inhibit() -> list[InhibitRule]:
    # One cause, one page: a lost broker connection silences every sensor behind it, and only
    # those (a serial door contact going silent while MQTT is down is paged).
    return [InhibitRule(source_rule="input_lost", target_rule="sensor_silent", equal=["input"],
                        source_subject_not=sorted(NOT_SENSOR_INPUTS))]


class AlertingConfig(BaseModel):
    """Repeat, escalation, on-site checks and inhibition (PSSM.md alarm delivery rows)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Re-send an unacknowledged alarm this often, per severity.
    repeat_s: dict[SeverityName, float] = Field(default_factory=_default_repeat)
    # Ladder per severity; the first step's `notify` list is who gets the alarm at once. Without
    # a ladder every notifier gets it at once. Notifier names: `mqtt`, `log`, and the configured.
    escalation: dict[SeverityName, list[EscalationStep]] = Field(default_factory=dict)
    # Never cleared by the condition alone: an officer records the on-site check.
    check_required: list[SeverityName] = Field(default_factory=_default_check_required)
    inhibit: list[InhibitRule] = Field(default_factory=_default_inhibit)
    # Once the cause of an inhibition clears, what it hid waits this long before it is paged:
    # the readings that arrive when a broker comes back end most of it unpaged.
    inhibit_grace_s: float = Field(default=60.0, ge=0)


@dataclass(slots=True)
class Alarm:
    """One alarm as officers see it."""

    key: str
    rule: str
    subject: str
    severity: Severity
    storehouse: str
    summary: str
    facts: dict[str, FieldValue]
    started_ns: int
    state: AlarmState = AlarmState.FIRING
    condition_active: bool = True
    acked_by: str | None = None
    acked_ns: int | None = None
    ack_note: str = ""
    checked_by: str | None = None
    checked_ns: int | None = None
    finding: Finding | None = None
    check_note: str = ""
    escalation_step: int = 0
    silenced_by: str | None = None
    inhibited_by: str | None = None
    cleared_ns: int | None = None
    last_sent_ns: int = 0
    notified: list[str] = field(default_factory=list)
    # Its inhibition ended; paged at this time unless its condition ends first.
    unmute_ns: int | None = None

    def labels(self) -> dict[str, str]:
        """What silences and inhibitions match on."""
        door = self.facts.get("door")
        gateway_input = self.subject if self.rule == "input_lost" else self.facts.get("input")
        return {"rule": self.rule, "storehouse": self.storehouse, "subject": self.subject,
                "door": str(door) if door is not None else self.subject,
                "input": str(gateway_input) if gateway_input is not None else ""}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, every field."""
        out = dataclasses.asdict(self)
        for name in ("severity", "state", "finding"):
            value = getattr(self, name)
            out[name] = value.value if value is not None else None
        return out

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Alarm:
        """Back from `to_dict()`."""
        data = dict(item)
        data["severity"] = Severity(data["severity"])
        data["state"] = AlarmState(data["state"])
        data["finding"] = Finding(data["finding"]) if data.get("finding") else None
        return cls(**data)


@dataclass(slots=True)
class Silence:
    """A maintenance window: alarms matching every matcher are recorded but not sent."""

    id: str
    matchers: dict[str, str]
    author: str
    reason: str
    starts_ns: int
    ends_ns: int
    needs_approval: bool
    approved_by: str | None = None
    expired_ns: int | None = None

    def active(self, now_ns: int) -> bool:
        """In force now: started, not ended or expired, approved where needed."""
        return (self.starts_ns <= now_ns < self.ends_ns and self.expired_ns is None
                and (not self.needs_approval or self.approved_by is not None))

    def matches(self, alarm: Alarm) -> bool:
        """Whether every matcher equals the alarm's label."""
        labels = alarm.labels()
        return all(labels.get(k) == v for k, v in self.matchers.items())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, every field."""
        return dataclasses.asdict(self)


# Where a notice goes: None = every notifier, else the named ones (escalation steps).
Notify = Callable[[Alert, frozenset[str] | None], None]
Audit = Callable[[str, str, str, Mapping[str, Any], int], object]
_ALWAYS = frozenset({"mqtt", "log"})


class AlarmDesk:
    """Holds every open alarm and the silences; turns condition changes and officers' actions
    into notices (with their targets) and audit entries."""

    def __init__(self, config: AlertingConfig, notify: Notify, audit: Audit | None = None,
                 *, keep_cleared: int = 200) -> None:
        self._config = config
        self._notify = notify
        self._audit = audit or (lambda actor, action, subject, details, at_ns: None)
        self._alarms: dict[str, Alarm] = {}
        self._cleared: list[Alarm] = []
        self._silences: dict[str, Silence] = {}
        self._keep_cleared = keep_cleared

    # -- queries -------------------------------------------------------------------------------

    def alarms(self, include_cleared: bool = False) -> list[Alarm]:
        """Open alarms, most severe and oldest first (then the recently cleared)."""
        order = {Severity.CRITICAL: 0, Severity.ALARM: 1, Severity.WARNING: 2}
        open_ = sorted(self._alarms.values(), key=lambda a: (order[a.severity], a.started_ns))
        return open_ + (list(reversed(self._cleared)) if include_cleared else [])

    def get(self, key: str) -> Alarm:
        """One alarm, open or recently cleared."""
        if key in self._alarms:
            return self._alarms[key]
        for alarm in reversed(self._cleared):
            if alarm.key == key:
                return alarm
        raise LifecycleError(f"no alarm {key!r}")

    def silences(self) -> list[Silence]:
        """Every silence, newest first."""
        return sorted(self._silences.values(), key=lambda s: -s.starts_ns)

    # -- conditions from the rules ---------------------------------------------------------------

    def condition(self, change: Alert, now_ns: int) -> None:
        """A rule's condition started or ended (the AlertBook's deduplicated change)."""
        alarm = self._alarms.get(change.key)
        if change.state is TransitionKind.FIRING:
            if alarm is not None:
                alarm.condition_active = True
                alarm.summary = change.summary
                self._audit("system", "condition_again", change.key,
                            {"summary": change.summary}, now_ns)
                self._send(alarm, now_ns, _ALWAYS)
                return
            alarm = Alarm(key=change.key, rule=change.rule, subject=change.subject,
                          severity=change.severity, storehouse=change.storehouse,
                          summary=change.summary, facts=dict(change.facts),
                          started_ns=now_ns)
            self._alarms[alarm.key] = alarm
            self._mute(alarm, now_ns)
            self._audit("system", "raised", alarm.key,
                        {"severity": alarm.severity.value, "summary": alarm.summary,
                         "silenced_by": alarm.silenced_by, "inhibited_by": alarm.inhibited_by},
                        now_ns)
            if not self._muted(alarm):
                self._send(alarm, now_ns, self._step_targets(alarm, 0))
            return
        if alarm is None:
            return
        alarm.condition_active = False
        alarm.summary = change.summary
        needs_check = alarm.severity.value in self._config.check_required
        if self._muted(alarm) and alarm.last_sent_ns == 0:
            # Nobody was paged: the silence or the inhibiting alarm (checked on its own) covers it.
            cause = alarm.silenced_by or alarm.inhibited_by or "an inhibition that just ended"
            self._clear(alarm, "system", f"condition ended while muted by {cause}; never paged",
                        now_ns)
        elif not needs_check or alarm.checked_ns is not None:
            self._clear(alarm, "system", "condition ended", now_ns)
        else:
            self._audit("system", "condition_ended", alarm.key,
                        {"summary": change.summary, "awaiting": "on-site check"}, now_ns)
            self._send(alarm, now_ns, _ALWAYS)

    # -- officers' actions ---------------------------------------------------------------------

    def acknowledge(self, key: str, officer: str, note: str, now_ns: int) -> Alarm:
        """Stops repeats and escalation; the alarm stays open until cleared."""
        alarm = self._open(key)
        if alarm.state is AlarmState.ACKNOWLEDGED:
            raise LifecycleError(f"{key} was already acknowledged by {alarm.acked_by}")
        alarm.state, alarm.acked_by, alarm.acked_ns, alarm.ack_note = (
            AlarmState.ACKNOWLEDGED, officer, now_ns, note)
        self._audit(officer, "acknowledged", key, {"note": note}, now_ns)
        self._send(alarm, now_ns, self._reached(alarm))
        return alarm

    def record_check(self, key: str, officer: str, finding: Finding, note: str,
                     now_ns: int) -> Alarm:
        """The on-site check; clears the alarm once its condition has ended."""
        alarm = self._open(key)
        if alarm.state is AlarmState.FIRING:
            alarm.state, alarm.acked_by, alarm.acked_ns = AlarmState.ACKNOWLEDGED, officer, now_ns
        alarm.checked_by, alarm.checked_ns, alarm.finding, alarm.check_note = (
            officer, now_ns, finding, note)
        self._audit(officer, "checked", key, {"finding": finding.value, "note": note}, now_ns)
        if alarm.condition_active:
            self._send(alarm, now_ns, self._reached(alarm))
        else:
            self._clear(alarm, officer, f"on-site check: {finding.value}", now_ns)
        return alarm

    def add_silence(self, matchers: dict[str, str], author: str, reason: str, ends_ns: int,
                    now_ns: int) -> Silence:
        """A silence from now until `ends_ns`; one that may mute a critical rule awaits approval."""
        unknown = sorted(set(matchers) - set(MATCHER_KEYS))
        if unknown or not matchers:
            raise LifecycleError(f"matchers must be some of {', '.join(MATCHER_KEYS)}")
        if ends_ns <= now_ns:
            raise LifecycleError("a silence must end in the future")
        if not reason.strip():
            raise LifecycleError("a silence needs a reason")
        rule = matchers.get("rule")
        critical = rule is None or rule in CRITICAL_RULES or any(
            a.severity is Severity.CRITICAL and (rule is None or a.rule == rule)
            for a in self._alarms.values())
        silence = Silence(id=secrets.token_hex(4), matchers=dict(matchers), author=author,
                          reason=reason, starts_ns=now_ns, ends_ns=ends_ns,
                          needs_approval=critical)
        self._silences[silence.id] = silence
        self._audit(author, "silence_created", silence.id,
                    {"matchers": matchers, "reason": reason, "ends_ns": ends_ns,
                     "needs_approval": critical}, now_ns)
        self._remute(now_ns)
        return silence

    def approve_silence(self, silence_id: str, officer: str, now_ns: int) -> Silence:
        """The second officer's approval of a silence that may mute a critical rule."""
        silence = self._silence(silence_id)
        if not silence.needs_approval or silence.approved_by is not None:
            raise LifecycleError(f"silence {silence_id} needs no (further) approval")
        if officer == silence.author:
            raise LifecycleError("a silence of a critical rule needs a second, different officer")
        silence.approved_by = officer
        self._audit(officer, "silence_approved", silence_id, {}, now_ns)
        self._remute(now_ns)
        return silence

    def expire_silence(self, silence_id: str, officer: str, now_ns: int) -> Silence:
        """End a silence now."""
        silence = self._silence(silence_id)
        if silence.expired_ns is not None:
            raise LifecycleError(f"silence {silence_id} has already expired")
        silence.expired_ns = now_ns
        self._audit(officer, "silence_expired", silence_id, {}, now_ns)
        self._remute(now_ns)
        return silence

    # -- time ------------------------------------------------------------------------------------

    def tick(self, now_ns: int) -> None:
        """Repeats, escalation steps, silences running out."""
        self._remute(now_ns)
        for alarm in list(self._alarms.values()):
            if alarm.state is not AlarmState.FIRING or self._muted(alarm):
                continue
            ladder = self._config.escalation.get(alarm.severity.value, [])
            age_ns = now_ns - alarm.started_ns
            while (alarm.escalation_step + 1 < len(ladder)
                   and age_ns >= ladder[alarm.escalation_step + 1].after_s * _NS):
                alarm.escalation_step += 1
                step = ladder[alarm.escalation_step]
                self._audit("system", "escalated", alarm.key,
                            {"step": alarm.escalation_step, "notify": step.notify}, now_ns)
                self._send(alarm, now_ns, frozenset(step.notify))
            repeat_s = self._config.repeat_s.get(alarm.severity.value)
            if repeat_s and now_ns - alarm.last_sent_ns >= repeat_s * _NS:
                self._send(alarm, now_ns, self._reached(alarm))

    # -- state file ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Open and recently cleared alarms and silences, JSON-ready."""
        return {"open": [a.to_dict() for a in self._alarms.values()],
                "cleared": [a.to_dict() for a in self._cleared],
                "silences": [s.to_dict() for s in self._silences.values()]}

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Take back alarms (with their escalation steps) and silences after a restart."""
        self._alarms = {a["key"]: Alarm.from_dict(a) for a in saved.get("open", [])}
        self._cleared = [Alarm.from_dict(a) for a in saved.get("cleared", [])]
        self._silences = {s["id"]: Silence(**s) for s in saved.get("silences", [])}

    # -- inside ----------------------------------------------------------------------------------

    def _open(self, key: str) -> Alarm:
        alarm = self.get(key)
        if alarm.state is AlarmState.CLEARED:
            raise LifecycleError(f"{key} is already cleared")
        return alarm

    def _silence(self, silence_id: str) -> Silence:
        if silence_id not in self._silences:
            raise LifecycleError(f"no silence {silence_id!r}")
        return self._silences[silence_id]

    def _muted(self, alarm: Alarm) -> bool:
        return (alarm.silenced_by is not None or alarm.inhibited_by is not None
                or alarm.unmute_ns is not None)

    def _mute(self, alarm: Alarm, now_ns: int) -> None:
        alarm.silenced_by = next((s.id for s in self._silences.values()
                                  if s.active(now_ns) and s.matches(alarm)), None)
        alarm.inhibited_by = None
        labels = alarm.labels()
        for rule in self._config.inhibit:
            if rule.target_rule != alarm.rule:
                continue
            for source in self._alarms.values():
                if source.rule == rule.source_rule and source.key != alarm.key and (
                        source.subject not in rule.source_subject_not) and all(
                        _same(k, source.labels()[k], labels[k]) for k in rule.equal):
                    alarm.inhibited_by = source.key
                    break

    def _remute(self, now_ns: int) -> None:
        for alarm in list(self._alarms.values()):
            grace_over = alarm.unmute_ns is not None and now_ns >= alarm.unmute_ns
            if grace_over:
                alarm.unmute_ns = None  # page it below, unless something mutes it again
            was_muted = grace_over or self._muted(alarm)
            was_inhibited = alarm.inhibited_by is not None
            self._mute(alarm, now_ns)
            if not was_muted or self._muted(alarm) or alarm.state is not AlarmState.FIRING:
                continue
            if was_inhibited and alarm.last_sent_ns == 0 and self._config.inhibit_grace_s > 0:
                alarm.unmute_ns = now_ns + int(self._config.inhibit_grace_s * _NS)
                continue
            # A silence ran out or its cause cleared: the officers hear of it now.
            self._audit("system", "unmuted", alarm.key, {}, now_ns)
            self._send(alarm, now_ns, self._step_targets(alarm, alarm.escalation_step))

    def _step_targets(self, alarm: Alarm, step: int) -> frozenset[str] | None:
        ladder = self._config.escalation.get(alarm.severity.value, [])
        return frozenset(ladder[step].notify) if ladder else None

    def _reached(self, alarm: Alarm) -> frozenset[str] | None:
        """Everyone told so far about this alarm (None = every notifier)."""
        ladder = self._config.escalation.get(alarm.severity.value, [])
        if not ladder:
            return None
        return frozenset(n for step in ladder[: alarm.escalation_step + 1] for n in step.notify)

    def _clear(self, alarm: Alarm, actor: str, why: str, now_ns: int) -> None:
        alarm.state, alarm.cleared_ns = AlarmState.CLEARED, now_ns
        del self._alarms[alarm.key]
        self._cleared = [*self._cleared, alarm][-self._keep_cleared:]
        self._audit(actor, "cleared", alarm.key, {"why": why}, now_ns)
        if alarm.last_sent_ns:
            self._send(alarm, now_ns, self._reached(alarm))
        for other in list(self._alarms.values()):
            if other.inhibited_by == alarm.key:
                self._remute(now_ns)
                break

    def open_alerts(self) -> list[Alert]:
        """Open alarms as alerts, for notifiers that re-send what is active (Alertmanager)."""
        return [self._as_alert(a, a.last_sent_ns or a.started_ns) for a in self.alarms()
                if not self._muted(a)]

    def _send(self, alarm: Alarm, now_ns: int, targets: frozenset[str] | None) -> None:
        alarm.last_sent_ns = now_ns
        self._notify(self._as_alert(alarm, now_ns), targets)

    def _as_alert(self, alarm: Alarm, now_ns: int) -> Alert:
        state = TransitionKind.RESOLVED if alarm.state is AlarmState.CLEARED else (
            TransitionKind.FIRING)
        facts: dict[str, FieldValue] = {**alarm.facts, "lifecycle": alarm.state.value,
                                        "condition_active": alarm.condition_active,
                                        "escalation_step": float(alarm.escalation_step)}
        for name in ("acked_by", "checked_by"):
            value = getattr(alarm, name)
            if value:
                facts[name] = value
        if alarm.finding is not None:
            facts["finding"] = alarm.finding.value
        return Alert(
            key=alarm.key, rule=alarm.rule, subject=alarm.subject, severity=alarm.severity,
            state=state, summary=alarm.summary, storehouse=alarm.storehouse,
            started_ns=alarm.started_ns, changed_ns=now_ns, facts=facts,
        )


def routed(notify_all: Sequence[tuple[str, Callable[[Alert], None]]],
           always: frozenset[str] = _ALWAYS) -> Notify:
    """A Notify that puts each notice into the outboxes its targets name; the `always` ones
    (MQTT state, the log, a console) get every notice, lifecycle updates included."""

    def notify(alert: Alert, targets: frozenset[str] | None) -> None:
        for name, put in notify_all:
            if targets is None or name in targets or name in always:
                put(alert)

    return notify
