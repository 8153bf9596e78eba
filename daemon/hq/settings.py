"""The HQ config kind (`depotwatch hq -c hq.yaml`): the depots HQ supervises, its broker, its
notifiers and the limits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from daemon.notifiers.kinds import NotifierList
from daemon.vocabulary.settings import Identifier, Settings
from daemon.web.settings import ApiConfig
from drivers.mqtt_settings import MqttConfig

__all__ = ["HqConfig", "SupervisedDepot"]


class SupervisedDepot(Settings):
    """One depot HQ supervises, by its gateway's site id."""

    site: Identifier
    name: str | None = None
    # The officer token this depot's gateway knows HQ by (an officer in its `api.officers`,
    # role operator): acknowledging at HQ sends it with the command. None: HQ only watches.
    command_token: SecretStr | None = None

    @field_validator("command_token")
    @classmethod
    def _empty_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        # `${VAR:-}` left empty: no token, rather than an empty one every depot refuses.
        return value if value is not None and value.get_secret_value() else None


class HqConfig(Settings):
    """HQ's whole configuration."""

    # The name HQ's notifications speak for.
    name: str = "HQ"
    depots: list[SupervisedDepot] = Field(min_length=1)
    # HQ's broker, where every depot's bridge delivers its subtree (no sensor subscriptions).
    mqtt: MqttConfig = Field(default_factory=lambda: MqttConfig(client_id="depotwatch-hq"))
    # Webhook, Alertmanager and e-mail notifiers; the log always hears too.
    notifiers: NotifierList = Field(default_factory=list)
    # A depot not heard (heartbeat) for this long is unreachable: the PSSM notes' 180 s, and
    # EN 50136's "a lost path reported within minutes".
    unreachable_after_s: float = Field(default=180.0, gt=0)
    # A bridge reported down (HQ's broker publishes the bridge's will) or a gateway daemon
    # offline (its last will) for this long is unreachable too: a bridge reconnects within
    # its restart_timeout (5 s), so a blip pages nobody.
    down_grace_s: float = Field(default=30.0, ge=0)
    tick_interval_s: float = Field(default=1.0, gt=0, le=10)
    # A depot heard again is cleared this long after: its bridge's queue from the outage
    # follows the bridge's "1", and the clearing counts the alarms in it that came late.
    settle_s: float = Field(default=3.0, ge=0, le=60)
    # An alarm change that reaches HQ this long after the depot made it arrived late (its
    # uplink was down): counted per depot and told when the depot is reachable again.
    late_after_s: float = Field(default=60.0, gt=0)
    # HQ's audit trail (acknowledgements made at HQ).
    state_dir: Path = Path("/var/lib/depotwatch-hq")
    # HQ's page and API: its officers (token SHA-256 and role), where it listens.
    api: ApiConfig = Field(default_factory=lambda: ApiConfig(listen_port=8480))
    # How long an acknowledgement from HQ waits for the depot's reply.
    command_timeout_s: float = Field(default=10.0, gt=0, le=120)

    @field_validator("mqtt")
    @classmethod
    def _no_sensors(cls, value: MqttConfig) -> MqttConfig:
        if value.subscriptions:
            raise ValueError("HQ reads no sensors: leave mqtt.subscriptions out")
        return value

    @field_validator("depots")
    @classmethod
    def _distinct_sites(cls, value: list[SupervisedDepot]) -> list[SupervisedDepot]:
        sites = [d.site for d in value]
        twice = sorted({s for s in sites if sites.count(s) > 1})
        if twice:
            raise ValueError(f"depot site(s) listed twice: {', '.join(twice)}")
        return value
