"""The daemon process: wires the parts daemon/assembly.py builds and runs them in one TaskGroup."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.alerts.arming import ArmingDesk
from daemon.alerts.audit import AuditLog
from daemon.assembly import (
    build_command_desk,
    build_desk,
    build_inputs,
    build_notifiers,
    build_officers,
    build_outboxes,
    build_pipeline,
    build_serial_ports,
    build_spool,
    build_web_app,
    build_writers,
    commands_topic,
    tsdb_targets,
)
from daemon.book.live import open_book
from daemon.config.schema import Config
from daemon.homeassistant.publisher import build_home_assistant
from daemon.hq.heartbeat import build_pulse
from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.pipeline import Pipeline, receipt_digest
from daemon.ingest.pubacks import PubackReceipts
from daemon.notifiers.base import Notifier
from daemon.notifiers.kinds import Resender
from daemon.notifiers.modem_watch import modem_watches
from daemon.notifiers.mqtt import MqttAlertNotifier
from daemon.records.digests import AuditDigests
from daemon.reload import Reloader
from daemon.savegate import SPACING_S, SaveGate
from daemon.sdnotify import SystemdNotifier, stale_after, supervise, watchdog_interval_s
from daemon.selfwatch import SelfWatch
from daemon.spool.quota import is_disk_full
from daemon.statefile import StateFile
from daemon.supervisor import Supervisor
from daemon.ticks import TickSchedule
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.clock import Clock, SteadyClock
from daemon.vocabulary.errors import DepotwatchError
from daemon.vocabulary.readings import RawMessage, Reading
from daemon.web.api import serve_officers
from daemon.web.metrics import DaemonMetrics
from daemon.web.recent import RecentEvents
from drivers.mqtt import MqttLink
from rules.depot import Depot

__all__ = ["Daemon"]

log = logging.getLogger(__name__)


class Daemon:
    """Everything one gateway runs: MQTT link, rule ticks, InfluxDB writers, alert outboxes."""

    def __init__(
        self, config: Config, *, clock: Clock | None = None,
        notifiers: Sequence[Notifier] = (), tick_interval_s: float | None = None,
        config_path: Path | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or SteadyClock()
        self.ticking = TickSchedule(self.clock, tick_interval_s or config.tick_interval_s)
        self._startup_grace_s = 10.0 if tick_interval_s is None else 0.1
        self.link = MqttLink(config.mqtt, self.clock, site=config.site.id)
        targets = tsdb_targets(config)
        self.spool = build_spool(config, targets)
        self.writers = build_writers(targets, self.spool)
        configured = build_notifiers(config)
        # Alertmanager forgets firing alerts not re-sent within its resolve_timeout.
        self.resenders = [n for n in configured if isinstance(n, Resender)]
        self.outboxes = build_outboxes(config, self.link, [*configured, *notifiers])
        self._configured = configured
        # Every alarm action and condition change, hash-chained (PSSM.md records and audit).
        self.audit = AuditLog(config.state_dir / "audit.jsonl", config.audit)
        self.book, depot = open_book(config, self.clock, self.audit.record, self.audit.record_all)
        # Door states and the last events per storehouse, for the web console (memory only).
        self.recent = RecentEvents(depot)
        # Rule conditions become alarms; the state file and the console hear of every notice.
        self.desk = build_desk(config, self.outboxes, [self._alert_changed, self.recent.alarm],
                               self.audit.record, watchers=[n.name for n in notifiers])
        # /metrics and /readyz read this daemon's objects lazily, at scrape time.
        self.metrics = DaemonMetrics(self)
        self.deadletters = DeadLetterStore(config.state_dir / "deadletters.sqlite",
                                           config.deadletters)
        self.pipeline = build_pipeline(config, depot, self.deadletters, self.spool.append,
                                       self.spool.receipts, notify=[self._condition],
                                       listeners=[self.recent.reading], wake=self._timer_started)
        # Home Assistant's view of the storehouses (MQTT discovery), if `home_assistant:` is set.
        self.home_assistant = build_home_assistant(config, self.link, self.desk, self.recent,
                                                   self.clock, self.pipeline)
        self.pubacks = PubackReceipts(self.spool)
        self._committing: dict[asyncio.Future[None], list[bytes]] = {}
        self._wire_inputs(config)
        self.state_file = StateFile(config.state_dir / "engine-state.json")
        self.reloader = Reloader(config_path, config, self.pipeline, self.desk, self.recent,
                                 self.officers, self.clock, self._fresh_pipeline, book=self.book)
        self._reload_asked = asyncio.Event()
        self.systemd = SystemdNotifier.from_environment()
        self._last_tick_s = time.monotonic()  # the watchdog's sign that the loop is alive
        # Rule ticks done so far: a stepped simulation waits for one after each step.
        self.ticks = 0
        self.selfwatch = SelfWatch(self.clock, config, lambda: self.pipeline)
        self._state_changed = asyncio.Event()
        # Whether the reading being taken changed an alarm, and readings waiting for the save.
        self._alerting = False
        self.save_gate = SaveGate()
        self._restore()

    def _wire_inputs(self, config: Config) -> None:
        # One registry of tokens for the API, the console and MQTT commands: a reload swaps it.
        self.officers = build_officers(config)
        self.arming = ArmingDesk(self.clock, self.audit.record)  # zones, through the rules
        self.api = build_web_app(config, self.desk, self.clock, self.recent, self.audit.path,
                                 ready=self.metrics.readiness, metrics=self.metrics.render,
                                 officers=self.officers, arming=self.arming, gateway=self,
                                 records=self.book,
                                 notifiers=lambda: [o.figures() for o in self.outboxes])
        self.api_url: str | None = None
        self.commands = build_command_desk(config, self.desk, self.clock, self._publish_reply,
                                           reject=self.deadletters.keep, officers=self.officers,
                                           arming=self.arming)
        self.link.handle_topic(commands_topic(config), self.commands.handle)
        self.arming.attach(self.pipeline)
        self.pipeline.fact_listeners.append(self.recent.fact)  # zone states for the console
        # SMS notifiers' modems: officers' `ACK` replies, and the modem's own health.
        self.modems = modem_watches(self._configured, self.desk, self.officers.role,
                                    self.audit.record, self.clock, self.pipeline.gateway_reading,
                                    self.pipeline.fault)
        self.link.on_message(self._on_message)
        self.link.on_state(self._on_link_state)
        self.link.on_fault(self._on_link_fault)
        # Serial frames take the MQTT messages' path; each port and bus is a gateway input.
        self.serial_ports = build_serial_ports(config, self.clock, self._on_serial_message,
                                               self._on_input_state, self.deadletters.keep)
        self.modbus_buses, self.readers = build_inputs(config, self.clock, self.arming, links=(
            self._on_reading, self._on_input_state, self.deadletters.keep, self._task_fault))

    def _restore(self) -> None:
        # Alarms, their timers and undelivered notices survive a restart.
        saved = self.state_file.load()
        if saved is None:
            return
        fresh = self._state()
        try:
            self._take_back(saved)
        except Exception as exc:  # any damage: nothing half-restored, fail-secure
            self._take_back(fresh)
            self.state_file.set_aside(f"{type(exc).__name__}: {exc}")
            return
        log.info("engine state restored from %s", self.state_file.path)

    def _take_back(self, saved: Mapping[str, Any]) -> None:
        # What can raise on a damaged file comes first; what only adds (recent events, the
        # outboxes' queues) comes once nothing can fail, so a fresh state undoes the rest.
        self.pipeline.restore(saved)
        self.desk.restore(saved.get("alarms", {}))
        undelivered = saved.get("outboxes", {})
        queues = [[Alert.from_dict(a) for a in undelivered.get(o.notifier.name, [])]
                  for o in self.outboxes]
        recent = saved.get("recent")
        if isinstance(recent, dict):
            self.recent.restore(recent)
        for outbox, queue in zip(self.outboxes, queues, strict=True):
            outbox.restore(queue)

    def _fresh_pipeline(self, config: Config, depot: Depot) -> Pipeline:
        return build_pipeline(config, depot, self.deadletters, self.spool.append,
                              self.spool.receipts, notify=[], wake=self._timer_started)

    def request_reload(self) -> None:
        """Read the config file again soon (SIGHUP); safe to call from a signal handler."""
        self._reload_asked.set()

    async def _reloads(self) -> None:
        while True:
            await self._reload_asked.wait()
            self._reload_asked.clear()
            if await self.reloader.reload():
                self.config = self.reloader.config
                self._state_changed.set()

    def _publish_reply(self, topic: str, body: bytes) -> None:
        try:
            self.link.publish(topic, body, qos=1)
        except DepotwatchError as exc:
            log.warning("MQTT command reply not sent: %s", exc)

    async def _serve_api(self) -> None:
        # A busy port must not take the gateway down: the officers' API is reported as a lost
        # input (an alarm on every other channel) and the pipeline runs on.
        await serve_officers(self.api, self.config.api, functools.partial(setattr, self, "api_url"),
                             lambda: self.pipeline.input_state("api", False, self.clock.now_ns()))

    def _condition(self, change: Alert) -> None:
        self.desk.condition(change, change.changed_ns)
        self._alerting = True
        self._state_changed.set()

    def _timer_started(self, at_ns: int) -> None:
        # A debounce began (a door opened): the rule's timer must be on disk before the reading
        # is acknowledged too, or a crash before the alarm would forget the opening for good.
        self._alerting = True
        self.ticking.wake_at(at_ns)

    def _state_saved(self) -> asyncio.Future[None]:
        """Done once a state save that began after now has finished: a reading that changed an
        alarm is acknowledged only then, or a crash between its PUBACK and the next save would
        lose the alarm (the broker never sends an acknowledged reading again)."""
        self._state_changed.set()
        return self.save_gate.saved()

    def _alert_changed(self, alert: Alert) -> None:
        # Alert state and the outboxes go to disk soon after every change, not only every 5 s.
        self._state_changed.set()

    def _state(self) -> dict[str, object]:
        return {**self.pipeline.snapshot(), "alarms": self.desk.snapshot(),
                "recent": self.recent.snapshot(), "outboxes": {
                    o.notifier.name: [a.to_dict() for a in o.pending()] for o in self.outboxes}}

    def _on_message(self, raw: RawMessage) -> Awaitable[None] | None:
        # The PUBACK goes out when what this returns (a future, not a coroutine per message) is
        # done: once the points are on disk. received_ns: this clock's, read by the link.
        digest = receipt_digest(raw)
        self._alerting = False
        durable = self.pipeline.ingest(raw, raw.received_ns, digest)
        if self._alerting:  # an alarm changed or a door opened: its state goes to disk first
            if not isinstance(durable, asyncio.Future):
                return self._sent_after(durable, digest, self._state_saved())
            self._state_changed.set()
            durable = self.save_gate.saved_and(durable)
        elif durable is None:
            return None
        elif not isinstance(durable, asyncio.Future):
            return self._sent_after(durable, digest)
        # Every message of one commit gets the same future: one callback hands all their
        # receipts over. Added before the link's own callbacks, so it runs as theirs do, before
        # the PUBACKs leave.
        digests = self._committing.get(durable)
        if digests is None:
            digests = self._committing[durable] = []
            durable.add_done_callback(self._committed)
        digests.append(digest)
        return durable

    def _committed(self, durable: asyncio.Future[None]) -> None:
        digests = self._committing.pop(durable, [])
        if not durable.cancelled() and durable.exception() is None:
            self.pubacks.sent(digests)
        elif digests:
            self.pipeline.replays.forget()

    async def _sent_after(self, durable: Awaitable[None] | None, digest: bytes,
                          saved: Awaitable[None] | None = None) -> None:
        if durable is not None:
            await durable
        if saved is not None:
            await saved
        self.pubacks.sent((digest,))

    async def _on_serial_message(self, raw: RawMessage) -> None:
        # A serial port never sends a frame twice: no receipt, so none waits on the MQTT
        # connection to be let go (a broker outage would have kept every frame's in memory).
        self._alerting = False
        durable = self.pipeline.ingest(raw, self.clock.now_ns(), redeliverable=False)
        if durable is not None:
            await durable
        if self._alerting:
            await self._state_saved()

    async def _on_reading(self, source: str, reading: Reading) -> None:
        self._alerting = False
        durable = self.pipeline.take(reading, self.clock.now_ns(), source)
        if durable is not None:
            await durable
        if self._alerting:
            await self._state_saved()

    def _on_input_state(self, component: str, up: bool) -> None:
        self.pipeline.input_state(component, up, self.clock.now_ns())

    def _on_link_state(self, up: bool) -> None:
        self.pubacks.link_state(up)
        if up:
            self.pipeline.replays.session_opened()
            # Alerts raised while the broker was away go out now, not after the backoff.
            for outbox in self.outboxes:
                if isinstance(outbox.notifier, MqttAlertNotifier):
                    outbox.retry_now()
        self.pipeline.input_state("mqtt", up, self.clock.now_ns())

    def _on_link_fault(self, fault: str, summary: str) -> None:
        self.pipeline.fault(fault, "mqtt", True, summary, self.clock.now_ns())

    async def _tick(self) -> None:
        # Let the broker hand over what it queued for us while we were down before silence and
        # sustain timers are judged, or a restart would page "sensor silent" for every sensor.
        self._last_tick_s = time.monotonic()  # the startup grace counts as alive
        try:
            # asyncio.timeout, never wait_for: Python 3.11's wait_for swallows a cancellation
            # that lands as the awaited event fires, and the TaskGroup then waits forever.
            async with asyncio.timeout(self._startup_grace_s):
                await self.link.connected.wait()
            await asyncio.sleep(min(1.0, self._startup_grace_s))
        except TimeoutError:
            log.warning("no MQTT connection after %.0f s; supervising anyway",
                        self._startup_grace_s)
        full, full_s = True, time.monotonic()
        while True:
            now = self.clock.now_ns()
            self.ticking.ticking()
            if full:  # every rule, the alarm desk, the receipts; between, a debounce's end
                self.selfwatch.clock_step(self.pipeline, now)
                self.pipeline.tick(now)
                self.desk.tick(now)
                self.pubacks.release()
                self.ticks, full_s = self.ticks + 1, time.monotonic()
            else:
                self.pipeline.tick(now, asked_only=True)
            self._last_tick_s = time.monotonic()
            full = await self.ticking.until_next(full_s)

    async def _save_state(self) -> None:
        interval_s = self.config.state_save_interval_s
        while True:
            # Not wait_for (see _tick): an alert change coinciding with a failed task's
            # cancellation kept this loop, and with it the whole daemon, alive.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval_s):
                    await self._state_changed.wait()
            self._state_changed.clear()
            started = time.monotonic()
            waiting = self.save_gate.begin()
            try:
                await asyncio.to_thread(self.state_file.save, self._state())
            except OSError as exc:
                if not is_disk_full(exc):
                    self.save_gate.put_back(waiting)  # the restarted task saves for them
                    raise
                self.selfwatch.state_saved(self.pipeline, exc)
            else:
                self.selfwatch.state_saved(self.pipeline, None)
            # After a disk-full failure too: the state stays in memory, and a full disk must
            # not hold every alarm-raising reading unacknowledged.
            for saved in waiting:
                if not saved.done():
                    saved.set_result(None)
            # At most twice a second (back to back, saves took ~5 % of the CPU), crowds aside.
            await self.save_gate.due(min(interval_s, SPACING_S)
                                     - (time.monotonic() - started))

    def _start(self, keep: Supervisor) -> list[asyncio.Task[None]]:
        tasks = [keep.start("spool", self.spool.run), keep.start("mqtt", self.link.run)]
        tasks += [keep.start(p.source, p.run) for p in self.serial_ports]
        tasks += [keep.start(b.component, b.run) for b in [*self.modbus_buses, *self.readers]]
        tasks += [keep.start(w.name, w.run) for w in self.writers]
        tasks += [keep.start(f"notify {o.notifier.name}", o.run) for o in self.outboxes]
        tasks += [keep.start(f"resend {r.name}",
                             functools.partial(r.keep_alive, self.desk.open_alerts))
                  for r in self.resenders]
        tasks += [keep.start(f"modem {m.name}", m.run) for m in self.modems]
        tasks += [keep.start("tick", self._tick), keep.start("api", self._serve_api),
                  keep.start("gateway health", self.selfwatch.health.run)]
        tasks += [keep.start("home assistant", h.run) for h in self.home_assistant]
        if self.systemd.enabled:  # READY=1 once MQTT is up; WATCHDOG=1 while ticks run
            tasks.append(keep.start("systemd", functools.partial(
                supervise, self.systemd, self.link.connected,
                ready_timeout_s=self._startup_grace_s,
                healthy=stale_after(lambda: self._last_tick_s,
                                    max(20.0, 10 * self.ticking.interval_s), "rule tick"),
                interval_s=watchdog_interval_s())))
        return [*tasks, keep.start("state", self._save_state),
                keep.start("health", functools.partial(
                    self.selfwatch.report_storage, self.pipeline, self.spool, self.writers,
                    self.config.spool.health_interval_s)), keep.start("reload", self._reloads),
                keep.start("audit digest", AuditDigests(
                    self.config.state_dir, self.config.site.id,
                    functools.partial(self.link.publish, retain=True)).run),
                keep.start("heartbeat", build_pulse(self.config, self.link, self.spool,
                                                    self.desk, self.pipeline).run)]

    def _task_fault(self, fault: str, subject: str, active: bool, summary: str) -> None:
        self.pipeline.fault(fault, subject, active, summary, self.clock.now_ns())

    async def run(self, stop: asyncio.Event,
                  failed: Callable[[str, BaseException], None] | None = None) -> None:
        """Run until `stop` is set, then deliver what is queued and shut down.

        A task that raises is logged, alerted on and restarted with back-off (daemon/
        supervisor.py); `failed(task name, error)` hears of each failure.
        """
        await self.spool.open()
        if self.spool.damage is not None:
            self.pipeline.gateway_reading("spool", {"damaged": True}, self.clock.now_ns())
        for path, damage in ((self.state_file.path, self.state_file.damage),
                             (self.deadletters.path, self.deadletters.damage),
                             (self.audit.path, self.audit.damage), self.book.store.damaged):
            if damage is not None:  # what was lost, told to the officers, not only the log
                self.pipeline.fault("file_damaged", path.name, True, damage, self.clock.now_ns())
        async with asyncio.TaskGroup() as group:
            tasks = self._start(Supervisor(group, self._task_fault, failed))
            log.info("depotwatch running for site %s: %d subscriptions, %d writers",
                     self.config.site.id, len(self.config.mqtt.subscriptions), len(self.writers))
            await stop.wait()
            self.systemd.notify("STOPPING=1")
            log.info("stopping: delivering queued alerts and points")
            # Each step keeps what it can: a failing disk is logged, never a failed stop.
            await _each("delivering alerts", [o.drain(3.0) for o in self.outboxes])
            # Points are durable in the spool (this saves the next start work); the last
            # passages' steps are only in memory until the book has them.
            await _each("writing points and passages", [*(w.drain(2.0) for w in self.writers),
                                                         self.book.portal_steps.settled(2.0)])
            for task in tasks:
                task.cancel()
        # A drain reopens an HTTP session its writer's task had closed (that task in a restart's
        # back-off): left open, it outlived the loop (an unclosed-socket warning at exit).
        await _each("closing InfluxDB sessions", [w.sink.close() for w in self.writers])
        await self.spool.close()
        closes: list[tuple[str, Callable[[], object]]] = [
            ("engine state", functools.partial(self.state_file.save, self._state())),
            ("audit log", self.audit.close), ("book", self.book.store.close),
            ("dead letters", self.deadletters.close)]
        for what, close in closes:
            try:
                close()
            except (OSError, sqlite3.Error) as exc:
                log.error("%s not saved at shutdown: %s", what, exc)
        self.systemd.close()


async def _each(what: str, steps: Sequence[Awaitable[object]]) -> None:
    for failed in await asyncio.gather(*steps, return_exceptions=True):
        if isinstance(failed, Exception):
            log.error("stopping: %s failed: %s", what, failed)

