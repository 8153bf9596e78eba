"""Settings of the MQTT driver: the broker, TLS, and the topics read with their decoders."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from daemon.vocabulary.settings import Identifier, Settings
from drivers.decoders.kinds import DecoderConfig

__all__ = ["MqttConfig", "SubscriptionConfig", "TlsConfig"]


class TlsConfig(Settings):
    """TLS to the broker; a client certificate for mutual TLS."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify: bool = True


class SubscriptionConfig(Settings):
    """A topic template (`zigbee2mqtt/{sensor}`) and the decoder for its payloads."""

    topic: str = Field(min_length=1)
    decoder: DecoderConfig
    max_payload_bytes: int = Field(default=65536, gt=0)
    # The sensor a topic without `{sensor}` is about (a device bound to a profile).
    sensor: str | None = None

    @field_validator("topic")
    @classmethod
    def _template(cls, value: str) -> str:
        if value.count("{sensor}") > 1:
            raise ValueError("at most one {sensor} placeholder")
        stripped = value.replace("{sensor}", "")
        if "{" in stripped or "}" in stripped:
            raise ValueError("the only placeholder is {sensor}")
        if "#" in value[:-1] or ("#" in value and not value.endswith("/#") and value != "#"):
            raise ValueError("'#' is only allowed as the last level")
        return value


class MqttConfig(Settings):
    """The broker connection, shared by sensor subscriptions and alert publishing."""

    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    client_id: Identifier = "depotwatch"
    username: str | None = None
    password: SecretStr | None = None
    tls: TlsConfig | None = None
    # MQTT 5 lets the PUBACK wait until the reading is taken; 3.1.1 only for old brokers.
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    subscriptions: list[SubscriptionConfig] = Field(default_factory=list)
    alerts_topic: str = "depotwatch/{site}/alerts"
    # Retained `online` while the daemon is connected; the broker puts a retained `offline`
    # there (the last will) when the daemon dies, and a clean stop publishes it itself.
    status_topic: str = "depotwatch/{site}/status"
