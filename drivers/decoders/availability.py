"""Availability messages: Zigbee2MQTT `availability` and `bridge/state`, Tasmota LWT, ESPHome
`status`, Shelly `online`. They say whether a device or a bridge is reachable; they are never a
sign of life (a retained `online` may be hours old; `offline` is the broker's last will)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import RawMessage, Reading
from drivers.decoders.base import DecoderConfigBase, parse_json_object
from drivers.decoders.text import line_text

__all__ = ["AVAILABLE", "BRIDGE_PREFIX", "AvailabilityDecoder", "AvailabilityDecoderConfig"]

# The one value of an availability reading; the ingest takes such readings aside, before
# the rules, so they never count as a sensor reporting.
AVAILABLE = "available"
# The sensor id of a bridge's availability readings: `bridge.<bridge id>`.
BRIDGE_PREFIX = "bridge."


class AvailabilityDecoderConfig(DecoderConfigBase):
    """An availability topic: the words for online and offline (case-insensitive), and the key
    of a JSON payload's state (Zigbee2MQTT 1.x+: `{"state": "online"}`)."""

    type: Literal["availability"] = "availability"
    online: list[str] = Field(default_factory=lambda: ["online", "true"], min_length=1)
    offline: list[str] = Field(default_factory=lambda: ["offline", "false"], min_length=1)
    json_key: str = "state"

    @model_validator(mode="after")
    def _distinct(self) -> AvailabilityDecoderConfig:
        both = {w.lower() for w in self.online} & {w.lower() for w in self.offline}
        if both:
            raise ValueError(f"words both online and offline: {sorted(both)}")
        return self

    def build(self) -> AvailabilityDecoder:
        """The decoder."""
        return AvailabilityDecoder(self)


class AvailabilityDecoder:
    """One reading `{"available": true|false}` for the route's sensor (or bridge)."""

    def __init__(self, config: AvailabilityDecoderConfig) -> None:
        self._words = {**{w.lower(): True for w in config.online},
                       **{w.lower(): False for w in config.offline}}
        self._key = config.json_key

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """Online or offline, or a DecodeError for any other word."""
        payload = raw.payload.strip()
        if payload.startswith(b"{"):
            state = parse_json_object(payload).get(self._key)
            if not isinstance(state, str):
                raise DecodeError(f"no {self._key!r} text in the availability message")
            word = state
        else:
            word = line_text(payload)
        available = self._words.get(word.strip().lower())
        if available is None:
            raise DecodeError(f"{word[:20]!r} is neither an online nor an offline word")
        return [Reading(sensor, raw.received_ns, {AVAILABLE: available})]
