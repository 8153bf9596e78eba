"""The alarm desk officers work at: firing -> acknowledged -> checked -> cleared.

Alertmanager-style stages on top of the rules' conditions: a new alarm is checked against
silences and inhibitions (both just "mute" predicates), then notified; unacknowledged alarms are
re-sent and escalated on a ladder; an alarm that needs an on-site check (PSSM.md: never cleared
remotely) stays open until the check is recorded, whatever its condition does. Pure and
synchronous like the engine: every call takes `now_ns`, so a virtual clock drives it in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from daemon.alerts.alarm import Alarm, AlarmState, Finding, LifecycleError
from daemon.alerts.escalation import ALWAYS, Escalation, Notify
from daemon.alerts.inhibition import inhibitor
from daemon.alerts.settings import AlertingConfig
from daemon.alerts.silences import Silence, Silences
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Severity, TransitionKind
from rules.zone_keypad import SILENT_RULES

__all__ = ["AlarmDesk", "Audit"]

_NS = 1_000_000_000

# An audit entry: actor, action, subject, details, when.
Audit = Callable[[str, str, str, Mapping[str, Any], int], object]


class AlarmDesk:
    """Holds every open alarm and the silences; turns condition changes and officers' actions
    into notices (with their targets) and audit entries."""

    def __init__(self, config: AlertingConfig, notify: Notify, audit: Audit | None = None,
                 *, keep_cleared: int = 200,
                 rule_severities: Mapping[str, Severity] | None = None,
                 redact: Callable[[str], str] | None = None) -> None:
        self._config = config
        # Officers' free text (notes, reasons) is kept and audited without any token in it.
        self._redact = redact or (lambda text: text)
        self._notify = notify
        self._audit = audit or (lambda actor, action, subject, details, at_ns: None)
        self._escalation = Escalation(config.escalation)
        self._alarms: dict[str, Alarm] = {}
        self._cleared: list[Alarm] = []
        # What each rule's configuration may raise decides how long one officer may silence it.
        self._silences = Silences(config.silences, rule_severities)
        self._keep_cleared = keep_cleared

    def reconfigure(self, config: AlertingConfig, notify: Notify | None = None, *,
                    rule_severities: Mapping[str, Severity] | None = None) -> None:
        """New alerting settings (a config reload): open alarms and silences stay as they are."""
        silences = Silences(config.silences, rule_severities)
        silences.restore(self._silences.snapshot())
        self._config, self._silences = config, silences
        self._escalation = Escalation(config.escalation)
        if notify is not None:
            self._notify = notify

    # -- queries -------------------------------------------------------------------------------

    def alarms(self, include_cleared: bool = False, include_silent: bool = True) -> list[Alarm]:
        """Open alarms, most severe and oldest first (then the recently cleared); the depot's
        own console leaves out silent ones (duress)."""
        order = {Severity.CRITICAL: 0, Severity.ALARM: 1, Severity.WARNING: 2}
        open_ = sorted(self._alarms.values(), key=lambda a: (order[a.severity], a.started_ns))
        listed = open_ + (list(reversed(self._cleared)) if include_cleared else [])
        return listed if include_silent else [a for a in listed if a.rule not in SILENT_RULES]

    def get(self, key: str) -> Alarm:
        """One alarm, open or recently cleared."""
        if key in self._alarms:
            return self._alarms[key]
        for alarm in reversed(self._cleared):
            if alarm.key == key:
                return alarm
        raise LifecycleError(f"no alarm {key!r}")

    def needs_check(self, alarm: Alarm) -> bool:
        """Whether the alarm's severity takes an on-site check before it clears."""
        return alarm.severity.value in self._config.check_required

    def silences(self) -> list[Silence]:
        """Every silence, newest first."""
        return self._silences.newest_first()

    def open_alerts(self) -> list[Alert]:
        """Open alarms as alerts, for notifiers that re-send what is active (Alertmanager)."""
        return [a.as_alert(a.last_sent_ns or a.started_ns) for a in self.alarms() if not a.muted]

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
                self._send(alarm, now_ns, ALWAYS)
                return
            self._raise_alarm(change, now_ns)
            return
        if alarm is None:
            return
        alarm.condition_active = False
        alarm.summary = change.summary
        needs_check = self.needs_check(alarm)
        if alarm.muted and alarm.last_sent_ns == 0:
            # Nobody was paged: the silence or the inhibiting alarm (checked on its own) covers it.
            cause = alarm.silenced_by or alarm.inhibited_by or "an inhibition that just ended"
            self._clear(alarm, "system", f"condition ended while muted by {cause}; never paged",
                        now_ns)
        elif not needs_check or alarm.checked_ns is not None:
            self._clear(alarm, "system", "condition ended", now_ns)
        else:
            self._audit("system", "condition_ended", alarm.key,
                        {"summary": change.summary, "awaiting": "on-site check"}, now_ns)
            self._send(alarm, now_ns, ALWAYS)

    def _raise_alarm(self, change: Alert, now_ns: int) -> None:
        alarm = Alarm(key=change.key, rule=change.rule, subject=change.subject,
                      severity=change.severity, storehouse=change.storehouse,
                      summary=change.summary, facts=dict(change.facts), started_ns=now_ns,
                      headline=change.summary)
        self._alarms[alarm.key] = alarm
        self._mute(alarm, now_ns)
        self._audit("system", "raised", alarm.key,
                    {"severity": alarm.severity.value, "summary": alarm.summary,
                     "silenced_by": alarm.silenced_by, "inhibited_by": alarm.inhibited_by},
                    now_ns)
        if not alarm.muted:
            self._send(alarm, now_ns, self._escalation.targets(alarm, 0))

    # -- officers' actions ---------------------------------------------------------------------

    def acknowledge(self, key: str, officer: str, note: str, now_ns: int) -> Alarm:
        """Stops repeats and escalation; the alarm stays open until cleared."""
        alarm, note = self._open(key), self._redact(note)
        if alarm.state is AlarmState.ACKNOWLEDGED:
            raise LifecycleError(f"{key} was already acknowledged by {alarm.acked_by}")
        alarm.state, alarm.acked_by, alarm.acked_ns, alarm.ack_note = (
            AlarmState.ACKNOWLEDGED, officer, now_ns, note)
        self._audit(officer, "acknowledged", key, {"note": note}, now_ns)
        self._send(alarm, now_ns, self._escalation.reached(alarm))
        return alarm

    def record_check(self, key: str, officer: str, finding: Finding, note: str,
                     now_ns: int) -> Alarm:
        """The on-site check of an acknowledged alarm; clears it once its condition has ended."""
        alarm, note = self._open(key), self._redact(note)
        if alarm.state is AlarmState.FIRING:
            # Someone must own the alarm before anyone reports from the door (issue 30).
            raise LifecycleError(f"{key} is not acknowledged yet: acknowledge it before "
                                 "recording the on-site check")
        alarm.checked_by, alarm.checked_ns, alarm.finding, alarm.check_note = (
            officer, now_ns, finding, note)
        self._audit(officer, "checked", key, {"finding": finding.value, "note": note}, now_ns)
        if alarm.condition_active:
            self._send(alarm, now_ns, self._escalation.reached(alarm))
        else:
            self._clear(alarm, officer, f"on-site check: {finding.value}", now_ns)
        return alarm

    def add_silence(self, matchers: dict[str, str], author: str, reason: str, ends_ns: int,
                    now_ns: int) -> Silence:
        """A silence from now until `ends_ns`; one that may mute a critical rule awaits approval."""
        reason = self._redact(reason)
        silence = self._silences.add(matchers, author, reason, ends_ns, now_ns,
                                     self._alarms.values())
        self._audit(author, "silence_created", silence.id,
                    {"matchers": matchers, "reason": reason, "ends_ns": ends_ns,
                     "needs_approval": silence.needs_approval}, now_ns)
        self._remute(now_ns)
        return silence

    def silence_approval_why(self, matchers: Mapping[str, str], ends_ns: int,
                             now_ns: int) -> str:
        """Why such a silence would wait for a second officer ("" when one officer may set it)."""
        return self._silences.approval_why(matchers, ends_ns - now_ns, self._alarms.values())

    def approve_silence(self, silence_id: str, officer: str, now_ns: int) -> Silence:
        """The second officer's approval of a silence that may mute a critical rule."""
        silence = self._silences.approve(silence_id, officer)
        self._audit(officer, "silence_approved", silence_id, {}, now_ns)
        self._remute(now_ns)
        return silence

    def expire_silence(self, silence_id: str, officer: str, now_ns: int) -> Silence:
        """End a silence now."""
        silence = self._silences.expire(silence_id, now_ns)
        self._audit(officer, "silence_expired", silence_id, {}, now_ns)
        self._remute(now_ns)
        return silence

    # -- time ------------------------------------------------------------------------------------

    def tick(self, now_ns: int) -> None:
        """Repeats, escalation steps, silences running out."""
        self._remute(now_ns)
        for alarm in list(self._alarms.values()):
            if alarm.state is not AlarmState.FIRING or alarm.muted:
                continue
            while (step := self._escalation.due(alarm, now_ns)) is not None:
                alarm.escalation_step += 1
                self._audit("system", "escalated", alarm.key,
                            {"step": alarm.escalation_step, "notify": step.notify}, now_ns)
                self._send(alarm, now_ns, frozenset(step.notify))
            repeat_s = self._config.repeat_s.get(alarm.severity.value)
            if repeat_s and now_ns - alarm.last_sent_ns >= repeat_s * _NS:
                self._send(alarm, now_ns, self._escalation.reached(alarm))

    # -- state file ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Open and recently cleared alarms and silences, JSON-ready."""
        return {"open": [a.to_dict() for a in self._alarms.values()],
                "cleared": [a.to_dict() for a in self._cleared],
                "silences": self._silences.snapshot()}

    def restore(self, saved: Mapping[str, Any]) -> None:
        """Take back alarms (with their escalation steps) and silences after a restart; all or
        nothing: a damaged entry raises ValueError or TypeError and changes nothing."""
        opened = [Alarm.from_dict(a) for a in saved.get("open", [])]
        cleared = [Alarm.from_dict(a) for a in saved.get("cleared", [])]
        self._silences.restore(saved.get("silences", []))
        self._alarms = {a.key: a for a in opened}
        self._cleared = cleared

    # -- inside ----------------------------------------------------------------------------------

    def _open(self, key: str) -> Alarm:
        alarm = self.get(key)
        if alarm.state is AlarmState.CLEARED:
            raise LifecycleError(f"{key} is already cleared")
        return alarm

    def _mute(self, alarm: Alarm, now_ns: int) -> None:
        alarm.silenced_by = self._silences.muting(alarm, now_ns)
        alarm.inhibited_by = inhibitor(alarm, self._alarms.values(), self._config.inhibit)

    def _remute(self, now_ns: int) -> None:
        for alarm in list(self._alarms.values()):
            grace_over = alarm.unmute_ns is not None and now_ns >= alarm.unmute_ns
            if grace_over:
                alarm.unmute_ns = None  # page it below, unless something mutes it again
            was_muted = grace_over or alarm.muted
            was_inhibited = alarm.inhibited_by is not None
            self._mute(alarm, now_ns)
            if not was_muted or alarm.muted or alarm.state is not AlarmState.FIRING:
                continue
            if was_inhibited and alarm.last_sent_ns == 0 and self._config.inhibit_grace_s > 0:
                alarm.unmute_ns = now_ns + int(self._config.inhibit_grace_s * _NS)
                continue
            # A silence ran out or its cause cleared: the officers hear of it now.
            self._audit("system", "unmuted", alarm.key, {}, now_ns)
            self._send(alarm, now_ns, self._escalation.targets(alarm, alarm.escalation_step))

    def _clear(self, alarm: Alarm, actor: str, why: str, now_ns: int) -> None:
        alarm.state, alarm.cleared_ns = AlarmState.CLEARED, now_ns
        del self._alarms[alarm.key]
        self._cleared = [*self._cleared, alarm][-self._keep_cleared:]
        self._audit(actor, "cleared", alarm.key, {"why": why}, now_ns)
        if alarm.last_sent_ns:
            self._send(alarm, now_ns, self._escalation.reached(alarm))
        for other in list(self._alarms.values()):
            if other.inhibited_by == alarm.key:
                self._remute(now_ns)
                break

    def _send(self, alarm: Alarm, now_ns: int, targets: frozenset[str] | None) -> None:
        alarm.last_sent_ns = now_ns
        self._notify(alarm.as_alert(now_ns), targets)
