"""Parts of the daemon built from the config, for the runner to start and stop."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from aiohttp import web

from daemon.alerts.alarm import LifecycleError
from daemon.alerts.arming import ArmingDesk
from daemon.alerts.book import AlertBook
from daemon.alerts.commands import CommandDesk
from daemon.alerts.desk import AlarmDesk, Audit
from daemon.alerts.escalation import ALWAYS, routed
from daemon.alerts.officers import Officers
from daemon.book.desk import RecordsDesk
from daemon.config.schema import Config
from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.pipeline import Pipeline, PointStore, WakeUp
from daemon.notifiers.base import Notifier, Outbox
from daemon.notifiers.common import Site, StorehouseInfo
from daemon.notifiers.console import LogNotifier
from daemon.notifiers.kinds import build_notifiers as build_configured
from daemon.notifiers.mqtt import MqttAlertNotifier
from daemon.spool.store import Spool
from daemon.tsdb.writer import FileSink, Sink, TsdbWriter, build_sink
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.clock import Clock
from daemon.vocabulary.readings import RawMessage, Reading, Severity
from daemon.web.api import build_api
from daemon.web.api_notifiers import NotifierFiguresSource
from daemon.web.dusk import DarkHours
from daemon.web.glance import Gateway, GatewayGlance
from daemon.web.recent import RecentEvents
from daemon.web.throttle import GuessThrottle
from drivers.modbus import ModbusBus
from drivers.mqtt import MqttLink
from drivers.mqtt_topics import TopicRoute, TopicRouter
from drivers.readers import ReaderDriver, ReaderLinks
from drivers.routes import Routers
from drivers.serial import SerialPort, SerialRouter
from rules.climate import ClimateRuleConfig
from rules.depot import Depot
from rules.engine import Engine

__all__ = [
    "TsdbTarget",
    "alerts_topic",
    "build_command_desk",
    "build_desk",
    "build_inputs",
    "build_modbus_buses",
    "build_notifiers",
    "build_officers",
    "build_outboxes",
    "build_pipeline",
    "build_serial_ports",
    "build_spool",
    "build_web_app",
    "build_writers",
    "commands_topic",
    "rule_severities",
    "site_of",
    "tsdb_targets",
]


def site_of(config: Config) -> Site:
    """The site as notifiers present it."""
    return Site(
        id=config.site.id, name=config.site.name or config.site.id, base_url=config.base_url,
        storehouses={s.id: StorehouseInfo(s.name or s.id, ZoneInfo(s.timezone))
                     for s in config.storehouses},
    )


# -- points: spool and writers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TsdbTarget:
    """One place points are written to, with its own cursor in the spool."""

    name: str
    sink: Sink
    batch_size: int
    flush_interval_s: float


def tsdb_targets(config: Config) -> list[TsdbTarget]:
    """The InfluxDB targets and the file output, in config order."""
    # Named by position and API, never by URL: a URL may carry credentials.
    targets = [TsdbTarget(f"influxdb-{i}-{t.api}", build_sink(t), t.batch_size,
                          t.flush_interval_s) for i, t in enumerate(config.influxdb)]
    if config.file_output is not None:
        targets.append(TsdbTarget("file", FileSink(config.file_output.path), 5000, 0.5))
    return targets


def build_spool(config: Config, targets: Sequence[TsdbTarget]) -> Spool:
    """The durable queue of points, one cursor per target."""
    return Spool(config.state_dir / "spool.sqlite", [t.name for t in targets],
                 max_bytes=config.spool.max_bytes, fsync=config.spool.fsync,
                 reserve_bytes=config.spool.disk_reserve_bytes,
                 commit_window_s=config.spool.commit_window_s,
                 commit_messages=config.spool.commit_messages)


def build_writers(targets: Sequence[TsdbTarget], spool: Spool) -> list[TsdbWriter]:
    """One writer per target, draining its cursor of the spool."""
    return [TsdbWriter(t.name, t.sink, spool, batch_size=t.batch_size,
                       flush_interval_s=t.flush_interval_s) for t in targets]


# -- alarms: notifiers, outboxes, desk, commands -----------------------------------------------


def alerts_topic(config: Config) -> str:
    """The MQTT topic alarms are published under, with the site filled in."""
    return config.mqtt.alerts_topic.replace("{site}", config.site.id)


def commands_topic(config: Config) -> str:
    """The MQTT topic officers' commands arrive on, next to the alerts."""
    return f"{alerts_topic(config).rsplit('/', 1)[0]}/commands"


