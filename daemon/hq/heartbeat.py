"""The gateway's heartbeat: a retained health summary on its own subtree, for HQ to watch."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import NoReturn, Protocol

from pydantic import TypeAdapter, ValidationError

from daemon import __version__
from daemon.alerts.alarm import Alarm
from daemon.alerts.desk import AlarmDesk
from daemon.config.schema import Config
from daemon.ingest.pipeline import Pipeline
from daemon.spool.backlog import Backlog
from daemon.spool.store import Spool
from daemon.vocabulary.errors import DepotwatchError

__all__ = ["HEARTBEAT_TOPIC", "Heartbeat", "Pulse", "build_pulse", "heartbeat_topic"]

log = logging.getLogger(__name__)

# Under `gateway/`, which the HQ bridge (deploy/mosquitto/bridge-hq.conf) already carries out.
HEARTBEAT_TOPIC = "depotwatch/{site}/gateway/heartbeat"


def heartbeat_topic(site: str) -> str:
    """Where the gateway of `site` publishes its heartbeat."""
    return HEARTBEAT_TOPIC.replace("{site}", site)


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """One gateway's health summary, as it publishes it and HQ reads it."""

    site: str
    version: str
    sent_s: float
    interval_s: float
    spool_points: int
    lag_s: float
    active_alarms: int
    unacknowledged_alarms: int
    # Wall-clock time of the last reading taken, to within one heartbeat; None: none yet.
    last_reading_s: float | None

    def to_json(self) -> bytes:
        """The retained message's body."""
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_json(cls, body: bytes) -> Heartbeat:
        """Back from `to_json()`; raises ValueError when the body is not a heartbeat."""
        try:
            return _HEARTBEAT.validate_json(body)
        except ValidationError as exc:
            raise ValueError(f"not a heartbeat: {exc.error_count()} problem(s)") from exc


_HEARTBEAT = TypeAdapter(Heartbeat)


class Publisher(Protocol):
    """The broker link the heartbeat goes out on."""

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> int:
        """Queue one message."""
        ...


class Pulse:
    """Gathers the gateway's health every `interval_s` and publishes it, retained, at QoS 1."""

    def __init__(self, site: str, version: str, interval_s: float, link: Publisher, *,
                 backlog: Callable[[], Awaitable[list[Backlog]]],
                 alarms: Callable[[], Sequence[Alarm]], readings: Callable[[], int]) -> None:
        self.topic = heartbeat_topic(site)
        self._site = site
        self._version = version
        self._interval_s = interval_s
        self._link = link
        self._backlog = backlog
        self._alarms = alarms
        self._readings = readings
        self._seen_readings = 0
        self._last_reading_s: float | None = None

    async def summary(self) -> Heartbeat:
        """The health summary as of now."""
        backlog = await self._backlog()
        now_s = time.time()
        # Counting readings is free on the hot path; a timestamp per reading would not be.
        taken = self._readings()
        if taken != self._seen_readings:
            self._seen_readings, self._last_reading_s = taken, now_s
        oldest = min((b.oldest_ns for b in backlog if b.oldest_ns), default=None)
        alarms = self._alarms()
        return Heartbeat(
            site=self._site, version=self._version, sent_s=round(now_s, 3),
            interval_s=self._interval_s,
            spool_points=max((b.points for b in backlog), default=0),
            lag_s=round(now_s - oldest / 1e9, 3) if oldest else 0.0,
            active_alarms=len(alarms),
            unacknowledged_alarms=sum(1 for a in alarms if a.acked_by is None),
            last_reading_s=self._last_reading_s)

    async def run(self) -> NoReturn:
        """Publish a heartbeat now and every `interval_s`, forever."""
        while True:
            beat = await self.summary()
            try:
                self._link.publish(self.topic, beat.to_json(), retain=True, qos=1)
            except DepotwatchError as exc:  # the broker is away: the next beat tries again
                log.debug("heartbeat not published on %s: %s", self.topic, exc)
            await asyncio.sleep(self._interval_s)


def build_pulse(config: Config, link: Publisher, spool: Spool, desk: AlarmDesk,
                pipeline: Pipeline) -> Pulse:
    """The heartbeat of the gateway these parts make up."""
    return Pulse(config.site.id, __version__, config.heartbeat_s, link, backlog=spool.backlog,
                 alarms=desk.alarms, readings=lambda: sum(pipeline.readings.values()))
