"""MQTT subscriptions as routes: which decoder reads a topic, and which sensor it names."""

from __future__ import annotations

import re
from dataclasses import dataclass

from drivers.decoders.base import Decoder
from drivers.mqtt_settings import SubscriptionConfig
from drivers.routes import Route

__all__ = ["TopicRoute", "TopicRouter"]


@dataclass(frozen=True, slots=True)
class TopicRoute:
    """A subscription: MQTT filter, the regex that extracts the sensor id, and its decoder."""

    template: str
    filter: str
    pattern: re.Pattern[str]
    decoder: Decoder
    max_payload_bytes: int
    sensor: str = ""

    @classmethod
    def from_config(cls, config: SubscriptionConfig) -> TopicRoute:
        """Compile `zigbee2mqtt/{sensor}` into the filter `zigbee2mqtt/+` and a matcher."""
        levels = config.topic.split("/")
        regex: list[str] = []
        for level in levels:
            if level == "{sensor}":
                regex.append("(?P<sensor>[^/]+)")
            elif level == "+":
                regex.append("[^/]+")
            elif level == "#":
                regex.append(".*")
            else:
                regex.append(re.escape(level).replace(r"\{sensor\}", "(?P<sensor>[^/]+)"))
        topic_filter = "/".join(
            "+" if "{sensor}" in level else level for level in levels
        )
        return cls(
            template=config.topic, filter=topic_filter,
            pattern=re.compile("^" + "/".join(regex) + "$"),
            decoder=config.decoder.build(), max_payload_bytes=config.max_payload_bytes,
            sensor=config.sensor or "",
        )


# Topics repeat (one or a few per sensor): their routes are remembered, up to this many.
_ROUTE_CACHE_SIZE = 8192


class TopicRouter:
    """Finds the route and sensor id for a topic; the first matching subscription wins."""

    def __init__(self, routes: list[TopicRoute]) -> None:
        self.routes = routes
        self._cache: dict[str, Route | None] = {}

    def route(self, topic: str) -> Route | None:
        """The decoder and the sensor id in the topic, or None."""
        try:
            return self._cache[topic]
        except KeyError:
            pass
        found = self._match(topic)
        if len(self._cache) >= _ROUTE_CACHE_SIZE:  # a flood of new topics stays bounded
            self._cache.clear()
        self._cache[topic] = found
        return found

    def _match(self, topic: str) -> Route | None:
        for route in self.routes:
            match = route.pattern.match(topic)
            if match is not None:
                return Route(route.decoder, match.groupdict().get("sensor") or route.sensor,
                             route.max_payload_bytes)
        return None
