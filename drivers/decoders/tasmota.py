"""Tasmota `tele/<device>/SENSOR` telemetry JSON (AM2301, DS18B20, SHT3X, BME280 ...) and its
binary sensors (`Switch1`: a PIR, a vibration or glass-break contact, a panic button)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.base import (
    FIELD_TYPES,
    DecoderConfigBase,
    coerce_field,
    parse_json_object,
)

__all__ = ["TasmotaDecoder", "TasmotaDecoderConfig"]


class TasmotaDecoderConfig(DecoderConfigBase):
    """Tasmota SENSOR telemetry; `sensor_key` picks one probe when a device has several."""

    type: Literal["tasmota"] = "tasmota"
    sensor_key: str | None = None
    # Binary sensors: Tasmota input name -> a depotwatch flag, e.g. {Switch1: motion}; "ON" is
    # true. A device with switches only needs no probe with a temperature.
    switches: dict[str, str] = Field(default_factory=dict)

    @field_validator("switches")
    @classmethod
    def _flags(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted(f for f in value.values() if FIELD_TYPES.get(f) is not bool)
        if wrong:
            raise ValueError(f"not true/false fields: {wrong}")
        return value

    def build(self) -> TasmotaDecoder:
        """The decoder."""
        return TasmotaDecoder(self.sensor_key, self.switches)


class TasmotaDecoder:
    """Finds the probe object (`{"AM2301": {"Temperature": .., "Humidity": ..}}`) and reads it."""

    def __init__(self, sensor_key: str | None, switches: dict[str, str] | None = None) -> None:
        self._sensor_key = sensor_key
        self._switches = tuple((switches or {}).items())

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """One reading from the configured or the first probe with a temperature."""
        body = parse_json_object(raw.payload)
        values: dict[str, FieldValue] = {}
        for name, field in self._switches:
            state = body.get(name)
            # SENSOR telemetry says "ON"; SwitchMode events (stat/RESULT) {"Action": "ON"}.
            if isinstance(state, dict):
                state = state.get("Action")
            if state in ("ON", "OFF"):
                values[field] = state == "ON"
        if self._switches and self._sensor_key is None and not any(
                isinstance(v, dict) and ("Temperature" in v or "Humidity" in v)
                for v in body.values()):
            return [Reading(sensor=sensor, at_ns=raw.received_ns, values=values)]
        probe = self._probe(body)
        unit = body.get("TempUnit", "C")
        if "Temperature" in probe:
            temperature = coerce_field("temperature_c", probe["Temperature"])
            if unit == "F":
                assert isinstance(temperature, float)
                temperature = (temperature - 32.0) * 5.0 / 9.0
            elif unit != "C":
                raise DecodeError(f"unknown TempUnit {unit!r}")
            values["temperature_c"] = temperature
        if "Humidity" in probe:
            values["humidity_pct"] = coerce_field("humidity_pct", probe["Humidity"])
        return [Reading(sensor=sensor, at_ns=raw.received_ns, values=values)]

    def _probe(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._sensor_key is not None:
            probe = body.get(self._sensor_key)
            if not isinstance(probe, dict):
                raise DecodeError(f"no {self._sensor_key!r} object in the telemetry")
            return probe
        for value in body.values():
            if isinstance(value, dict) and ("Temperature" in value or "Humidity" in value):
                return value
        raise DecodeError("no probe object with Temperature or Humidity in the telemetry")
