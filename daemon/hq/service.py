"""`depotwatch hq`: HQ's daemon. It reads every supervised depot's heartbeat, bridge state and
last will on HQ's broker and tells HQ's notifiers when a depot goes dark and when it is back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from daemon.alerts.audit import AuditLog
from daemon.alerts.officers import Officers
from daemon.hq.console import HqConsole
from daemon.hq.depots import AlarmBook, alert_from_message
from daemon.hq.heartbeat import Heartbeat
from daemon.hq.relay import CommandRelay
from daemon.hq.settings import HqConfig
from daemon.hq.supervision import Supervision
from daemon.hq.topics import DepotTopics, Kind
from daemon.notifiers.base import Notifier, Outbox
from daemon.notifiers.common import Site
from daemon.notifiers.console import LogNotifier
from daemon.notifiers.kinds import build_notifiers
from daemon.sdnotify import SystemdNotifier, stale_after, supervise, watchdog_interval_s
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.clock import Clock, SteadyClock
from daemon.vocabulary.errors import DepotwatchError
from daemon.vocabulary.readings import RawMessage, Severity, TransitionKind
from daemon.web.api import serve
from drivers.mqtt import MqttLink

__all__ = ["Headquarters"]

log = logging.getLogger(__name__)

class Headquarters:
    """Supervises every configured depot over HQ's broker; alerts go to HQ's notifiers."""

    def __init__(self, config: HqConfig, *, clock: Clock | None = None,
                 notifiers: Sequence[Notifier] = ()) -> None:
        self.config = config
        self.clock = clock or SteadyClock()
        wall = getattr(self.clock, "wall_offset_ns", None)
        self.supervision = Supervision(
            ((d.site, d.name or d.site) for d in config.depots),
            unreachable_after_s=config.unreachable_after_s, down_grace_s=config.down_grace_s,
            started_ns=self.clock.now_ns(), wall_offset_ns=wall() if wall is not None else 0,
            settle_s=config.settle_s)
        site = Site(id="hq", name=config.name)
        built = build_notifiers(config.notifiers, site)
        self.outboxes = [Outbox(LogNotifier()), *(Outbox(n) for n in [*built, *notifiers])]
        self.link = MqttLink(config.mqtt, self.clock)
        self.link.on_state(self._link_state)
        self.book = AlarmBook([d.site for d in config.depots], late_after_s=config.late_after_s,
                              started_wall_ns=time.time_ns())
        self.relay = CommandRelay(self.link, {d.site: d.command_token for d in config.depots},
                                  config.command_timeout_s)
        self.audit = AuditLog(config.state_dir / "hq-audit.jsonl")
        self.console = HqConsole(
            self.supervision, self.book, self.relay,
            Officers(config.api.tokens(), config.api.roles()), self.audit,
            can_ack=frozenset(d.site for d in config.depots if d.command_token is not None),
            wall_ns=time.time_ns)
        self.api_url: str | None = None
        # Five wildcard filters whatever the number of depots; topics of depots not
        # supervised here are ignored.
        self.topics = DepotTopics(d.site for d in config.depots)
        for topic_filter in self.topics.filters():
            self.link.subscribe(topic_filter)
        self.link.on_message(self._message)
        self._blind_since_ns: int | None = None
        self._last_tick_s = time.monotonic()  # the watchdog's sign that supervision runs
        self.systemd = SystemdNotifier.from_environment()

    def _message(self, raw: RawMessage) -> None:
        topic = self.topics.match(raw.source)
        if topic is None:
            return
        body, site = raw.payload, topic.site
        if topic.kind is Kind.HEARTBEAT:
            self._heartbeat(site, body)
        elif topic.kind is Kind.BRIDGE:
            self._bridge(site, body)
        elif topic.kind is Kind.STATUS:
            self._status(site, body)
        elif topic.kind is Kind.REPLY:
            self.relay.reply(site, body)
        else:
            self._alert_message(site, topic.key, raw)

    def _alert_message(self, site: str, key: str, raw: RawMessage) -> None:
        if not raw.payload:  # a retained alert emptied at the depot
            self.book.forget(site, key)
            return
        try:
            alert = alert_from_message(raw.payload)
        except ValueError as exc:
            log.warning("depot %s: unreadable alert on %s (%s)", site, raw.source, exc)
            return
        if self.book.take(site, alert, time.time_ns()):
            self.supervision.late_alarm(site)
            log.warning("depot %s: alarm %s (%s) reached HQ %.0f s late", site, alert.key,
                        alert.state.value, (time.time_ns() - alert.changed_ns) / 1e9)

    def _tell(self, changes: Sequence[Alert]) -> None:
        for change in changes:
            for outbox in self.outboxes:
                outbox.put(change)

    def _heartbeat(self, site: str, body: bytes) -> None:
        try:
            beat: Heartbeat | None = Heartbeat.from_json(body)
        except ValueError as exc:
            # Still a sign of life: the depot's gateway published something on its subtree.
            log.warning("depot %s: unreadable heartbeat (%s)", site, exc)
            beat = None
        self._tell(self.supervision.heard(site, beat, self.clock.now_ns()))

    def _bridge(self, site: str, body: bytes) -> None:
        self._tell(self.supervision.bridge(site, body.strip() != b"0", self.clock.now_ns()))

    def _status(self, site: str, body: bytes) -> None:
        self._tell(self.supervision.status(site, body.strip() != b"offline",
                                           self.clock.now_ns()))

    def _link_state(self, up: bool) -> None:
        # HQ's own broker gone is one alert about HQ, not "every depot unreachable" after it.
        now = self.clock.now_ns()
        if up == (self._blind_since_ns is None):
            return
        since = self._blind_since_ns or now
        if up:
            blind_s = (now - since) / 1e9
            self._blind_since_ns = None
            for depot in self.supervision.depots.values():
                depot.last_heard_ns = max(depot.last_heard_ns, now)
        else:
            self._blind_since_ns = now
        offset = self.supervision.wall_offset_ns
        self._tell([Alert(
            key="input_lost.hq-mqtt", rule="input_lost", subject="mqtt", severity=Severity.ALARM,
            state=TransitionKind.RESOLVED if up else TransitionKind.FIRING,
            summary=(f"HQ's broker back after {blind_s:.0f} s" if up else
                     "HQ lost its broker: no depot can be supervised"),
            storehouse="", started_ns=since + offset,
            changed_ns=now + offset, facts={"input": "mqtt"})])

    async def _ticks(self) -> None:
        while True:
            self._last_tick_s = time.monotonic()
            if self._blind_since_ns is None:
                self._tell(self.supervision.tick(self.clock.now_ns()))
            await asyncio.sleep(self.config.tick_interval_s)

    async def _serve(self) -> None:
        api = self.config.api
        try:
            async with serve(self.console.app(), api.listen_host, api.listen_port,
                             max_connections=api.max_connections,
                             idle_s=api.idle_timeout_s) as at:
                self.api_url = at.url
                log.info("HQ console and API on %s", at.url)
                await asyncio.Event().wait()
        except DepotwatchError as exc:
            # The console is HQ's window, the supervision its duty: a busy port stops only
            # the window.
            log.error("HQ console not served: %s; supervision goes on", exc)
            await asyncio.Event().wait()

    async def run(self, stop: asyncio.Event) -> None:
        """Supervise until `stop` is set, then deliver what is queued."""
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.link.run()), group.create_task(self._ticks()),
                     group.create_task(self._serve()),
                     *(group.create_task(o.run()) for o in self.outboxes)]
            if self.systemd.enabled:  # READY=1 once HQ's broker is up; WATCHDOG=1 while ticking
                tasks.append(group.create_task(supervise(
                    self.systemd, self.link.connected, ready_timeout_s=10.0,
                    healthy=stale_after(lambda: self._last_tick_s,
                                        max(20.0, 10 * self.config.tick_interval_s),
                                        "supervision tick"),
                    interval_s=watchdog_interval_s())))
            log.info("depotwatch hq supervising %d depot(s): unreachable after %.0f s",
                     len(self.config.depots), self.config.unreachable_after_s)
            await stop.wait()
            self.systemd.notify("STOPPING=1")
            await asyncio.gather(*(o.drain(3.0) for o in self.outboxes))
            for task in tasks:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.link.close()
        self.audit.close()
        self.systemd.close()
