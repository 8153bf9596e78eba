"""How much the spool may hold: the configured quota, or less when the disk is shorter."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DiskQuota", "FillGauge", "is_disk_full"]

# The reserve left free on the spool's filesystem when `spool.disk_reserve_bytes` is not set:
# 5 % of the filesystem, at most 500 MiB (the state file, the audit trail and SQLite's own
# journal writes need room after the spool has stopped growing).
_RESERVE_SHARE = 0.05
_RESERVE_MAX = 500 << 20


class DiskQuota:
    """The effective quota: the smaller of `max_bytes` and what the disk can still give
    (the spool's own size plus the free space, less the reserve)."""

    def __init__(self, directory: Path, max_bytes: int, reserve_bytes: int | None) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.reserve_bytes = reserve_bytes

    def effective(self, used_bytes: int) -> int:
        """Bytes the spool may hold now, given that it holds `used_bytes`."""
        try:
            disk = os.statvfs(self.directory)
        except OSError:  # the directory vanished or is unreadable: only the configured quota
            return self.max_bytes
        reserve = self.reserve_bytes
        if reserve is None:
            reserve = min(_RESERVE_MAX, int(disk.f_blocks * disk.f_frsize * _RESERVE_SHARE))
        room = used_bytes + disk.f_bavail * disk.f_frsize - reserve
        return max(0, min(self.max_bytes, room))


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error is the disk (or its quota) refusing a write: a fault, never an exit."""
    if isinstance(exc, OSError):
        return exc.errno in (28, 122)  # ENOSPC, EDQUOT
    text = str(exc).lower()
    # SQLite says SQLITE_FULL as "database or disk is full"; a failed write of its journal as
    # "disk I/O error".
    return "full" in text or "disk i/o error" in text


class FillGauge:
    """How full the spool is, in % of its effective quota, without asking SQLite and the disk
    at every commit.

    `measure` takes the exact figure (page counts, and the disk's free space through
    `DiskQuota.effective`); between measurements each commit adds what it wrote to the last
    figure. Deletions are not subtracted, so the estimate only errs high, and the next
    measurement corrects it: at most `every_s` later, or at the next commit once the estimate
    nears the limit (a commit's exact figure cost more than its points at depot rates, issue 29).
    """

    def __init__(self, quota: DiskQuota, every_s: float = 1.0, near_pct: float = 75.0) -> None:
        self._quota = quota
        self._every_s = every_s
        self._near_pct = near_pct
        self._used = 0
        self._limit = 0
        self._measured_at = -every_s
        self.pct = 0.0

    def due(self, now_s: float) -> bool:
        """Whether the next figure should be measured rather than estimated."""
        return now_s - self._measured_at >= self._every_s or self.pct >= self._near_pct

    def measured(self, used_bytes: int, limit_bytes: int | None, now_s: float) -> float:
        """The exact figure: `used_bytes` of `limit_bytes` (None: the disk quota decides)."""
        self._used = used_bytes
        self._limit = self._quota.effective(used_bytes) if limit_bytes is None else limit_bytes
        self._measured_at = now_s
        return self._set()

    def grew(self, added_bytes: int) -> float:
        """A commit added about `added_bytes`."""
        self._used += added_bytes
        return self._set()

    def _set(self) -> float:
        self.pct = float(100.0 * self._used / self._limit) if self._limit > 0 else 100.0
        return self.pct
