"""Settings of ingest: which values are plausible, and how malformed payloads are kept."""

from __future__ import annotations

from pydantic import Field

from daemon.ingest.replays import ReplayWindow
from daemon.vocabulary.settings import Settings

__all__ = ["DeadLetterConfig", "PlausibilityConfig", "PlausibleRange", "ReplayConfig"]


class DeadLetterConfig(Settings):
    """Where malformed payloads are kept for inspection."""

    max_entries: int = Field(default=10_000, gt=0)
    max_payload_bytes: int = Field(default=1 << 20, gt=0)
    # All kept payloads together: the oldest go first past it (10,000 x 1 MiB was 10 GiB).
    max_bytes: int = Field(default=64 << 20, gt=0)
    log_interval_s: float = Field(default=60.0, ge=0)


class PlausibleRange(Settings):
    """The values a working sensor can report for one field."""

    min: float
    max: float


class PlausibilityConfig(Settings):
    """Values outside these ranges (and NaN or infinity, always) are a sensor fault: the
    payload is a dead letter and the sensor gets a `sensor_fault` alert, never a climate alarm.

    Ranges are per field; `sensors` overrides them for single sensors (a freezer probe).
    """

    temperature_c: PlausibleRange = PlausibleRange(min=-60.0, max=100.0)
    humidity_pct: PlausibleRange = PlausibleRange(min=0.0, max=100.0)
    battery_pct: PlausibleRange = PlausibleRange(min=0.0, max=100.0)
    rssi_dbm: PlausibleRange = PlausibleRange(min=-150.0, max=30.0)
    sensors: dict[str, dict[str, PlausibleRange]] = Field(default_factory=dict)
    # A device timestamp (`device_time_s`) further than this from the gateway's receipt time
    # is a `clock_skew` fault of that sensor; readings are timed by receipt either way.
    device_clock_skew_s: float = Field(default=60.0, gt=0)

    def ranges(self) -> dict[str, tuple[float, float]]:
        """Field -> (lowest, highest) plausible value."""
        return {name: (r.min, r.max) for name in ("temperature_c", "humidity_pct",
                                                    "battery_pct", "rssi_dbm")
                for r in (getattr(self, name),)}

    def sensor_ranges(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Sensor -> its own ranges (the others as `ranges()`)."""
        default = self.ranges()
        return {sensor: {**default, **{f: (r.min, r.max) for f, r in own.items()}}
                for sensor, own in self.sensors.items()}


class ReplayConfig(Settings):
    """How long QoS 1 messages are remembered to tell a broker's replay (a Mosquitto restored
    from an older store sends them again, DUP clear) from a new message; see
    daemon/ingest/replays.py. Covers a store at least `window_s / 2` old, and at most
    `max_entries` messages (8 bytes each)."""

    window_s: float = Field(default=600.0, gt=0)
    max_entries: int = Field(default=1 << 18, gt=1)

    def window(self) -> ReplayWindow:
        """An empty window with these bounds."""
        return ReplayWindow(self.window_s, self.max_entries)
