"""The registry of rule kinds: the discriminated union of their configs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rules.climate import ClimateRuleConfig
from rules.door_armed import DoorArmedRuleConfig
from rules.door_held_open import DoorHeldOpenRuleConfig
from rules.sensor_silent import SensorSilentRuleConfig
from rules.tamper import TamperRuleConfig

__all__ = ["RULE_KINDS", "RuleConfig", "default_rules", "rule_set"]

# One line per rule kind: adding a kind is its module, this line and its test.
RULE_KINDS = (
    ClimateRuleConfig,
    DoorArmedRuleConfig,
    DoorHeldOpenRuleConfig,
    TamperRuleConfig,
    SensorSilentRuleConfig,
)

RuleConfig = Annotated[
    ClimateRuleConfig
    | DoorArmedRuleConfig
    | DoorHeldOpenRuleConfig
    | TamperRuleConfig
    | SensorSilentRuleConfig,
    Field(discriminator="type"),
]


def default_rules() -> list[RuleConfig]:
    """Every rule kind with its PSSM.md defaults."""
    return [kind() for kind in RULE_KINDS]


def rule_set(configured: list[RuleConfig]) -> list[RuleConfig]:
    """Every rule kind: as configured where listed, else with its defaults; disabled ones out."""
    listed = {type(rule): rule for rule in configured}
    chosen = [listed.get(kind) or kind() for kind in RULE_KINDS]
    return [rule for rule in chosen if rule.enabled]
