"""Devices bound to profiles of the shipped catalogue, and the bridges they sit behind: the
subscriptions, silence limits and bridge membership a binding brings (README "Device profiles")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import Field, ValidationError, model_validator

from daemon.vocabulary.settings import Identifier, Settings
from drivers.decoders.availability import BRIDGE_PREFIX
from drivers.decoders.kinds import DecoderConfig
from drivers.mqtt_settings import SubscriptionConfig
from drivers.profiles import (
    CHECK_IN_FACTOR,
    DeviceProfile,
    profile,
    sample_problems,
    validate_decoder,
)

__all__ = ["BridgeBinding", "DeviceBinding", "bridge_sensors", "device_subscriptions",
           "silence_limits"]

# Characters a device name cannot hold: it becomes one MQTT topic level.
_NOT_IN_NAMES = frozenset("+#/{}\0")


def _name_ok(name: str) -> str:
    if not name or not name.strip() or _NOT_IN_NAMES & set(name) or len(name) > 128:
        raise ValueError(f"device name {name[:40]!r}: empty, too long, or holds + # / {{ }}")
    return name


class DeviceBinding(Settings):
    """A configured sensor read through a device profile (`zigbee2mqtt/aqara-mccgq11lm`)."""

    sensor: Identifier
    profile: str
    # The name it publishes under (Zigbee2MQTT friendly name, Tasmota topic); the sensor id
    # when left out.
    device: str | None = None
    # The profile's state topic, replaced (`{device}` allowed): an ESPHome component's name.
    topic: str | None = None
    # Settings merged over the profile's decoder (probes, antennas), or a whole other decoder
    # when `type` is given; either must read the profile's samples.
    decoder: dict[str, Any] = Field(default_factory=dict)
    # The id of the bridge (under `bridges`) the device reports through.
    bridge: Identifier | None = None
    # Longest silence before `sensor_silent`: the profile's check-in x 2.5 when left out.
    silent_after_s: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _reads_samples(self) -> DeviceBinding:
        spec = profile(self.profile)
        if spec.kind == "bridge":
            raise ValueError(f"profile {self.profile!r} is a bridge: list it under `bridges`")
        _name_ok(self.device_name)
        problems = sample_problems(self.profile, self.decoder_config())
        if problems:
            raise ValueError(f"the decoder cannot read the samples of profile {self.profile!r}: "
                             + "; ".join(problems))
        return self

    @property
    def device_name(self) -> str:
        """The name the device publishes under."""
        return self.device if self.device is not None else self.sensor

    @property
    def spec(self) -> DeviceProfile:
        """The bound profile."""
        return profile(self.profile)

    def decoder_config(self) -> DecoderConfig:
        """The profile's decoder with this binding's settings."""
        spec = self.spec
        try:
            if "type" in self.decoder and spec.decoder is not None and (
                    self.decoder["type"] != spec.decoder.get("type")):
                return validate_decoder(self.decoder)
            return spec.decoder_config(self.decoder)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"decoder {where}: {first['msg']}") from None

    def sensors(self) -> frozenset[str]:
        """Every sensor its readings name: its own, and those its decoder maps probes or
        antennas to."""
        config = self.decoder_config()
        mapped = getattr(config, "probes", None) or getattr(config, "antennas", None) or {}
        return frozenset({self.sensor, *mapped.values()})

    def subscriptions(self) -> list[SubscriptionConfig]:
        """Its state topic and its availability topic, each naming its sensor."""
        spec = self.spec
        topic = (self.topic or spec.topic or "").replace("{device}", self.device_name)
        subscriptions = [SubscriptionConfig(topic=topic, decoder=self.decoder_config(),
                                            sensor=self.sensor)]
        if spec.availability is not None:
            subscriptions.append(SubscriptionConfig(
                topic=spec.availability.topic.replace("{device}", self.device_name),
                decoder=spec.availability.decoder, sensor=self.sensor))
        return subscriptions


class BridgeBinding(Settings):
    """A bridge (Zigbee2MQTT, a Tasmota Zigbee gateway): offline, every device behind it is."""

    id: Identifier
    profile: str
    # Zigbee2MQTT: its base_topic; Tasmota: the gateway's topic. The id when left out.
    device: str | None = None

    @model_validator(mode="after")
    def _bridge_profile(self) -> BridgeBinding:
        spec = profile(self.profile)
        if spec.kind != "bridge" or spec.availability is None:
            raise ValueError(f"profile {self.profile!r} is not a bridge")
        _name_ok(self.device or self.id)
        return self

    def subscription(self) -> SubscriptionConfig:
        """Its availability topic, naming the bridge's pseudo-sensor."""
        availability = profile(self.profile).availability
        assert availability is not None
        return SubscriptionConfig(
            topic=availability.topic.replace("{device}", self.device or self.id),
            decoder=availability.decoder, sensor=f"{BRIDGE_PREFIX}{self.id}")


def device_subscriptions(devices: Sequence[DeviceBinding],
                         bridges: Sequence[BridgeBinding]) -> list[SubscriptionConfig]:
    """The subscriptions bindings bring; they go before the config's own (first match wins)."""
    return [*(b.subscription() for b in bridges),
            *(s for d in devices for s in d.subscriptions())]


def silence_limits(devices: Sequence[DeviceBinding]) -> dict[str, float]:
    """Sensor -> its silence limit in seconds, where a binding sets or implies one."""
    limits: dict[str, float] = {}
    for binding in devices:
        check_in = binding.spec.check_in_s
        limit = binding.silent_after_s or (check_in * CHECK_IN_FACTOR if check_in else None)
        if limit is not None:
            for sensor in binding.sensors():
                limits[sensor] = limit
    return limits


def bridge_sensors(devices: Sequence[DeviceBinding]) -> dict[str, frozenset[str]]:
    """Bridge id -> the sensors behind it."""
    behind: dict[str, set[str]] = {}
    for binding in devices:
        if binding.bridge is not None:
            behind.setdefault(binding.bridge, set()).update(binding.sensors())
    return {bridge: frozenset(sensors) for bridge, sensors in behind.items()}
