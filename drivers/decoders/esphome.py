"""ESPHome MQTT state topics: one plain value per message, e.g. `ON`/`OFF` of a binary sensor.

ESPHome publishes `<node>/binary_sensor/<name>/state` (`ON`, `OFF`) and `<node>/sensor/<name>/
state` (`23.5`); the subscription's topic names the component and `field` says what it is.
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from daemon.vocabulary.readings import RawMessage, Reading
from drivers.decoders.base import DecoderConfigBase, known_fields
from drivers.decoders.text import field_value, line_text

__all__ = ["EsphomeDecoder", "EsphomeDecoderConfig"]


class EsphomeDecoderConfig(DecoderConfigBase):
    """One ESPHome state topic: `field` is the depotwatch field its value is (e.g. `motion`)."""

    type: Literal["esphome"] = "esphome"
    field: str
    # A binary sensor whose sense is reversed (a normally-closed loop reporting ON when quiet).
    invert: bool = False

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        return next(iter(known_fields({value: value})))

    def build(self) -> EsphomeDecoder:
        """The decoder."""
        return EsphomeDecoder(self.field, self.invert)


class EsphomeDecoder:
    """Reads the one value of a state message."""

    def __init__(self, field: str, invert: bool = False) -> None:
        self._field = field
        self._invert = invert

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """One reading with the configured field."""
        value = field_value(self._field, line_text(raw.payload))
        if self._invert and isinstance(value, bool):
            value = not value
        return [Reading(sensor, raw.received_ns, {self._field: value})]
