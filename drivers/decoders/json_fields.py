"""Generic JSON with a configured mapping from payload paths to depotwatch fields: scaling,
word maps, arrays of tag reads and antenna-to-sensor maps for RFID readers' JSON."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from daemon.vocabulary.errors import DecodeError, ImplausibleValue
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.badges import BadgeForm, read_badge
from drivers.decoders.base import (
    FIELD_TYPES,
    DecoderConfigBase,
    coerce_field,
    known_fields,
    parse_json_object,
    parse_json_value,
)
from drivers.decoders.device_time import DEVICE_TIME, TimeFormat, device_time_s

__all__ = ["FieldPath", "JsonFieldsDecoder", "JsonFieldsDecoderConfig"]

# The payload itself is the array of reads (`items: "$"`), as Zebra's batched tag data is.
_WHOLE = "$"
# A batch of tag reads larger than this is refused whole (a portal sees tens per second).
_MAX_ITEMS = 1000


class FieldPath(DecoderConfigBase):
    """A field's path with what to do to its value: `value * scale + offset` for numbers, and
    `values` mapping the device's words (`ON`, `open`, `true`) to the field's value."""

    path: str = Field(min_length=1)
    scale: float = 1.0
    offset: float = 0.0
    values: dict[str, bool | float | str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _finite(self) -> FieldPath:
        if not (math.isfinite(self.scale) and math.isfinite(self.offset)) or self.scale == 0:
            raise ValueError("scale must be a finite number other than 0, offset finite")
        return self


class JsonFieldsDecoderConfig(DecoderConfigBase):
    """Any JSON object: `fields` maps a depotwatch field to a dotted path in the payload."""

    type: Literal["json_fields"] = "json_fields"
    fields: dict[str, str | FieldPath] = Field(min_length=1)
    # Payload path holding the sensor id, for devices that share one topic.
    sensor_path: str | None = None
    # Fields absent from a payload are allowed (partial updates) unless listed here.
    required: list[str] = Field(default_factory=list)
    # Fields whose boolean sense is reversed, e.g. a contact reporting "closed".
    invert: list[str] = Field(default_factory=list)
    # Dotted path of the device's own timestamp, kept as `device_time_s` (readings are still
    # timed by receipt), and how it is written.
    time: str | None = None
    time_format: TimeFormat = "iso8601"
    # Path of an array of reads (RFID readers batch tag reads), each read one reading with the
    # paths above taken inside it; "$": the payload is the array.
    items: str | None = None
    # Path of the antenna number and which sensor each antenna is (a portal's inner and outer
    # antennas on one reader); a read from an antenna not listed is a dead letter.
    antenna_path: str | None = None
    antennas: dict[int, str] = Field(default_factory=dict)
    # The form the `badge` field comes in, made canonical (README "Badge numbers").
    badge_form: BadgeForm = "as_read"

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str | FieldPath]) -> dict[str, str | FieldPath]:
        known_fields({name: "" for name in value})
        for name, spec in value.items():
            for word, mapped in (spec.values.items() if isinstance(spec, FieldPath) else ()):
                try:
                    coerce_field(name, mapped)
                except DecodeError as exc:
                    raise ValueError(f"{name}.values[{word!r}]: {exc}") from None
        return value

    @model_validator(mode="after")
    def _antennas_with_path(self) -> JsonFieldsDecoderConfig:
        if bool(self.antennas) != (self.antenna_path is not None):
            raise ValueError("antenna_path and antennas go together")
        return self

    def build(self) -> JsonFieldsDecoder:
        """The decoder."""
        return JsonFieldsDecoder(self)


def _lookup(body: dict[str, Any], parts: tuple[str, ...]) -> tuple[bool, Any]:
    node: Any = body
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _parts(path: str | None) -> tuple[str, ...] | None:
    return None if path is None else tuple(path.split("."))


class _Extras:
    """What a field does beyond reading its value: scale, offset, word map."""

    __slots__ = ("offset", "scale", "words")

    def __init__(self, name: str, spec: FieldPath) -> None:
        self.scale, self.offset = spec.scale, spec.offset
        self.words = {w.lower(): coerce_field(name, v) for w, v in spec.values.items()}

    def apply(self, name: str, value: Any) -> FieldValue:
        if self.words and type(value) in (str, bool):
            word = value.lower() if type(value) is str else ("true" if value else "false")
            if word in self.words:
                return self.words[word]
        coerced = coerce_field(name, value)
        if type(coerced) is float and FIELD_TYPES[name] is float:
            coerced = coerced * self.scale + self.offset
            if not math.isfinite(coerced):
                raise ImplausibleValue(f"field {name!r}: not a finite number")
        return coerced


class JsonFieldsDecoder:
    """Reads the configured paths and checks each value's type."""

    def __init__(self, config: JsonFieldsDecoderConfig) -> None:
        self._config = config
        # Split once: every message walks the same paths (field, path, parts, the key of a
        # path that is one key (most are), required, invert, extras or None).
        fields = []
        for name, spec in config.fields.items():
            path = spec if isinstance(spec, str) else spec.path
            parts = tuple(path.split("."))
            extras = None if isinstance(spec, str) else _Extras(name, spec)
            fields.append((name, path, parts, parts[0] if len(parts) == 1 else None,
                           name in config.required, name in config.invert, extras))
        self._fields = tuple(fields)
        self._sensor_path = _parts(config.sensor_path)
        self._time_path = _parts(config.time)
        self._items = _parts(config.items) if config.items != _WHOLE else ()
        self._antenna_path = _parts(config.antenna_path)
        self._badge_form = config.badge_form

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """One reading with the mapped fields, or one per read of an array."""
        if self._items is None:
            return [self._reading(parse_json_object(raw.payload), raw.received_ns, sensor)]
        if self._items:
            found, reads = _lookup(parse_json_object(raw.payload), self._items)
            if not found:
                raise DecodeError(f"no array of reads at {self._config.items!r}")
        else:
            reads = parse_json_value(raw.payload)
        if not isinstance(reads, list):
            raise DecodeError(f"reads at {self._config.items!r} are not an array")
        if len(reads) > _MAX_ITEMS:
            raise DecodeError(f"{len(reads)} reads in one message; at most {_MAX_ITEMS}")
        out = []
        for read in reads:
            if not isinstance(read, dict):
                raise DecodeError(f"a read is {type(read).__name__}, not an object")
            out.append(self._reading(read, raw.received_ns, sensor))
        return out

    def _reading(self, body: dict[str, Any], at_ns: int, sensor: str) -> Reading:
        if self._sensor_path is not None:
            found, value = _lookup(body, self._sensor_path)
            if not found or not isinstance(value, str) or not value:
                raise DecodeError(f"no sensor id at {self._config.sensor_path!r}")
            sensor = value
        if self._antenna_path is not None:
            sensor = self._antenna_sensor(body)
        values: dict[str, FieldValue] = {}
        for name, path, parts, key, required, invert, extras in self._fields:
            if key is not None:
                value = body.get(key)  # absent or null alike, as below
            else:
                found, value = _lookup(body, parts)
                if not found:
                    value = None
            if value is None:
                if required:
                    raise DecodeError(f"required field {name!r} missing at {path!r}")
                continue
            coerced = coerce_field(name, value) if extras is None else extras.apply(name, value)
            values[name] = (not coerced) if invert else coerced
        if self._badge_form != "as_read" and "badge" in values:
            values["badge"] = read_badge(str(values["badge"]), self._badge_form)
        if self._time_path is not None:
            found, stamp = _lookup(body, self._time_path)
            seen = device_time_s(stamp, self._config.time_format) if found else None
            if seen is not None:
                values[DEVICE_TIME] = seen
        return Reading(sensor, at_ns, values)

    def _antenna_sensor(self, body: dict[str, Any]) -> str:
        assert self._antenna_path is not None
        found, antenna = _lookup(body, self._antenna_path)
        if type(antenna) is str and antenna.isdigit() and len(antenna) <= 3:
            antenna = int(antenna)
        if not found or type(antenna) is not int:
            raise DecodeError(f"no antenna number at {self._config.antenna_path!r}")
        sensor = self._config.antennas.get(antenna)
        if sensor is None:
            raise DecodeError(f"antenna {antenna} is not in the decoder's 'antennas'")
        return sensor