def build_notifiers(config: Config) -> list[Notifier]:
    """The configured notifiers, in config order (MQTT and log come with `build_outboxes`)."""
    return build_configured(config.notifiers, site_of(config))


def build_outboxes(config: Config, link: MqttLink,
                   notifiers: Iterable[Notifier]) -> list[Outbox]:
    """An outbox per notifier: MQTT and the log first, then `notifiers` in their order."""
    return [
        Outbox(MqttAlertNotifier(link, alerts_topic(config), config.site.id)),
        Outbox(LogNotifier()),
        *(Outbox(n) for n in notifiers),
    ]


def build_desk(config: Config, outboxes: Sequence[Outbox],
               listeners: Sequence[Callable[[Alert], None]], audit: Audit,
               watchers: Iterable[str] = ()) -> AlarmDesk:
    """The alarm desk; its notices go to the outboxes their escalation step names.

    MQTT, the log, the `listeners` and the notifiers named in `watchers` hear of every notice.
    Silences are judged by the rules' configured severities; officer tokens never reach what
    the desk keeps.
    """
    return AlarmDesk(config.alerting, routed(
        [*((o.notifier.name, o.put) for o in outboxes), *(("*", put) for put in listeners)],
        always=ALWAYS | {"*", *watchers}), audit, rule_severities=rule_severities(config),
        redact=token_redactor(config))


def rule_severities(config: Config) -> dict[str, Severity]:
    """Each rule name's most severe alarm as configured: what silencing it takes."""
    return {name: severity for rule in config.rule_set()
            for name, severity in rule.alarm_severities().items()}


def officer_tokens(config: Config) -> dict[str, str]:
    """Officer names by the SHA-256 (hex, lower case) of their tokens."""
    return {o.token_sha256.lower(): o.name for o in config.api.officers}


def build_officers(config: Config) -> Officers:
    """Who holds which token and role; shared by the API, the console and the command desk."""
    return Officers(officer_tokens(config), config.api.roles())


def token_redactor(config: Config) -> Callable[[str], str]:
    """Takes every officer token out of a text (notes and reasons the desk keeps)."""
    return Officers(officer_tokens(config)).redact


def build_command_desk(config: Config, desk: AlarmDesk, clock: Clock,
                       publish: Callable[[str, bytes], None],
                       reject: Callable[[str, str, bytes, int], None],
                       officers: Officers | None = None,
                       arming: ArmingDesk | None = None) -> CommandDesk:
    """Officers' actions over MQTT; replies are published on `<commands topic>/replies`."""
    topic = commands_topic(config)
    known = officers if officers is not None else build_officers(config)
    return CommandDesk(desk, known, clock,
                       functools.partial(publish, f"{topic}/replies"), reject=reject,
                       source=topic, max_age_s=config.commands.max_age_s, arming=arming)


def build_web_app(config: Config, desk: AlarmDesk, clock: Clock, recent: RecentEvents,
                  audit_path: Path, *, ready: Callable[[], Awaitable[list[str]]],
                  metrics: Callable[[], Awaitable[bytes]],
                  officers: Officers | None = None,
                  notifiers: NotifierFiguresSource | None = None,
                  arming: ArmingDesk | None = None,
                  gateway: Gateway | None = None,
                  records: RecordsDesk | None = None) -> web.Application:
    """The officers' API and console, with /readyz and /metrics; the console's depot page
    shows the `gateway`'s links and dead letters; `records` serves the book."""
    known = officers if officers is not None else officer_tokens(config)
    climate = next((r for r in config.rule_set() if isinstance(r, ClimateRuleConfig)), None)
    console, site = config.api.console, config.site
    zone = next(iter(recent.zones().values()), ZoneInfo("UTC"))
    return build_api(desk, known, clock, ready=ready, metrics=metrics, notifiers=notifiers,
                     console=True, recent=recent, audit_path=audit_path,
                     sessions_path=config.state_dir / "console-sessions.json",
                     roles=config.api.roles(),
                     metrics_token_required=config.api.metrics_token_required,
                     arming=arming,
                     storehouses=lambda: [s for s, _ in recent.storehouses()],
                     gateway=GatewayGlance(gateway, climate) if gateway is not None else None,
                     dark=DarkHours(zone, site.latitude, site.longitude, console.evening,
                                    console.morning) if console.dark_at_night else None,
                     records=records,
                     throttle=GuessThrottle(base_s=config.api.guess_backoff_s))


