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
from daemon.vocabulary.readings import Severity

__all__ = ["CRITICAL_RULES", "MATCHER_KEYS", "Silence", "Silences"]

# Rules whose alarms can be critical: silencing them takes a second officer's approval.
CRITICAL_RULES = frozenset({"door_armed", "tamper", "two_person", "two_person_alone",
                            "portal_movement", "temperature_critical", "door_forced"})
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


class Silences:
    """Every silence by id; refuses the ones the depot's rules do not allow."""

    def __init__(self) -> None:
        self._by_id: dict[str, Silence] = {}

    def newest_first(self) -> list[Silence]:
        """Every silence, newest first."""
        return sorted(self._by_id.values(), key=lambda s: -s.starts_ns)

    def add(self, matchers: dict[str, str], author: str, reason: str, ends_ns: int,
            now_ns: int, open_alarms: Iterable[Alarm]) -> Silence:
        """A silence from now until `ends_ns`; one that may mute a critical rule, or a rule with
        a critical alarm open, awaits approval."""
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
            for a in open_alarms)
        silence = Silence(id=secrets.token_hex(4), matchers=dict(matchers), author=author,
                          reason=reason, starts_ns=now_ns, ends_ns=ends_ns,
                          needs_approval=critical)
        self._by_id[silence.id] = silence
        return silence

    def approve(self, silence_id: str, officer: str) -> Silence:
        """The second officer's approval of a silence that may mute a critical rule."""
        silence = self.get(silence_id)
        if not silence.needs_approval or silence.approved_by is not None:
            raise LifecycleError(f"silence {silence_id} needs no (further) approval")
        if officer == silence.author:
            raise LifecycleError("a silence of a critical rule needs a second, different officer")
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
