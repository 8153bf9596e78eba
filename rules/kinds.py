"""The registry of rule kinds: the discriminated union of their configs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rules.climate import ClimateRuleConfig
from rules.door_armed import DoorArmedRuleConfig
from rules.sensor_silent import SensorSilentRuleConfig
from rules.tamper import TamperRuleConfig

__all__ = ["RULE_KINDS", "RuleConfig", "default_rules"]

# One line per rule kind: adding a kind is its module, this line and its test.
RULE_KINDS = (ClimateRuleConfig, DoorArmedRuleConfig, TamperRuleConfig, SensorSilentRuleConfig)

RuleConfig = Annotated[
    ClimateRuleConfig | DoorArmedRuleConfig | TamperRuleConfig | SensorSilentRuleConfig,
    Field(discriminator="type"),
]


def default_rules() -> list[RuleConfig]:
    """Every rule kind with its PSSM.md defaults, used when the config names none."""
    return [kind() for kind in RULE_KINDS]
