"""Values that flow through the pipeline: raw messages, readings, transitions."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["FieldValue", "RawMessage", "Reading", "Severity", "Transition", "TransitionKind"]

FieldValue = float | bool | str


@dataclass(frozen=True, slots=True, init=False)
class RawMessage:
    """Bytes as a driver received them, with where they came from and when (ns since epoch)."""

    source: str
    payload: bytes
    received_ns: int
    # The broker sent it again (MQTT DUP flag): it may already be in the spool.
    redelivered: bool
    # The MQTT packet id of a QoS 1 message (None otherwise): a broker replay keeps it.
    packet_id: int | None

    def __init__(self, source: str, payload: bytes, received_ns: int,
                 redelivered: bool = False, packet_id: int | None = None) -> None:
        # One per message: the slots' own setters, as Reading's (a frozen dataclass's
        # __init__ was 1.5 % of the daemon's GIL time at 500/s).
        _set_source(self, source)
        _set_payload(self, payload)
        _set_received_ns(self, received_ns)
        _set_redelivered(self, redelivered)
        _set_packet_id(self, packet_id)


_set_source = vars(RawMessage)["source"].__set__
_set_payload = vars(RawMessage)["payload"].__set__
_set_received_ns = vars(RawMessage)["received_ns"].__set__
_set_redelivered = vars(RawMessage)["redelivered"].__set__
_set_packet_id = vars(RawMessage)["packet_id"].__set__


@dataclass(frozen=True, slots=True, init=False)
class Reading:
    """One sensor's values at one instant; the timestamp is fixed at ingest so replays overwrite."""

    sensor: str
    at_ns: int
    values: Mapping[str, FieldValue]

    def __init__(self, sensor: str, at_ns: int, values: Mapping[str, FieldValue]) -> None:
        # One per message. A frozen dataclass's own __init__ sets each field with
        # object.__setattr__; the slots' own setters (below) take two thirds of its time.
        _set_sensor(self, sensor)
        _set_at_ns(self, at_ns)
        _set_values(self, values)


_set_sensor = vars(Reading)["sensor"].__set__
_set_at_ns = vars(Reading)["at_ns"].__set__
_set_values = vars(Reading)["values"].__set__


class Severity(enum.StrEnum):
    """How urgent an alert is; ordered from least to most."""

    WARNING = "warning"
    ALARM = "alarm"
    CRITICAL = "critical"


class TransitionKind(enum.StrEnum):
    """Whether a condition started or ended."""

    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Transition:
    """A rule's verdict that an alert condition began or ended at `at_ns`."""

    kind: TransitionKind
    rule: str
    subject: str
    severity: Severity
    summary: str
    at_ns: int
    storehouse: str = ""
    facts: Mapping[str, FieldValue] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Stable alert key: one rule about one subject (door, sensor, storehouse)."""
        return f"{self.rule}.{self.subject}"
