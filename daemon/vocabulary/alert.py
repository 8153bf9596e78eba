"""An alert as notifiers, the console and the state file see it after a state change."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from daemon.vocabulary.readings import FieldValue, Severity, TransitionKind

__all__ = ["Alert"]


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as notifiers see it after a state change."""

    key: str
    rule: str
    subject: str
    severity: Severity
    state: TransitionKind
    summary: str
    storehouse: str
    started_ns: int
    changed_ns: int
    facts: Mapping[str, FieldValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the state file."""
        return {"key": self.key, "rule": self.rule, "subject": self.subject,
                "severity": self.severity.value, "state": self.state.value,
                "summary": self.summary, "storehouse": self.storehouse,
                "started_ns": self.started_ns, "changed_ns": self.changed_ns,
                "facts": dict(self.facts)}

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Alert:
        """Back from `to_dict()`; a field of the wrong type raises ValueError (a damaged state
        file), so that no alert with a number for a key reaches the desk's timers."""
        return _ALERT.validate_json(json.dumps({"state": "firing", "facts": {}, **item}),
                                    strict=True)

    def to_json(self, site: str) -> bytes:
        """The JSON body published on the alerts topic."""
        return json.dumps({
            "site": site, "key": self.key, "rule": self.rule, "subject": self.subject,
            "severity": self.severity.value, "state": self.state.value,
            "summary": self.summary, "storehouse": self.storehouse,
            "started_ns": self.started_ns, "changed_ns": self.changed_ns,
            "facts": dict(self.facts),
        }, ensure_ascii=False).encode()


_ALERT = TypeAdapter(Alert)