# -- readings: pipeline and gateway inputs -----------------------------------------------------


def build_pipeline(config: Config, depot: Depot, deadletters: DeadLetterStore,
                   store: PointStore, receipts: Mapping[bytes, int],
                   notify: Sequence[Callable[[Alert], None]],
                   listeners: Iterable[Callable[[Reading], None]] = (),
                   wake: WakeUp | None = None) -> Pipeline:
    """Routes, decoders and the rules between the inputs and `store` (the spool); `listeners`
    hear of every reading."""
    pipeline = Pipeline(
        depot=depot,
        router=Routers([
            TopicRouter([TopicRoute.from_config(s) for s in config.mqtt.subscriptions]),
            SerialRouter(config.serial),
        ]),
        engine=Engine([(rule.type, rule.build(depot)) for rule in config.rule_set()], depot),
        alerts=AlertBook(), deadletters=deadletters,
        store=store,
        notify=notify,
        receipts=receipts,
        plausible=config.plausibility.ranges(),
        plausible_per_sensor=config.plausibility.sensor_ranges(),
        max_clock_skew_s=config.plausibility.device_clock_skew_s,
        wake=wake,
        replays=config.broker_replays.window(),
    )
    pipeline.listeners.extend(listeners)
    return pipeline


def build_serial_ports(config: Config, clock: Clock,
                       on_message: Callable[[RawMessage], Awaitable[None]],
                       on_state: Callable[[str, bool], None],
                       on_reject: Callable[[str, str, bytes, int], None]) -> list[SerialPort]:
    """The configured serial ports; `on_state` hears of each by its source name."""
    ports = [SerialPort(p, clock) for p in config.serial]
    for port in ports:
        port.on_message(on_message)
        port.on_state(functools.partial(on_state, port.source))
        port.on_reject(on_reject)
    return ports


def build_modbus_buses(config: Config, clock: Clock,
                       on_reading: Callable[[str, Reading], Awaitable[None]],
                       on_state: Callable[[str, bool], None]) -> list[ModbusBus]:
    """The configured Modbus buses; callbacks hear of each by its component name."""
    buses = [ModbusBus(b, clock) for b in config.modbus]
    for bus in buses:
        bus.on_reading(functools.partial(on_reading, bus.component))
        bus.on_state(functools.partial(on_state, bus.component))
    return buses


def build_inputs(config: Config, clock: Clock, arming: ArmingDesk, links: tuple[
    Callable[[str, Reading], Awaitable[None]], Callable[[str, bool], None],
    Callable[[str, str, bytes, int], None], Callable[[str, str, bool, str], None],
]) -> tuple[list[ModbusBus], list[ReaderDriver]]:
    """The Modbus buses and the reader and panel drivers (LLRP, OSDP, SIA) the config names;
    `links`: readings, input up/down, dead letters and device faults (see `ReaderLinks`)."""
    to = ReaderLinks(*links, arm=functools.partial(panel_arming, arming))
    return (build_modbus_buses(config, clock, to.reading, to.state),
            [reader.build(clock, to) for reader in config.readers])


def panel_arming(arming: ArmingDesk, storehouse: str, action: str, by: str) -> str | None:
    """An alarm panel set or unset an area: its storehouse's zone follows, forced (the panel
    has already armed; refusing would only make the two disagree); None, or why not."""
    try:
        arming.request(storehouse, action, by, "panel", force=True)
    except LifecycleError as exc:
        return str(exc)
    return None
