"""Home Assistant MQTT discovery: one retained config message per entity (HA's "MQTT Discovery"
and the `binary_sensor` / `sensor` MQTT integrations), all of one device, the gateway.

Read-only on purpose: a storehouse is a `binary_sensor` (armed, alarm) rather than an
`alarm_control_panel`, which needs a command topic: arming and disarming a depot goes through
the officers' API with its tokens, audit and two-person rules, never through a dashboard."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from daemon.vocabulary.settings import Settings

__all__ = ["Entity", "HomeAssistantConfig", "StorehouseView", "discovery", "object_id",
           "storehouse_topic"]

# Retained JSON per storehouse (armed, zone, alarm, counts, doors, climate): the entities' state.
STOREHOUSE_TOPIC = "depotwatch/{site}/storehouses/{storehouse}"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


class HomeAssistantConfig(Settings):
    """`home_assistant:` present turns discovery on (off without it)."""

    # Home Assistant's default discovery prefix (its MQTT integration's "discovery_prefix").
    discovery_prefix: str = Field(default="homeassistant", pattern=r"^[^#+\s]+$")
    # Discovery and every state message are sent again this often (QoS 0, retained: see
    # publisher.py for why not QoS 1); also how soon a reloaded register shows in HA.
    refresh_s: float = Field(default=60.0, ge=5, le=3600)


@dataclass(frozen=True, slots=True)
class StorehouseView:
    """What discovery needs of a storehouse: its name, doors and climate sensors."""

    id: str
    name: str
    doors: tuple[str, ...]
    climate_sensors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Entity:
    """One discovery message: where it goes and its body."""

    topic: str
    config: dict[str, Any]


def object_id(*parts: str) -> str:
    """An id Home Assistant takes in a topic level and an entity id: [A-Za-z0-9_-] only."""
    return "_".join(_UNSAFE.sub("_", p) for p in parts)


def storehouse_topic(site: str, storehouse: str) -> str:
    """Where a storehouse's state JSON is published."""
    return STOREHOUSE_TOPIC.replace("{site}", site).replace("{storehouse}", storehouse)


def _entities(store: StorehouseView) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(component, key, name, component-specific config) of a storehouse's entities."""
    yield ("binary_sensor", "armed", f"{store.name} armed",
           {"icon": "mdi:shield-lock", "value_template":
            "{{ 'ON' if value_json.armed else 'OFF' }}"})
    yield ("binary_sensor", "alarm", f"{store.name} alarm",
           {"device_class": "safety", "value_template":
            "{{ 'ON' if value_json.alarm else 'OFF' }}"})
    yield ("sensor", "active_alarms", f"{store.name} active alarms",
           {"icon": "mdi:alarm-light", "state_class": "measurement",
            "value_template": "{{ value_json.active_alarms }}"})
    yield ("sensor", "unacknowledged_alarms", f"{store.name} unacknowledged alarms",
           {"icon": "mdi:alarm-light-outline", "state_class": "measurement",
            "value_template": "{{ value_json.unacknowledged_alarms }}"})
    for door in store.doors:
        # Door state "open"/"closed", null until its contact has reported: HA shows unknown.
        yield ("binary_sensor", f"door_{door}", f"Door {door}",
               {"device_class": "door", "value_template":
                f"{{{{ {{'open': 'ON', 'closed': 'OFF'}}.get(value_json.doors[{door!r}], "
                "'None') }}"})
    for sensor in store.climate_sensors:
        for field, device_class, unit in (("temperature_c", "temperature", "°C"),
                                          ("humidity_pct", "humidity", "%")):
            yield ("sensor", f"{sensor}_{device_class}", f"{sensor} {device_class}",
                   {"device_class": device_class, "unit_of_measurement": unit,
                    # null until the sensor reports: renders "None", which HA shows as unknown.
                    "state_class": "measurement", "value_template":
                    f"{{{{ value_json.climate[{sensor!r}].{field} }}}}"})


def discovery(site: str, site_name: str, version: str, status_topic: str,
              config: HomeAssistantConfig, storehouses: list[StorehouseView]) -> list[Entity]:
    """Every discovery message for the depot, in a stable order."""
    node = object_id("depotwatch", site)
    device = {"identifiers": [node], "name": f"depotwatch {site_name}",
              "manufacturer": "depotwatch", "model": "depot gateway", "sw_version": version}
    common = {"availability_topic": status_topic, "payload_available": "online",
              "payload_not_available": "offline", "device": device,
              "origin": {"name": "depotwatch", "sw_version": version}}
    found: list[Entity] = []
    for store in storehouses:
        for component, key, name, specific in _entities(store):
            unique = object_id("depotwatch", site, store.id, key)
            found.append(Entity(
                f"{config.discovery_prefix}/{component}/{node}/{object_id(store.id, key)}/config",
                {"name": name, "unique_id": unique,
                 "state_topic": storehouse_topic(site, store.id), **specific, **common}))
    return found
