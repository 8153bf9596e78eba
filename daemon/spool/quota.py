"""How much the spool may hold: the configured quota, or less when the disk is shorter."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["DiskQuota", "is_disk_full"]

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
