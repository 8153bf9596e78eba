"""Zigbee2MQTT device state JSON: door contacts (`contact` true = closed), climate sensors,
motion, vibration, smoke, panic buttons and keypads."""

from __future__ import annotations

from typing import Literal

from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.base import UNHANDLED, DecoderConfigBase, coerce_field, parse_json_object
from drivers.decoders.device_time import DEVICE_TIME, device_time_s

__all__ = ["Zigbee2MqttDecoder", "Zigbee2MqttDecoderConfig"]

# Zigbee2MQTT exposes -> depotwatch fields. Others (linkquality, voltage) are heartbeats only.
_EXPOSES = {
    "temperature": "temperature_c",
    "humidity": "humidity_pct",
    "battery": "battery_pct",
    "battery_low": "battery_low",
    "tamper": "tamper",
    "occupancy": "motion",
    "vibration": "vibration",
    "smoke": "smoke",
    "water_leak": "water_leak",
}
_EXPOSE_ITEMS = tuple(_EXPOSES.items())
# `action` of panic buttons (Heiman, Tuya SOS, frient) and of alarm keypads (frient KEPZB-110,
# Xfinity XHK1: the code typed comes as `action_code`); other actions are heartbeats.
_PANIC_ACTIONS = frozenset({"emergency", "panic", "sos"})
_KEYPAD_ACTIONS = {"arm_all_zones": "arm", "arm_day_zones": "arm", "arm_night_zones": "arm",
                   "disarm": "disarm"}
# Movement actions of vibration sensors (Aqara DJT11LM: `vibration` comes with
# `vibration: true`, `tilt` and `drop` alone): the protected item moved. Any other action is a
# security event no rule reads: noted as unhandled.
_MOVEMENT_ACTIONS = frozenset({"vibration", "tilt", "drop"})


class Zigbee2MqttDecoderConfig(DecoderConfigBase):
    """Zigbee2MQTT `zigbee2mqtt/<friendly name>` payloads."""

    type: Literal["zigbee2mqtt"] = "zigbee2mqtt"

    def build(self) -> Zigbee2MqttDecoder:
        """The decoder."""
        return Zigbee2MqttDecoder()


class Zigbee2MqttDecoder:
    """Decodes one Zigbee2MQTT state message into one reading."""

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """One reading; a message with no known field still proves the device alive."""
        body = parse_json_object(raw.payload)
        values: dict[str, FieldValue] = {}
        if "contact" in body:
            # Zigbee2MQTT reports the reed contact: true means the magnet is there (closed).
            values["open"] = not coerce_field("open", body["contact"])
        for expose, name in _EXPOSE_ITEMS:
            value = body.get(expose)  # absent or null: not reported
            if value is not None:
                values[name] = coerce_field(name, value)
        action = body.get("action")
        if isinstance(action, str):
            _action_values(action, body.get("action_code"), values)
        last_seen = body.get("last_seen")
        if last_seen is not None:
            # Zigbee2MQTT's `last_seen` setting: ISO-8601 (with a zone) or epoch milliseconds.
            seen = device_time_s(last_seen, "epoch_ms" if isinstance(last_seen, int | float)
                                 else "iso8601")
            if seen is not None:
                values[DEVICE_TIME] = seen
        return [Reading(sensor, raw.received_ns, values)]


def _action_values(action: str, code: object, values: dict[str, FieldValue]) -> None:
    if action in _PANIC_ACTIONS:
        values["panic"] = True
    elif action in _KEYPAD_ACTIONS:
        values["action"] = _KEYPAD_ACTIONS[action]
        if code is not None:
            values["badge"] = coerce_field("badge", code)
    elif action in _MOVEMENT_ACTIONS:
        values.setdefault("vibration", True)
    elif action:
        values[UNHANDLED] = f"action={action[:40]}"
