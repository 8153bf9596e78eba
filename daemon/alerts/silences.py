"""Silences: maintenance windows officers set, and the second officer's approval they may need."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter

from daemon.alerts.alarm import Alarm, LifecycleError
from daemon.alerts.settings import SilenceLimits
from daemon.vocabulary.readings import Severity
from rules.kinds import default_rules

__all__ = ["MATCHER_KEYS", "Silence", "Silences", "may_mute"]

_RANK = {Severity.WARNING: 0, Severity.ALARM: 1, Severity.CRITICAL: 2}
MATCHER_KEYS = ("rule", "storehouse", "door", "subject")


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
    # Why it waits for a second officer, in the officers' words ("" when it does not).
    approval_why: str = ""

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


def may_mute(matchers: Mapping[str, str], rule_severities: Mapping[str, Severity],
             open_alarms: Iterable[Alarm]) -> Severity:
    """The most severe alarm a silence with `matchers` may mute: its rule's configured severity
    and its open alarms'. Without a rule matcher it is critical; a rule the config does not
    name counts as its open alarms, or as critical when none is open (fail secure)."""
    rule = matchers.get("rule")
    if rule is None:
        return Severity.CRITICAL
    known = [rule_severities[rule]] if rule in rule_severities else []
    seen = [a.severity for a in open_alarms if a.rule == rule]
    return max(known + seen or [Severity.CRITICAL], key=_RANK.__getitem__)


def _default_severities() -> dict[str, Severity]:
    # Without a config's rules, every kind with its defaults (tests, replay).
    return {name: severity for rule in default_rules()
            for name, severity in rule.alarm_severities().items()}


class Silences:
    """Every silence by id; one beyond what one officer may set waits for a second one.

    `rule_severities` gives each rule name the most severe alarm its configuration raises."""

    def __init__(self, limits: SilenceLimits | None = None,
                 rule_severities: Mapping[str, Severity] | None = None) -> None:
        self._by_id: dict[str, Silence] = {}
        self._limits = limits or SilenceLimits()
        self._severities = dict(_default_severities() if rule_severities is None
                                else rule_severities)

    def newest_first(self) -> list[Silence]:
        """Every silence, newest first."""
        return sorted(self._by_id.values(), key=lambda s: -s.starts_ns)

    def add(self, matchers: dict[str, str], author: str, reason: str, ends_ns: int,
            now_ns: int, open_alarms: Iterable[Alarm]) -> Silence:
        """A silence from now until `ends_ns`; one that may mute a severity in `limits.approval`,
        or longer than one officer may set for what it may mute, awaits approval."""
        unknown = sorted(set(matchers) - set(MATCHER_KEYS))
        if unknown or not matchers:
            raise LifecycleError(f"matchers must be some of {', '.join(MATCHER_KEYS)}")
        if ends_ns <= now_ns:
            raise LifecycleError("a silence must end in the future")
        if not reason.strip():
            raise LifecycleError("a silence needs a reason")
        why = self.approval_why(matchers, ends_ns - now_ns, open_alarms)
        silence = Silence(id=secrets.token_hex(4), matchers=dict(matchers), author=author,
                          reason=reason, starts_ns=now_ns, ends_ns=ends_ns,
                          needs_approval=bool(why), approval_why=why)
        self._by_id[silence.id] = silence
        return silence

    def approval_why(self, matchers: Mapping[str, str], length_ns: int,
                     open_alarms: Iterable[Alarm]) -> str:
        """Why a silence like this would wait for a second officer ("" when it would not)."""
        return self._why(may_mute(matchers, self._severities, open_alarms), length_ns)

    def _why(self, severity: Severity, length_ns: int) -> str:
        if severity.value in self._limits.approval:
            return f"it may mute {severity.value} alarms"
        longest_s = self._limits.max_s.get(severity.value, 0.0)
        if length_ns > longest_s * 1_000_000_000:
            return (f"it is longer than the {longest_s / 3600:g} h one officer may silence "
                    f"{severity.value} alarms for")
        return ""

    def approve(self, silence_id: str, officer: str) -> Silence:
        """The second officer's approval of a silence one officer may not set alone."""
        silence = self.get(silence_id)
        if not silence.needs_approval or silence.approved_by is not None:
            raise LifecycleError(f"silence {silence_id} needs no (further) approval")
        if officer == silence.author:
            raise LifecycleError(
                "a silence of a critical rule needs a second, different officer"
                if silence.approval_why.startswith("it may mute critical") or
                not silence.approval_why else
                f"this silence needs a second, different officer: {silence.approval_why}")
        silence.approved_by = officer
        return silence

    def expire(self, silence_id: str, now_ns: int) -> Silence:
        """End a silence now."""
        silence = self.get(silence_id)
        if silence.expired_ns is not None:
            raise LifecycleError(f"silence {silence_id} has already expired")
        silence.expired_ns = now_ns
        return silence

    def get(self, silence_id: str) -> Silence:
        """One silence by id."""
        if silence_id not in self._by_id:
            raise LifecycleError(f"no silence {silence_id!r}")
        return self._by_id[silence_id]

    def muting(self, alarm: Alarm, now_ns: int) -> str | None:
        """The id of a silence in force now that matches the alarm, if any."""
        return next((s.id for s in self._by_id.values()
                     if s.active(now_ns) and s.matches(alarm)), None)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every silence, JSON-ready."""
        return [s.to_dict() for s in self._by_id.values()]

    def restore(self, saved: Sequence[Mapping[str, Any]]) -> None:
        """Take back the silences of `snapshot()` after a restart; a field of the wrong type
        raises ValueError (a damaged state file: better no silence than a wrong one)."""
        silences = [_SILENCE.validate_json(json.dumps(s), strict=True) for s in saved]
        self._by_id = {s.id: s for s in silences}


_SILENCE = TypeAdapter(Silence)
