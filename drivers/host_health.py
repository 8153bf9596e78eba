"""The gateway machine itself: free space on the disk of the state dir, CPU temperature from the
kernel's thermal zones (/sys/class/thermal; absent on most virtual machines)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from daemon.vocabulary.errors import DriverError

__all__ = ["DiskFree", "HostError", "cpu_temperature", "disk_free", "thermal_zones"]

# Zone types that are the CPU or the SoC (x86 package sensor, ARM boards' SoC sensors).
_CPU_ZONES = ("x86_pkg_temp", "cpu", "soc", "coretemp", "k10temp")


class HostError(DriverError):
    """A health figure of the machine could not be read."""


@dataclass(frozen=True, slots=True)
class DiskFree:
    """Free space where the gateway keeps its state (spool, audit log, engine state)."""

    free_bytes: int
    total_bytes: int

    def values(self) -> dict[str, float | bool]:
        """Reading values (numbers are floats)."""
        return {"free_pct": round(100.0 * self.free_bytes / max(self.total_bytes, 1), 2),
                "free_bytes": float(self.free_bytes)}


def disk_free(path: Path) -> DiskFree:
    """Space left to an unprivileged writer (the daemon's user) on `path`'s filesystem."""
    try:
        stat = os.statvfs(path)
    except OSError as exc:
        raise HostError(f"disk of {path}: {exc}") from exc
    return DiskFree(stat.f_bavail * stat.f_frsize, stat.f_blocks * stat.f_frsize)


def thermal_zones(root: Path) -> list[Path]:
    """The zones whose type names the CPU or SoC; every zone when none does."""
    zones = sorted(root.glob("thermal_zone*")) if root.is_dir() else []
    def kind(zone: Path) -> str:
        try:
            return (zone / "type").read_text().strip().lower()
        except OSError:
            return ""
    cpu = [z for z in zones if any(name in kind(z) for name in _CPU_ZONES)]
    return cpu or zones


def cpu_temperature(zones: list[Path]) -> float | None:
    """The hottest zone in °C (sysfs gives millidegrees); None when no zone reads."""
    temps: list[float] = []
    for zone in zones:
        try:
            temps.append(int((zone / "temp").read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue  # a zone whose sensor is off answers EINVAL or ENODATA
    return max(temps) if temps else None
