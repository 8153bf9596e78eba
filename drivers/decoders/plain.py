"""One plain value per message: ESPHome state topics, Shelly `open`/`close` and `true`/`false`,
`ON`/`OFF`, numbers as text; `values` maps a device's own words."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from daemon.vocabulary.errors import DecodeError, ImplausibleValue
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.badges import BadgeForm, read_badge
from drivers.decoders.base import FIELD_TYPES, DecoderConfigBase, coerce_field, known_fields
from drivers.decoders.text import field_value, line_text

__all__ = ["PlainDecoder", "PlainDecoderConfig"]

# Shelly Gen1 door/window sensors say `close`, not `closed` (shellies/<id>/sensor/state).
_DEFAULT_WORDS: dict[str, FieldValue] = {"close": False}


class PlainDecoderConfig(DecoderConfigBase):
    """A plain text value: `field` is what it is; `values` maps words (case-insensitive)."""

    type: Literal["plain"] = "plain"
    field: str
    # The device's words -> the field's value, e.g. {open: true, close: false}; words not
    # here are read as on/off, true/false, 1/0, open/closed or a number.
    values: dict[str, bool | float | str] = Field(default_factory=dict)
    invert: bool = False
    # A number read is `value * scale + offset` (a sensor that reports tenths of a degree).
    scale: float = 1.0
    offset: float = 0.0
    # The form a `badge` value comes in, made canonical (README "Badge numbers").
    badge_form: BadgeForm = "as_read"

    @field_validator("field")
    @classmethod
    def _known_field(cls, value: str) -> str:
        return next(iter(known_fields({value: value})))

    @model_validator(mode="after")
    def _values_fit(self) -> PlainDecoderConfig:
        for word, value in self.values.items():
            try:
                coerce_field(self.field, value)
            except DecodeError as exc:
                raise ValueError(f"values[{word!r}]: {exc}") from None
        if not (math.isfinite(self.scale) and math.isfinite(self.offset)) or self.scale == 0:
            raise ValueError("scale must be a finite number other than 0, offset finite")
        return self

    def build(self) -> PlainDecoder:
        """The decoder."""
        return PlainDecoder(self)


class PlainDecoder:
    """Reads the one value of a message, through the word map first."""

    def __init__(self, config: PlainDecoderConfig) -> None:
        self._field = config.field
        kind = FIELD_TYPES[config.field]
        words = dict(_DEFAULT_WORDS) if kind is bool else {}
        words.update({w.strip().lower(): coerce_field(config.field, v)
                      for w, v in config.values.items()})
        self._words = words
        self._invert = config.invert and kind is bool
        self._scaled = kind is float and (config.scale != 1.0 or config.offset != 0.0)
        self._scale, self._offset = config.scale, config.offset
        self._badge_form = config.badge_form if config.field == "badge" else "as_read"

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """One reading with the configured field."""
        text = line_text(raw.payload)
        value = self._words.get(text.lower())
        if value is None:
            value = field_value(self._field, text)
            if self._scaled and isinstance(value, float):
                value = value * self._scale + self._offset
                if not math.isfinite(value):
                    raise ImplausibleValue(f"field {self._field!r}: not a finite number")
        if self._invert:
            value = not value
        if self._badge_form != "as_read":
            value = read_badge(str(value), self._badge_form)
        return [Reading(sensor, raw.received_ns, {self._field: value})]
