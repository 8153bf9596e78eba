"""Settings of the time-series outputs: InfluxDB write targets and the local line-protocol file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from daemon.vocabulary.settings import Settings

__all__ = ["FileOutputConfig", "InfluxConfig"]


class InfluxConfig(Settings):
    """One InfluxDB write target: `v1` POSTs to /write, `v2` POSTs to /api/v2/write."""

    api: Literal["v1", "v2"]
    url: str = Field(pattern=r"^https?://")
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    bucket: str | None = None
    org: str = ""
    token: SecretStr | None = None
    batch_size: int = Field(default=5000, gt=0)
    flush_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    # Content-Encoding of each batch: gzip (level 1) makes a 5,000-point batch ~10x smaller for
    # ~0.5 µs of CPU per point; InfluxDB 1.x/2.x/3.x and VictoriaMetrics all accept it.
    compression: Literal["gzip", "none"] = "gzip"

    @model_validator(mode="after")
    def _target(self) -> InfluxConfig:
        if self.api == "v1" and not self.database:
            raise ValueError("api v1 needs 'database'")
        if self.api == "v2" and not self.bucket:
            raise ValueError("api v2 needs 'bucket'")
        return self


class FileOutputConfig(Settings):
    """Line protocol appended to a local file (the demo's output, or a debugging tap)."""

    path: Path
