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
    # A commit gathers what arrives for up to this long after the previous one began (or until
    # `commit_messages` wait): the cost goes per reading, not per message (issue 29). Alarms
    # never wait for it (the rules run before the commit); only the PUBACK does. 0: commit at
    # once. With MQTT 3.1.1 the broker's in-flight limit (Mosquitto: 20) bounds what one
    # window can gather: set 0 there, or raise `max_inflight_messages`.
    commit_window_s: float = Field(default=0.25, ge=0, le=1.0)
    commit_messages: int = Field(default=500, gt=0, le=900)
