"""Settings of the officers' HTTP API: where it listens and which officers hold a token."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator

from daemon.alerts.roles import Role
from daemon.vocabulary.settings import Settings

__all__ = ["ApiConfig", "ConsoleConfig", "OfficerConfig"]


class OfficerConfig(Settings):
    """An officer of the alert API; only the SHA-256 of the token is kept
    (`depotwatch officers hash-token` prints it)."""

    name: str = Field(min_length=1, max_length=64)
    token_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    # viewer reads; operator also acknowledges, checks, silences and approves; administrator
    # also manages officers, tokens and settings. Operator keeps configs from before roles.
    role: Literal["viewer", "operator", "records", "administrator"] = "operator"


class ConsoleConfig(Settings):
    """The officers' web console: when its theme turns dark by itself."""

    # Dark from dusk to dawn at the site (`site.latitude`/`longitude`), else from `evening`
    # to `morning` depot time; false: the browser's light or dark preference alone decides.
    dark_at_night: bool = True
    evening: dt.time = dt.time(19, 0)
    morning: dt.time = dt.time(7, 0)


class ApiConfig(Settings):
    """The officers' HTTP API: alarms, acknowledgements, on-site checks, silences."""

    # Loopback by default: officers reach it on the gateway or through a tunnel.
    listen_host: str = Field(default="127.0.0.1", min_length=1)
    # 0 picks a free port (tests); the daemon logs where it listens.
    listen_port: int = Field(default=8470, ge=0, le=65535)
    officers: list[OfficerConfig] = Field(default_factory=list)
    # /metrics shows alarm states an intruder would like to read: an officer token (any role,
    # `Authorization: Bearer`) unless switched off for a scraper on a trusted network.
    metrics_token_required: bool = True
    # Connections held at once (within what the open-file limit leaves) and how long a silent
    # one stays: idle clients must not take the descriptors the spool and MQTT need.
    max_connections: int = Field(default=256, ge=1, le=100_000)
    # The first wait after 5 wrong tokens from one address (doubling with each further one, up
    # to 30 s): longer slows guessing more; a test sets it long so no browser is too slow.
    guess_backoff_s: float = Field(default=1.0, gt=0, le=30)
    idle_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)

    @field_validator("officers")
    @classmethod
    def _distinct(cls, officers: list[OfficerConfig]) -> list[OfficerConfig]:
        names = [o.name for o in officers]
        digests = [o.token_sha256.lower() for o in officers]
        for kind, values in (("name", names), ("token_sha256", digests)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                shown = twice if kind == "name" else [f"{d[:8]}..." for d in twice]
                raise ValueError(f"officer {kind} given twice: {', '.join(shown)}")
        return officers

    def tokens(self) -> dict[str, str]:
        """Token SHA-256 (lower-case hex) to officer name, as `build_api` takes it."""
        return {o.token_sha256.lower(): o.name for o in self.officers}

    def roles(self) -> dict[str, Role]:
        """Officer name to role, as `build_api` takes it."""
        return {o.name: Role(o.role) for o in self.officers}

    def url(self) -> str:
        """Where a client on this gateway reaches the API."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.listen_host, self.listen_host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.listen_port}"
