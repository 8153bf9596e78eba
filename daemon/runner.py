"""The daemon process: builds the pipeline from the config and runs its tasks in one TaskGroup."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from daemon.alerts import AlertBook
from daemon.clock import Clock, SystemClock
from daemon.config import Config
from daemon.deadletters import DeadLetterStore
from daemon.model import RawMessage
from daemon.notifiers.base import Notifier, Outbox
from daemon.notifiers.console import LogNotifier
from daemon.notifiers.mqtt import MqttAlertNotifier
from daemon.pipeline import Pipeline
from daemon.statefile import StateFile
from daemon.tsdb import FileSink, TsdbWriter, build_sink
from drivers.mqtt import MqttLink, TopicRoute, TopicRouter
from rules.engine import Engine

__all__ = ["Daemon"]

log = logging.getLogger(__name__)


class Daemon:
    """Everything one gateway runs: MQTT link, rule ticks, InfluxDB writers, alert outboxes."""

    def __init__(
        self, config: Config, *, clock: Clock | None = None,
        notifiers: Sequence[Notifier] = (), tick_interval_s: float | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._tick_interval_s = tick_interval_s or config.tick_interval_s
        self._startup_grace_s = 10.0 if tick_interval_s is None else 0.1
        self._state_interval_s = config.state_save_interval_s
        depot = config.depot()
        self.link = MqttLink(config.mqtt, self.clock)
        self.writers = [
            TsdbWriter(
                f"influxdb[{i}] {target.url}", build_sink(target),
                batch_size=target.batch_size, flush_interval_s=target.flush_interval_s,
                max_buffered_points=target.max_buffered_points,
            )
            for i, target in enumerate(config.influxdb)
        ]
        if config.file_output is not None:
            self.writers.append(TsdbWriter(
                f"file {config.file_output.path}", FileSink(config.file_output.path),
                batch_size=5000, flush_interval_s=0.5, max_buffered_points=200_000,
            ))
        topic = config.mqtt.alerts_topic.replace("{site}", config.site.id)
        self.outboxes = [
            Outbox(MqttAlertNotifier(self.link, topic, config.site.id)),
            Outbox(LogNotifier()),
            *(Outbox(n) for n in notifiers),
        ]
        self.deadletters = DeadLetterStore(config.state_dir / "deadletters.sqlite",
                                           config.deadletters)
        self.pipeline = Pipeline(
            depot=depot,
            router=TopicRouter([TopicRoute.from_config(s) for s in config.mqtt.subscriptions]),
            engine=Engine([(rule.type, rule.build(depot)) for rule in config.rule_set()]),
            alerts=AlertBook(), deadletters=self.deadletters,
            points=[w.enqueue for w in self.writers], notify=[o.put for o in self.outboxes],
        )
        self.link.on_message(self._on_message)
        self.link.on_state(self._on_link_state)
        self.state_file = StateFile(config.state_dir / "engine-state.json")
        saved = self.state_file.load()
        if saved is not None:
            self.pipeline.restore(saved)
            log.info("engine state restored from %s", self.state_file.path)

    async def _on_message(self, raw: RawMessage) -> None:
        self.pipeline.ingest(raw, self.clock.now_ns())

    def _on_link_state(self, up: bool) -> None:
        self.pipeline.input_state("mqtt", up, self.clock.now_ns())

    async def _tick(self) -> None:
        # Let the broker hand over what it queued for us while we were down before silence and
        # sustain timers are judged, or a restart would page "sensor silent" for every sensor.
        try:
            await asyncio.wait_for(self.link.connected.wait(), self._startup_grace_s)
            await asyncio.sleep(min(1.0, self._startup_grace_s))
        except TimeoutError:
            log.warning("no MQTT connection after %.0f s; supervising anyway",
                        self._startup_grace_s)
        while True:
            self.pipeline.tick(self.clock.now_ns())
            await asyncio.sleep(self._tick_interval_s)

    async def _save_state(self) -> None:
        while True:
            await asyncio.sleep(self._state_interval_s)
            await asyncio.to_thread(self.state_file.save, self.pipeline.snapshot())

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then deliver what is queued and shut down."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.link.run(), name="mqtt")]
            tasks += [group.create_task(w.run(), name=w.name) for w in self.writers]
            tasks += [group.create_task(o.run(), name=f"notify {o.notifier.name}")
                      for o in self.outboxes]
            tasks.append(group.create_task(self._tick(), name="tick"))
            tasks.append(group.create_task(self._save_state(), name="state"))
            log.info("depotwatch running for site %s: %d subscriptions, %d writers",
                     self.config.site.id, len(self.config.mqtt.subscriptions), len(self.writers))
            await stop.wait()
            log.info("stopping: delivering queued alerts and points")
            await asyncio.gather(*(o.drain(3.0) for o in self.outboxes))
            await asyncio.gather(*(w.flush(5.0) for w in self.writers))
            for task in tasks:
                task.cancel()
        self.state_file.save(self.pipeline.snapshot())
        self.deadletters.close()
