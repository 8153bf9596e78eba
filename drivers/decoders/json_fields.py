"""Generic JSON with a configured mapping from payload paths to depotwatch fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.base import (
    DecoderConfigBase,
    coerce_field,
    known_fields,
    parse_json_object,
)
from drivers.decoders.device_time import DEVICE_TIME, TimeFormat, device_time_s

__all__ = ["JsonFieldsDecoder", "JsonFieldsDecoderConfig"]


class JsonFieldsDecoderConfig(DecoderConfigBase):
    """Any JSON object: `fields` maps a depotwatch field to a dotted path in the payload."""

    type: Literal["json_fields"] = "json_fields"
    fields: dict[str, str] = Field(min_length=1)
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

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        return known_fields(value)

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


class JsonFieldsDecoder:
    """Reads the configured paths and checks each value's type."""

    def __init__(self, config: JsonFieldsDecoderConfig) -> None:
        self._config = config
        # Split once: every message walks the same paths (field, path, parts, the key of a
        # path that is one key (most are), required, invert).
        self._fields = tuple(
            (name, path, parts, parts[0] if len(parts) == 1 else None, name in config.required,
             name in config.invert)
            for name, path in config.fields.items() for parts in [tuple(path.split("."))])
        self._sensor_path = (None if config.sensor_path is None
                             else tuple(config.sensor_path.split(".")))
        self._time_path = None if config.time is None else tuple(config.time.split("."))

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """One reading with the mapped fields."""
        body = parse_json_object(raw.payload)
        if self._sensor_path is not None:
            found, value = _lookup(body, self._sensor_path)
            if not found or not isinstance(value, str) or not value:
                raise DecodeError(f"no sensor id at {self._config.sensor_path!r}")
            sensor = value
        values: dict[str, FieldValue] = {}
        for name, path, parts, key, required, invert in self._fields:
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
            coerced = coerce_field(name, value)
            values[name] = (not coerced) if invert else coerced
        if self._time_path is not None:
            found, stamp = _lookup(body, self._time_path)
            seen = device_time_s(stamp, self._config.time_format) if found else None
            if seen is not None:
                values[DEVICE_TIME] = seen
        return [Reading(sensor, raw.received_ns, values)]
