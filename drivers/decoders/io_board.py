"""Microcontroller I/O boards: one JSON object or `key=value` pairs per line (contacts, tamper,
detectors)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.base import (
    FIELD_TYPES,
    DecoderConfigBase,
    known_fields,
    parse_json_object,
)
from drivers.decoders.text import field_value, line_text, split_pairs

__all__ = ["IoBoardDecoder", "IoBoardDecoderConfig"]


class IoBoardDecoderConfig(DecoderConfigBase):
    """I/O board lines, `door=1 tamper=0` or `{"door": "open"}`: `fields` maps a field to a key."""

    type: Literal["io_board"] = "io_board"
    format: Literal["kv", "json"] = "kv"
    # depotwatch field -> the board's key, e.g. {open: door, tamper: tmp, motion: pir}. Other
    # keys (uptime, ...) are ignored: the line still proves the board alive.
    fields: dict[str, str] = Field(min_length=1)
    # Fields whose sense is reversed, e.g. a normally-closed loop reporting 1 when closed.
    invert: list[str] = Field(default_factory=list)
    # The key naming the input (one board, several doors); without it the port's sensor is used.
    sensor_key: str | None = None
    # The input's name on the board -> sensor id; without it the key's value is the sensor id.
    sensors: dict[str, str] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        return known_fields(value)

    @model_validator(mode="after")
    def _lists_name_fields(self) -> IoBoardDecoderConfig:
        for name in (*self.invert, *self.required):
            if name not in self.fields:
                raise ValueError(f"{name!r} is not one of the mapped fields")
        for name in self.invert:
            if FIELD_TYPES[name] is not bool:
                raise ValueError(f"only true/false fields can be inverted, not {name!r}")
        if self.sensors and self.sensor_key is None:
            raise ValueError("'sensors' needs a 'sensor_key'")
        return self

    def build(self) -> IoBoardDecoder:
        """The decoder."""
        return IoBoardDecoder(self)


class IoBoardDecoder:
    """One reading per line, for the port's sensor or the input the line names."""

    def __init__(self, config: IoBoardDecoderConfig) -> None:
        self._config = config
        self._keys = {name: key.lower() for name, key in config.fields.items()}
        self._sensor_key = config.sensor_key.lower() if config.sensor_key else None

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """The mapped fields of one line."""
        body: dict[str, Any]
        if self._config.format == "json":
            body = {str(k).lower(): v for k, v in parse_json_object(raw.payload).items()}
        else:
            body = dict(split_pairs(line_text(raw.payload)))
        if self._sensor_key is not None:
            sensor = self._sensor(body.get(self._sensor_key))
        if not sensor:
            raise DecodeError("no sensor: the port has no 'sensor' and the decoder no sensor_key")
        values: dict[str, FieldValue] = {}
        for name, key in self._keys.items():
            if key not in body or body[key] is None:
                if name in self._config.required:
                    raise DecodeError(f"required key {key!r} missing")
                continue
            value = field_value(name, body[key])
            values[name] = (not value) if name in self._config.invert else value
        return [Reading(sensor=sensor, at_ns=raw.received_ns, values=values)]

    def _sensor(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise DecodeError(f"no input name at key {self._sensor_key!r}")
        name = str(value).strip()
        if self._config.sensors:
            if name not in self._config.sensors:
                raise DecodeError(f"input {name[:20]!r} is not in the decoder's 'sensors'")
            return self._config.sensors[name]
        if not name:
            raise DecodeError(f"empty input name at key {self._sensor_key!r}")
        return name
