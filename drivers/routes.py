"""Which decoder reads a raw message, and for which sensor: the contract between drivers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from drivers.decoders.base import Decoder

__all__ = ["Route", "Router", "Routers"]


@dataclass(frozen=True, slots=True)
class Route:
    """The decoder for a source's payloads, the sensor id it names, and the payload size limit."""

    decoder: Decoder
    sensor: str
    max_payload_bytes: int


class Router(Protocol):
    """Finds the route of a RawMessage's `source` (an MQTT topic, `serial:<port id>` ...)."""

    def route(self, source: str) -> Route | None:
        """The route, or None when this router does not know the source."""
        ...


class Routers:
    """Several routers (one per driver); the first that knows a source answers."""

    def __init__(self, routers: Sequence[Router]) -> None:
        self._routers = tuple(routers)

    def route(self, source: str) -> Route | None:
        """The first router's answer."""
        for router in self._routers:
            found = router.route(source)
            if found is not None:
                return found
        return None
