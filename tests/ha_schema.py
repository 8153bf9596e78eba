"""Home Assistant's MQTT discovery schema for the two components depotwatch announces, as pydantic
models: the keys and types of HA's voluptuous schemas (homeassistant/components/mqtt/
binary_sensor.py and sensor.py: PLATFORM_SCHEMA_MODERN = MQTT_RO_SCHEMA + the component's keys +
MQTT_ENTITY_COMMON_SCHEMA) and the device classes of the "MQTT Binary sensor" and "MQTT Sensor"
documentation pages. Unknown keys are refused here (HA drops them silently, hiding typos)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BINARY_SENSOR_CLASSES = Literal[
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window"]
# The sensor device classes depotwatch could use, each with the units HA accepts for it.
SENSOR_UNITS = {"temperature": {"°C", "°F", "K"}, "humidity": {"%"}, "battery": {"%"},
                "signal_strength": {"dB", "dBm"}, "duration": {"s", "min", "h", "d"}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Device(_Strict):
    """MQTT_ENTITY_DEVICE_INFO_SCHEMA (identifiers or connections required)."""

    identifiers: list[str] = Field(min_length=1)
    name: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    sw_version: str | None = None
    hw_version: str | None = None
    suggested_area: str | None = None
    configuration_url: str | None = None
    via_device: str | None = None


class Origin(_Strict):
    """MQTT_ORIGIN_INFO_SCHEMA: who published the discovery message."""

    name: str
    sw_version: str | None = None
    support_url: str | None = None


class _Entity(_Strict):
    """MQTT_RO_SCHEMA and MQTT_ENTITY_COMMON_SCHEMA: what every read-only entity takes."""

    state_topic: str = Field(pattern=r"^[^#+]+$")
    value_template: str | None = None
    qos: Literal[0, 1, 2] = 0
    name: str | None = None
    unique_id: str | None = None
    object_id: str | None = None
    icon: str | None = Field(default=None, pattern=r"^mdi:[a-z0-9-]+$")
    availability_topic: str | None = None
    availability_template: str | None = None
    payload_available: str = "online"
    payload_not_available: str = "offline"
    device: Device | None = None
    origin: Origin | None = None
    entity_category: Literal["config", "diagnostic"] | None = None
    enabled_by_default: bool = True
    json_attributes_topic: str | None = None
    json_attributes_template: str | None = None
    expire_after: int | None = Field(default=None, ge=0)
    force_update: bool = False


class BinarySensor(_Entity):
    """The MQTT binary_sensor's discovery config."""

    device_class: BINARY_SENSOR_CLASSES | None = None
    payload_on: str = "ON"
    payload_off: str = "OFF"
    off_delay: int | None = Field(default=None, ge=0)


class Sensor(_Entity):
    """The MQTT sensor's discovery config."""

    device_class: str | None = None
    state_class: Literal["measurement", "total", "total_increasing"] | None = None
    unit_of_measurement: str | None = None
    suggested_display_precision: int | None = None

    def unit_fits(self) -> bool:
        """HA's check that a device class comes with one of its units."""
        if self.device_class is None:
            return True
        return self.unit_of_measurement in SENSOR_UNITS.get(self.device_class, set())


COMPONENTS: dict[str, type[_Entity]] = {"binary_sensor": BinarySensor, "sensor": Sensor}
