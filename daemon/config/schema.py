"""The whole gateway config, composed of the sections each stage, driver, rule and notifier owns."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from daemon.alerts.settings import AlertingConfig, AuditConfig, CommandsConfig
from daemon.config.depot import (
    ClimateSensorConfig,
    DetectorConfig,
    DoorConfig,
    InventoryReaderConfig,
    ItemConfig,
    MovementOrderConfig,
    PersonConfig,
    PortalConfig,
    SiteConfig,
    StorehouseConfig,
    WorkOrderConfig,
    build_depot,
    duress_apart,
)
from daemon.config.devices import BridgeBinding, DeviceBinding, device_subscriptions
from daemon.homeassistant.discovery import HomeAssistantConfig
from daemon.ingest.settings import DeadLetterConfig, PlausibilityConfig, ReplayConfig
from daemon.notifiers.kinds import NotifierList
from daemon.spool.settings import SpoolConfig
from daemon.tsdb.settings import FileOutputConfig, InfluxConfig
from daemon.vocabulary.settings import Settings
from daemon.web.settings import ApiConfig
from drivers.gateway_health import GatewayHealthConfig
from drivers.modbus import ModbusBusConfig
from drivers.mqtt_settings import MqttConfig
from drivers.reader_kinds import ReaderConfig
from drivers.serial import SerialPortConfig
from rules.depot import Depot
from rules.kinds import RuleConfig, rule_set

__all__ = ["Config"]


class Config(Settings):
    """The whole gateway configuration."""

    site: SiteConfig
    state_dir: Path = Path("/var/lib/depotwatch")
    storehouses: list[StorehouseConfig] = Field(min_length=1)
    doors: list[DoorConfig] = Field(default_factory=list)
    climate_sensors: list[ClimateSensorConfig] = Field(default_factory=list)
    portals: list[PortalConfig] = Field(default_factory=list)
    inventory_readers: list[InventoryReaderConfig] = Field(default_factory=list)
    # Motion, vibration, glass-break, smoke and panic inputs and keypads, each in a storehouse.
    detectors: list[DetectorConfig] = Field(default_factory=list)
    roster: list[PersonConfig] = Field(default_factory=list)
    # Key for the hash that stands in for unknown badge numbers in logs and InfluxDB.
    badge_salt: SecretStr | None = None
    items: list[ItemConfig] = Field(default_factory=list)
    movement_orders: list[MovementOrderConfig] = Field(default_factory=list)
    work_orders: list[WorkOrderConfig] = Field(default_factory=list)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    # Sensors read through the shipped device profiles, and the bridges they sit behind: their
    # topics join mqtt.subscriptions (before the config's own), README "Device profiles".
    devices: list[DeviceBinding] = Field(default_factory=list)
    bridges: list[BridgeBinding] = Field(default_factory=list)
    # Serial ports (line devices: I/O boards, badge readers, RFID readers) and Modbus RTU buses.
    serial: list[SerialPortConfig] = Field(default_factory=list)
    modbus: list[ModbusBusConfig] = Field(default_factory=list)
    # Readers and panels with a protocol of their own: LLRP, OSDP, SIA DC-09 (drivers/reader_kinds).
    readers: list[ReaderConfig] = Field(default_factory=list)
    influxdb: list[InfluxConfig] = Field(default_factory=list)
    file_output: FileOutputConfig | None = None
    # Webhook, Alertmanager and e-mail notifiers (MQTT and the log always run).
    notifiers: NotifierList = Field(default_factory=list)
    # Where officers reach this daemon's alert API; notifications link to {base_url}/alerts/KEY.
    base_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    # Overrides: every rule kind runs with its PSSM.md defaults unless listed here.
    rules: list[RuleConfig] = Field(default_factory=list)
    deadletters: DeadLetterConfig = Field(default_factory=DeadLetterConfig)
    # Values no working sensor reports: a sensor fault and a dead letter, never an alarm.
    plausibility: PlausibilityConfig = Field(default_factory=PlausibilityConfig)
    # A broker restored from an older store sends messages again: remembered this long.
    broker_replays: ReplayConfig = Field(default_factory=ReplayConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    # Home Assistant MQTT discovery of storehouses, doors, climate and alarm counts (off unless
    # this section is present).
    home_assistant: HomeAssistantConfig | None = None
    # The hash-chained audit log's rotation (state_dir/audit.jsonl, then audit.jsonl.<seq>).
    audit: AuditConfig = Field(default_factory=AuditConfig)
    # Officers' commands over MQTT: the replay window (timestamp and nonce).
    commands: CommandsConfig = Field(default_factory=CommandsConfig)
    # The officers' HTTP API (bearer token per officer).
    api: ApiConfig = Field(default_factory=ApiConfig)
    tick_interval_s: float = Field(default=1.0, gt=0, le=10)
    # The retained health summary on depotwatch/<site>/gateway/heartbeat that HQ supervises.
    heartbeat_s: float = Field(default=30.0, gt=0)
    # The gateway's own UPS, clock, disk and CPU temperature, judged by the gateway_health rule.
    health: GatewayHealthConfig = Field(default_factory=GatewayHealthConfig)
    # How often engine state (open doors, sustain timers, firing alerts) goes to disk.
    state_save_interval_s: float = Field(default=5.0, gt=0)

    _duress_apart = field_validator("roster")(duress_apart)

    @model_validator(mode="after")
    def _device_topics(self) -> Config:
        # Bindings' sensors and bridges are checked with the other cross-references (with
        # their lines): daemon/config/references.py.
        if self.devices or self.bridges:
            # A validator's one way to complete a frozen model: the bindings' subscriptions
            # are part of the MQTT settings every reader of the config sees.
            brought = device_subscriptions(self.devices, self.bridges)
            # A config validated again from its own dump has them already.
            subscriptions = [*brought, *(s for s in self.mqtt.subscriptions if s not in brought)]
            object.__setattr__(self, "mqtt", self.mqtt.model_copy(
                update={"subscriptions": subscriptions}))
        return self

    def rule_set(self) -> list[RuleConfig]:
        """Every enabled rule kind with its settings."""
        return rule_set(self.rules)

    def depot(self) -> Depot:
        """The depot model the rules work on."""
        return build_depot(self)
