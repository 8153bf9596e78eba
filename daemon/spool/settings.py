"""Settings of the spool: its disk quota, how often it reports, and whether commits are fsynced."""

from __future__ import annotations

from pydantic import Field

from daemon.vocabulary.settings import Settings

__all__ = ["SpoolConfig"]


class SpoolConfig(Settings):
    """The on-disk spool every point passes through before InfluxDB."""

    # Disk quota. The effective quota is the smaller of this and the spool's size plus the
    # free space on its filesystem less `disk_reserve_bytes`; when it is reached, climate and
    # health points are shed, oldest first (README "Nothing lost"), and readings are still
    # acknowledged.
    max_bytes: int = Field(default=1 << 30, ge=1 << 20)
    # Left free on the filesystem; default 5 % of it, at most 500 MiB.
    disk_reserve_bytes: int | None = Field(default=None, ge=0)
    # How often spool backlog, lag and fill are written as `gateway` points.
    health_interval_s: float = Field(default=5.0, gt=0)
    # false: commits are not fsynced (SQLite synchronous=NORMAL). A killed daemon loses
    # nothing, but a power cut can lose the last commits, already acknowledged to the broker.
    fsync: bool = True
