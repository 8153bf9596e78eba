"""One root error class; third-party errors are translated into these at the boundary."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DecodeError",
    "DepotwatchError",
    "DriverError",
    "ImplausibleValue",
    "NotifierError",
    "PortLost",
    "SinkError",
]

# sysexits.h EX_CONFIG: systemd's RestartPreventExitStatus=78 keeps a bad config from looping.
EXIT_CONFIG = 78


class DepotwatchError(Exception):
    """Root of every error depotwatch raises on purpose."""


class ConfigError(DepotwatchError):
    """The configuration file is unusable; the daemon must not start (exit 78)."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s)\n" + "\n".join(problems))


class DriverError(DepotwatchError):
    """A source of readings (MQTT, serial) failed."""


class DecodeError(DriverError):
    """A payload could not be turned into readings; it is counted and dead-lettered."""


class ImplausibleValue(DecodeError):
    """A value no working sensor reports (NaN, infinity, -999 °C): a sensor fault, not a reading.

    `sensor` is filled in by whoever knows which sensor the payload came from.
    """

    def __init__(self, message: str, sensor: str = "") -> None:
        super().__init__(message)
        self.sensor = sensor


class PortLost(DriverError):
    """A serial port disappeared (adapter unplugged)."""


class SinkError(DepotwatchError):
    """A time-series write failed; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class NotifierError(DepotwatchError):
    """An alert could not be delivered; `retryable` says whether trying again can help."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable
