"""Settings of ingest: how many malformed payloads are kept, how large, how often logged."""

from __future__ import annotations

from pydantic import Field

from daemon.vocabulary.settings import Settings

__all__ = ["DeadLetterConfig"]


class DeadLetterConfig(Settings):
    """Where malformed payloads are kept for inspection."""

    max_entries: int = Field(default=10_000, gt=0)
    max_payload_bytes: int = Field(default=1 << 20, gt=0)
    log_interval_s: float = Field(default=60.0, ge=0)
