"""The depot on a Home Assistant broker: discovery configs and each storehouse's state, retained,
sent on every (re)connection, within a second of a change, and every `refresh_s`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Protocol

from daemon import __version__
from daemon.alerts.alarm import Alarm, AlarmState
from daemon.alerts.desk import AlarmDesk
from daemon.config.schema import Config
from daemon.homeassistant.discovery import (
    HomeAssistantConfig,
    StorehouseView,
    discovery,
    storehouse_topic,
)
from daemon.ingest.pipeline import Pipeline
from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import DepotwatchError
from daemon.vocabulary.readings import FieldValue, Reading, Severity
from daemon.web.recent import RecentEvents
from drivers.mqtt import MqttLink
from rules.base import Fact

__all__ = ["HomeAssistantPublisher", "build_home_assistant"]

log = logging.getLogger(__name__)

_CLIMATE_FIELDS = ("temperature_c", "humidity_pct")
# An open alarm of these makes the storehouse's `alarm` entity ON (warnings only count).
_ALARMING = (Severity.ALARM, Severity.CRITICAL)


class Link(Protocol):
    """The broker link: whether it is up, and a publish."""

    connected: asyncio.Event

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> int:
        """Queue one message."""
        ...


class HomeAssistantPublisher:
    """Keeps Home Assistant's view of the depot. The reading path only keeps climate values and
    zone states (no I/O there); `run` compares each storehouse's state once a second and
    publishes what changed."""

    def __init__(self, site: str, site_name: str, status_topic: str, config: HomeAssistantConfig,
                 link: Link, alarms: Callable[[], list[Alarm]], recent: RecentEvents,
                 clock: Clock) -> None:
        self._site, self._site_name, self._status_topic = site, site_name, status_topic
        self._config, self._link, self._alarms, self._recent = config, link, alarms, recent
        self._clock = clock
        self._zones: dict[str, str] = {}
        self._climate: dict[str, dict[str, FieldValue]] = {}
        # The state last published per storehouse: only a different one is sent.
        self._sent: dict[str, bytes] = {}

    def reading(self, reading: Reading) -> None:
        """Door readings are in `recent`; climate values are kept here."""
        if any(f in reading.values for f in _CLIMATE_FIELDS):
            kept = self._climate.setdefault(reading.sensor, {})
            kept.update({f: reading.values[f] for f in _CLIMATE_FIELDS if f in reading.values})

    def fact(self, fact: Fact) -> None:
        """A `zone` fact: a staff-armed storehouse's zone state."""
        if fact.measurement == "zone":
            self._zones[fact.tags.get("storehouse", "")] = str(fact.fields.get("state", ""))

    def _views(self) -> list[StorehouseView]:
        return [StorehouseView(store, name, tuple(d.door for d in self._recent.doors(store)),
                               tuple(self._recent.climate_sensors(store)))
                for store, name in self._recent.storehouses()]

    def state(self, view: StorehouseView, alarms: list[Alarm], now_ns: int) -> dict[str, object]:
        """A storehouse's state message (the entities' value templates read it)."""
        mine = [a for a in alarms if a.storehouse == view.id]
        zone = self._zones.get(view.id)
        armed = (zone in ("armed", "entry", "alarm") if zone
                 else self._recent.armed(view.id, now_ns))
        doors = {d.door: None if d.open is None else ("open" if d.open else "closed")
                 for d in self._recent.doors(view.id)}
        return {"storehouse": view.id, "name": view.name, "armed": armed, "zone": zone,
                "alarm": any(a.severity in _ALARMING for a in mine),
                "active_alarms": len(mine),
                "unacknowledged_alarms": sum(a.state is AlarmState.FIRING for a in mine),
                "doors": doors,
                "climate": {s: {f: self._climate.get(s, {}).get(f) for f in _CLIMATE_FIELDS}
                            for s in view.climate_sensors}}

    def _send(self, topic: str, body: bytes) -> None:
        # QoS 0: no packet id and no place in the broker's in-flight window, which the alarm
        # notices need (a burst of discovery at QoS 1 could hold an alarm back); what a broken
        # connection loses is sent again at the next connection or refresh.
        self._link.publish(topic, body, retain=True, qos=0)

    def publish(self, everything: bool) -> int:
        """Discovery and every state (if `everything`), else the states that changed; returns
        how many messages went out."""
        views = self._views()
        sent = 0
        if everything:
            self._sent.clear()
            for entity in discovery(self._site, self._site_name, __version__, self._status_topic,
                                    self._config, views):
                self._send(entity.topic, _encode(entity.config))
                sent += 1
        alarms, now_ns = self._alarms(), self._clock.now_ns()
        for view in views:
            body = _encode(self.state(view, alarms, now_ns))
            if self._sent.get(view.id) != body:
                self._send(storehouse_topic(self._site, view.id), body)
                self._sent[view.id] = body
                sent += 1
        return sent

    async def run(self) -> None:
        """Everything on each connection and every refresh; changes once a second."""
        loop = asyncio.get_running_loop()
        announced_at: float | None = None
        while True:
            await self._link.connected.wait()
            now = loop.time()
            due = announced_at is None or now - announced_at >= self._config.refresh_s
            try:
                self.publish(everything=due)
                announced_at = now if due else announced_at
            except DepotwatchError as exc:
                log.warning("home assistant: not published (%s); again at the next connection",
                            exc)
                announced_at = None
            await asyncio.sleep(1.0)
            if not self._link.connected.is_set():
                announced_at = None  # a new connection: announce again


def _encode(body: object) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode()


def build_home_assistant(config: Config, link: MqttLink, desk: AlarmDesk, recent: RecentEvents,
                         clock: Clock, pipeline: Pipeline) -> list[HomeAssistantPublisher]:
    """The publisher if `home_assistant:` is configured (none otherwise), hearing readings and
    zone facts from `pipeline`."""
    if config.home_assistant is None:
        return []
    status = config.mqtt.status_topic.replace("{site}", config.site.id)
    publisher = HomeAssistantPublisher(config.site.id, config.site.name or config.site.id,
                                       status, config.home_assistant, link, desk.alarms, recent,
                                       clock)
    pipeline.listeners.append(publisher.reading)
    pipeline.fact_listeners.append(publisher.fact)
    return [publisher]
