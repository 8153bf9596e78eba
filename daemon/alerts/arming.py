"""Officers arming and disarming zones (API, MQTT command); every zone change audited.

The zone's state machine is the rules' (rules/zone_arming.py): a request goes through the
pipeline like a reading, and the `zone` fact it leads to is the answer. Changes that no officer
asked for (an exit delay running out, an entry delay turning into an alarm, a keypad) reach the
audit trail the same way, as facts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from daemon.alerts.alarm import LifecycleError
from daemon.vocabulary.clock import Clock
from daemon.vocabulary.readings import FieldValue
from rules.base import Fact
from rules.zone_state import ZoneView, zone_request

__all__ = ["ArmingDesk", "ArmingRefused", "ZonePipeline"]

Audit = Callable[[str, str, str, Mapping[str, Any], int], None]


class ZonePipeline(Protocol):
    """What the desk needs of the pipeline: requests in, every fact heard."""

    fact_listeners: list[Callable[[Fact], None]]

    def zone_request(self, storehouse: str, values: Mapping[str, FieldValue],
                     now_ns: int) -> list[Fact]:
        """The `zone` facts a request led to."""
        ...

    def zone_views(self, now_ns: int) -> list[ZoneView]:
        """Every storehouse's zone now."""
        ...


class ArmingRefused(LifecycleError):
    """The zone was not armed or disarmed; `answer` says why and what is not secured."""

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(f"{answer.get('action', 'walk_test')} {answer['storehouse']} refused: "
                         + (f"not secured: {', '.join(answer['not_secured'])}"
                            if answer.get("not_secured") else answer["note"]))
        self.answer = answer


class ArmingDesk:
    """Passes officers' arm and disarm requests to the zone rule and audits every zone change."""

    def __init__(self, clock: Clock, audit: Audit) -> None:
        self._clock = clock
        self._audit = audit
        self._pipeline: ZonePipeline | None = None

    def attach(self, pipeline: ZonePipeline) -> None:
        """Where requests go, and whose zone facts are audited: the pipeline, built after the
        API and the command desk."""
        self._pipeline = pipeline
        pipeline.fact_listeners.append(self.record)

    def request(self, storehouse: str, action: str, officer: str, how: str, *,
                force: bool = False, note: str = "") -> dict[str, Any]:
        """Arm or disarm; the zone's answer, or ArmingRefused with what is not secured."""
        if self._pipeline is None:
            raise LifecycleError("zone arming is not running yet")
        values = zone_request(action, officer, how, force=force, note=note)
        facts = self._pipeline.zone_request(storehouse, values, self._clock.now_ns())
        if not facts:
            raise LifecycleError("zone arming is switched off (rule zone_arming)")
        answer = as_answer(facts[-1])
        if answer["result"] == "refused":
            raise ArmingRefused(answer)
        return answer

    def zone_states(self) -> list[ZoneView]:
        """Every storehouse's zone now, in config order: state (disarmed, arming, armed,
        entry, alarm), since when, by whom and how, the end of a running delay, a walk test.
        A duress disarm shows as the disarm it looks like. Empty before the pipeline is
        attached or with zone arming switched off."""
        if self._pipeline is None:
            return []
        return self._pipeline.zone_views(self._clock.now_ns())

    def record(self, fact: Fact) -> None:
        """Audit a zone change or a walk test step (a pipeline fact listener; other facts
        pass)."""
        if fact.measurement not in ("zone", "walk_test"):
            return
        answer = as_answer(fact)
        self._audit(answer["by"] or "gateway", f"{fact.measurement}_{answer['result']}",
                    answer["storehouse"], answer, fact.at_ns)


def as_answer(fact: Fact) -> dict[str, Any]:
    """A `zone` or `walk_test` fact as JSON, its sensor lists as lists."""
    answer: dict[str, Any] = {"storehouse": fact.tags.get("storehouse", ""), **fact.fields}
    for name in ("not_secured", "seen", "not_seen"):
        if name in answer:
            listed = str(answer[name])
            answer[name] = listed.split(", ") if listed else []
    return answer
