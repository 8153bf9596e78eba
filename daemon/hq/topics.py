"""The topics HQ reads of every depot, as a handful of wildcard filters whatever the number of
depots, and which depot and kind of message a topic is."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from daemon.hq.heartbeat import HEARTBEAT_TOPIC
from drivers.mqtt_settings import MqttConfig

__all__ = ["DepotTopics", "Kind", "Topic", "commands_topic"]

_DEFAULTS = MqttConfig()


def commands_topic(site: str) -> str:
    """A depot's command topic (next to its alerts, as the gateway derives it)."""
    return _DEFAULTS.alerts_topic.replace("{site}", site).rsplit("/", 1)[0] + "/commands"


class Kind(enum.StrEnum):
    """What a depot's message on HQ's broker is."""

    HEARTBEAT = "heartbeat"
    # The bridge state HQ's broker publishes (deploy/mosquitto/bridge-hq.conf).
    BRIDGE = "bridge"
    # The gateway daemon's retained online/offline (its last will).
    STATUS = "status"
    ALERT = "alert"
    REPLY = "reply"


_TEMPLATES = {
    Kind.HEARTBEAT: HEARTBEAT_TOPIC,
    Kind.BRIDGE: "depotwatch/{site}/gateway/bridge",
    Kind.STATUS: _DEFAULTS.status_topic,
    Kind.ALERT: _DEFAULTS.alerts_topic + "/{key}",
    Kind.REPLY: commands_topic("{site}") + "/replies",
}


@dataclass(frozen=True, slots=True)
class Topic:
    """One message's topic, understood."""

    kind: Kind
    site: str
    key: str = ""


class DepotTopics:
    """Matches topics against the depots HQ supervises (others are ignored)."""

    def __init__(self, sites: Iterable[str]) -> None:
        self._sites = frozenset(sites)
        self._shapes = [(kind, template.split("/")) for kind, template in _TEMPLATES.items()]

    def filters(self) -> list[str]:
        """One wildcard filter per kind: HQ subscribes to five, not five per depot."""
        return sorted(t.replace("{site}", "+").replace("{key}", "+") for t in _TEMPLATES.values())

    def match(self, topic: str) -> Topic | None:
        """Which depot and kind `topic` is; None for anything else."""
        parts = topic.split("/")
        for kind, shape in self._shapes:
            if len(parts) != len(shape):
                continue
            found = {"{site}": "", "{key}": ""}
            for part, want in zip(parts, shape, strict=True):
                if want in found:
                    found[want] = part
                elif part != want:
                    break
            else:
                if found["{site}"] in self._sites:
                    return Topic(kind, found["{site}"], found["{key}"])
                return None
        return None
