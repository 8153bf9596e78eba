"""The registry of rule kinds: the discriminated union of their configs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from rules.anti_masking import AntiMaskingRuleConfig
from rules.badge_access import BadgeAccessRuleConfig
from rules.battery_low import BatteryLowRuleConfig
from rules.climate import ClimateRuleConfig
from rules.climate_record import ClimateRecordRuleConfig
from rules.climate_swing import ClimateSwingRuleConfig
from rules.condensation import CondensationRuleConfig
from rules.door_armed import DoorArmedRuleConfig
from rules.door_forced import DoorForcedRuleConfig
from rules.door_held_open import DoorHeldOpenRuleConfig
from rules.gateway_fault import GatewayFaultRuleConfig
from rules.gateway_health import GatewayHealthRuleConfig
from rules.input_lost import InputLostRuleConfig
from rules.item_state import ItemStateRuleConfig
from rules.item_unseen import ItemUnseenRuleConfig
from rules.key_register import KeyRegisterRuleConfig
from rules.movement_order import MovementOrderCountRuleConfig
from rules.portal_movement import PortalMovementRuleConfig
from rules.reconciliation import ReconciliationRuleConfig
from rules.sensor_silent import SensorSilentRuleConfig
from rules.smoke_panic import SmokePanicRuleConfig
from rules.spool_quota import SpoolQuotaRuleConfig
from rules.tamper import TamperRuleConfig
from rules.two_person import TwoPersonRuleConfig
from rules.water_leak import WaterLeakRuleConfig
from rules.zone_arming import ZoneArmingRuleConfig

__all__ = ["RULE_KINDS", "RuleConfig", "default_rules", "rule_set"]

# One line per rule kind: adding a kind is its module, this line and its test.
RULE_KINDS = (
    ClimateRuleConfig,
    ClimateSwingRuleConfig,
    CondensationRuleConfig,
    ClimateRecordRuleConfig,
    BatteryLowRuleConfig,
    InputLostRuleConfig,
    SpoolQuotaRuleConfig,
    GatewayFaultRuleConfig,
    GatewayHealthRuleConfig,
    DoorArmedRuleConfig,
    DoorHeldOpenRuleConfig,
    TamperRuleConfig,
    BadgeAccessRuleConfig,
    DoorForcedRuleConfig,
    TwoPersonRuleConfig,
    SensorSilentRuleConfig,
    PortalMovementRuleConfig,
    MovementOrderCountRuleConfig,
    ItemUnseenRuleConfig,
    ZoneArmingRuleConfig,
    SmokePanicRuleConfig,
    WaterLeakRuleConfig,
    AntiMaskingRuleConfig,
    ReconciliationRuleConfig,
    KeyRegisterRuleConfig,
    ItemStateRuleConfig,
)

RuleConfig = Annotated[
    ClimateRuleConfig
    | ClimateSwingRuleConfig
    | CondensationRuleConfig
    | ClimateRecordRuleConfig
    | BatteryLowRuleConfig
    | InputLostRuleConfig
    | SpoolQuotaRuleConfig
    | GatewayFaultRuleConfig
    | GatewayHealthRuleConfig
    | DoorArmedRuleConfig
    | DoorHeldOpenRuleConfig
    | TamperRuleConfig
    | BadgeAccessRuleConfig
    | DoorForcedRuleConfig
    | TwoPersonRuleConfig
    | SensorSilentRuleConfig
    | PortalMovementRuleConfig
    | MovementOrderCountRuleConfig
    | ItemUnseenRuleConfig
    | ZoneArmingRuleConfig
    | SmokePanicRuleConfig
    | WaterLeakRuleConfig
    | AntiMaskingRuleConfig
    | ReconciliationRuleConfig
    | KeyRegisterRuleConfig
    | ItemStateRuleConfig,
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
