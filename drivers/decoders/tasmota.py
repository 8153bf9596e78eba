"""Tasmota `tele/<device>/SENSOR` telemetry JSON (AM2301, DS18B20, SHT3X, BME280 ...), several
probes on one device each its own sensor, its binary sensors (`Switch1`: a PIR, a vibration or
glass-break contact, a panic button) and its Wiegand badge reader."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.badges import FACILITY_BITS, data_badge, uid_badge
from drivers.decoders.base import (
    FIELD_TYPES,
    SKIPPED,
    DecoderConfigBase,
    coerce_field,
    parse_json_object,
)

__all__ = ["TasmotaDecoder", "TasmotaDecoderConfig"]


class TasmotaDecoderConfig(DecoderConfigBase):
    """Tasmota SENSOR telemetry; `sensor_key` picks one probe when a device has several, and
    `probes` makes each probe its own sensor."""

    type: Literal["tasmota"] = "tasmota"
    sensor_key: str | None = None
    # Binary sensors: Tasmota input name -> a depotwatch flag, e.g. {Switch1: motion}; "ON" is
    # true. A device with switches only needs no probe with a temperature.
    switches: dict[str, str] = Field(default_factory=dict)
    # Probe name (`DS18B20-1`) or its 1-Wire `Id` (stable when probes are added) -> sensor id:
    # each probe one reading; a probe that reports null is skipped and counted, not the rest.
    probes: dict[str, str] = Field(default_factory=dict)

    @field_validator("switches")
    @classmethod
    def _flags(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted(f for f in value.values() if FIELD_TYPES.get(f) is not bool)
        if wrong:
            raise ValueError(f"not true/false fields: {wrong}")
        return value

    def build(self) -> TasmotaDecoder:
        """The decoder."""
        return TasmotaDecoder(self.sensor_key, self.switches, self.probes)


def _is_probe(value: Any) -> bool:
    return isinstance(value, dict) and ("Temperature" in value or "Humidity" in value)


class TasmotaDecoder:
    """Finds the probe object (`{"AM2301": {"Temperature": .., "Humidity": ..}}`) and reads it."""

    def __init__(self, sensor_key: str | None, switches: dict[str, str] | None = None,
                 probes: dict[str, str] | None = None) -> None:
        self._sensor_key = sensor_key
        self._switches = tuple((switches or {}).items())
        self._probes = dict(probes or {})

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """One reading from the configured or the first probe with a temperature; one per
        mapped probe; a badge from a Wiegand reader."""
        body = parse_json_object(raw.payload)
        values: dict[str, FieldValue] = {}
        for name, field in self._switches:
            state = body.get(name)
            # SENSOR telemetry says "ON"; SwitchMode events (stat/RESULT) {"Action": "ON"}.
            if isinstance(state, dict):
                state = state.get("Action")
            if state in ("ON", "OFF"):
                values[field] = state == "ON"
        wiegand = body.get("Wiegand")
        if isinstance(wiegand, dict):
            values["badge"] = _badge(wiegand)
            return [Reading(sensor, raw.received_ns, values)]
        unit = body.get("TempUnit", "C")
        if self._probes:
            return self._each_probe(body, unit, raw.received_ns, sensor, values)
        if self._switches and self._sensor_key is None and not any(
                _is_probe(v) for v in body.values()):
            return [Reading(sensor=sensor, at_ns=raw.received_ns, values=values)]
        _probe_values(self._probe(body), unit, values)
        return [Reading(sensor=sensor, at_ns=raw.received_ns, values=values)]

    def _each_probe(self, body: dict[str, Any], unit: Any, at_ns: int, sensor: str,
                    values: dict[str, FieldValue]) -> list[Reading]:
        readings = [Reading(sensor, at_ns, values)] if values else []
        for name, probe in body.items():
            if not isinstance(probe, dict):
                continue
            probe_id = probe.get("Id")
            target = self._probes.get(name) or (
                self._probes.get(probe_id) if isinstance(probe_id, str) else None)
            if target is None:
                continue
            readings.append(Reading(target, at_ns, _probe_values(probe, unit, {})))
        if not readings:
            raise DecodeError(f"none of the probes {sorted(self._probes)} in the telemetry")
        return readings

    def _probe(self, body: dict[str, Any]) -> dict[str, Any]:
        if self._sensor_key is not None:
            probe = body.get(self._sensor_key)
            if not isinstance(probe, dict):
                raise DecodeError(f"no {self._sensor_key!r} object in the telemetry")
            return probe
        for value in body.values():
            if _is_probe(value):
                return value  # type: ignore[no-any-return]
        raise DecodeError("no probe object with Temperature or Humidity in the telemetry")


def _probe_values(probe: dict[str, Any], unit: Any,
                  values: dict[str, FieldValue]) -> dict[str, FieldValue]:
    """A probe's temperature and humidity; a null one (a probe that failed to read, as
    DS18B20s do on a long bus) is noted as skipped instead."""
    skipped = []
    if "Temperature" in probe:
        if probe["Temperature"] is None:
            skipped.append("temperature_c")
        else:
            temperature = coerce_field("temperature_c", probe["Temperature"])
            if unit == "F":
                assert isinstance(temperature, float)
                temperature = (temperature - 32.0) * 5.0 / 9.0
            elif unit != "C":
                raise DecodeError(f"unknown TempUnit {unit!r}")
            values["temperature_c"] = temperature
    if "Humidity" in probe:
        if probe["Humidity"] is None:
            skipped.append("humidity_pct")
        else:
            values["humidity_pct"] = coerce_field("humidity_pct", probe["Humidity"])
    if skipped:
        values[SKIPPED] = ",".join(skipped)
    return values


def _badge(wiegand: dict[str, Any]) -> str:
    """Tasmota's Wiegand `UID` holds the data bits without parity (xsns_82_wiegand), so a
    26-bit read of facility 12 card 3456 is 789888: split by `Size` into `12/3456`."""
    uid, size = wiegand.get("UID"), wiegand.get("Size")
    if type(size) is not int:
        raise DecodeError("Wiegand message without a Size")
    if size in (4, 8):
        raise DecodeError(f"a keypad key ({size}-bit), not a badge")
    if isinstance(uid, str):
        # WiegandHex makes it "0x..." text; digits alone are decimal.
        uid = uid_badge(uid, 10 if uid.strip().isdigit() else 16)
        number = int(uid.removeprefix("uid:"), 16)
    elif type(uid) is int:
        number = uid
    else:
        raise DecodeError("Wiegand message without a UID number")
    if size in FACILITY_BITS:
        return data_badge(number, size)
    return uid_badge(number)
