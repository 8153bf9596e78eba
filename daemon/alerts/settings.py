"""How alarms are delivered: repeats, escalation ladders, on-site checks and inhibitions."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from daemon.vocabulary.settings import Settings
from rules.input_lost import NOT_SENSOR_INPUTS

__all__ = ["AlertingConfig", "AuditConfig", "CommandsConfig", "EscalationStep", "InhibitRule",
           "SeverityName", "SilenceLimits"]


class EscalationStep(BaseModel):
    """Who is told once an alarm has gone `after_s` without acknowledgement."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    after_s: float = Field(ge=0)
    notify: list[str] = Field(min_length=1)


class InhibitRule(BaseModel):
    """While a `source_rule` alarm is open, `target_rule` alarms with equal labels stay muted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_rule: str
    target_rule: str
    # "input": the gateway input (`mqtt`, `serial:<id>`, ...) a sensor reports through, or the
    # lost input itself; an alarm whose input the config does not tell matches every input.
    # "bridge": the bridge a sensor reports through, or the offline bridge itself.
    equal: list[Literal["storehouse", "subject", "door", "input", "bridge"]] = Field(
        default_factory=list)
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
    # A bridge offline likewise (Zigbee2MQTT, a Zigbee gateway): one fault names the bridge
    # and its sensors; their silence is paged only if it outlasts the bridge's outage.
    return [InhibitRule(source_rule="input_lost", target_rule="sensor_silent", equal=["input"],
                        source_subject_not=sorted(NOT_SENSOR_INPUTS)),
            InhibitRule(source_rule="bridge_offline", target_rule="sensor_silent",
                        equal=["bridge"])]


def _default_silence_max() -> dict[SeverityName, float]:
    # Intrusion (critical) a night shift; supervision and faults a day (issue 25).
    return {"critical": 8 * 3600.0, "alarm": 24 * 3600.0, "warning": 24 * 3600.0}


def _default_approval() -> list[SeverityName]:
    return ["critical"]


class SilenceLimits(BaseModel):
    """How far one officer may silence; beyond it a second officer approves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The longest silence one officer may set, by the most severe alarm it may mute; a longer
    # one waits for a second officer's approval.
    max_s: dict[SeverityName, float] = Field(default_factory=_default_silence_max)
    # Severities whose silences always wait for a second officer, however short.
    approval: list[SeverityName] = Field(default_factory=_default_approval)


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
    silences: SilenceLimits = Field(default_factory=SilenceLimits)


class CommandsConfig(Settings):
    """Officers' commands on the MQTT command topic (README "Alarms for officers")."""

    # A command sent longer ago than this (or this far ahead: a wrong clock) is refused, and
    # its nonce is remembered this long, so a captured command cannot be played again.
    max_age_s: float = Field(default=60.0, gt=0, le=3600)


class AuditConfig(Settings):
    """When the audit log starts a new file (the chain goes on across files)."""

    # A file past this size is rotated before the next entry (64 MiB: about 6 months at a busy
    # depot's 10 MB a month, so `verify` of one file stays quick on an SD card).
    rotate_bytes: int = Field(default=64 << 20, ge=4096)
    # `month`: also a new file with the first entry of each UTC month (one file per reporting
    # period, the way the monthly PSSM report and the central archive take it).
    rotate_every: Literal["never", "month"] = "never"
