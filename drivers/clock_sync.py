"""Whether the gateway's clock is synchronised: chrony's own account (`chronyc -c tracking`),
or, without chrony, the kernel's synchronisation state (adjtimex(2), which systemd-timesyncd
and ntpd keep); where a sandbox refuses adjtimex (systemd's ProtectClock=yes filters it),
systemd-timedated's `NTPSynchronized`, which reads the same state for us."""

from __future__ import annotations

import asyncio
import ctypes
import shutil
from dataclasses import dataclass

from daemon.vocabulary.errors import DriverError

__all__ = ["ClockError", "ClockSync", "chrony_tracking", "kernel_sync", "parse_tracking",
           "read_chrony", "read_timedated"]


class ClockError(DriverError):
    """The clock's synchronisation state could not be read."""


@dataclass(frozen=True, slots=True)
class ClockSync:
    """The clock's state: synchronised or not, and its offset from true time when known."""

    source: str
    synchronised: bool
    # Positive: the gateway's clock is ahead. None: the source does not know it.
    offset_s: float | None = None
    stratum: float | None = None

    def values(self) -> dict[str, float | bool]:
        """Reading values (numbers are floats)."""
        out: dict[str, float | bool] = {"synchronised": self.synchronised}
        if self.offset_s is not None:
            out["offset_s"] = self.offset_s
        if self.stratum is not None:
            out["stratum"] = self.stratum
        return out


def parse_tracking(line: str) -> ClockSync:
    """`chronyc -c tracking`'s one CSV line: reference id, name, stratum, reference time,
    system time offset (s; positive: the clock is fast), last offset, RMS offset, frequency,
    residual frequency, skew, root delay, root dispersion, update interval, leap status."""
    fields = line.strip().split(",")
    if len(fields) < 14:
        raise ClockError(f"chronyc tracking: {len(fields)} fields, expected 14")
    try:
        stratum, system_s = int(fields[2]), float(fields[4])
    except ValueError as exc:
        raise ClockError(f"chronyc tracking: unreadable line {line[:80]!r}") from exc
    # chrony says "Not synchronised" in the leap field, and reference id 0 with stratum 0,
    # until a source is selected.
    synchronised = fields[13] != "Not synchronised" and fields[0] != "00000000"
    return ClockSync("chrony", synchronised, -system_s if synchronised else None,
                     float(stratum))


async def _run(timeout_s: float, command: str, *args: str) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    except OSError as exc:
        raise ClockError(f"{command} not runnable: {exc}") from exc
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError as exc:
        proc.kill()
        await proc.wait()
        raise ClockError(f"{command}: no answer in {timeout_s:g} s") from exc
    if proc.returncode != 0:
        text = err.decode(errors="replace").strip() or f"exit {proc.returncode}"
        raise ClockError(f"{command} {' '.join(args)}: {text[:200]}")
    return out.decode(errors="replace")


async def read_chrony(command: str = "chronyc", timeout_s: float = 5.0) -> ClockSync:
    """Ask chronyd through its own client; raises `ClockError`."""
    return parse_tracking(await _run(timeout_s, command, "-c", "-n", "tracking"))


async def read_timedated(timeout_s: float = 5.0) -> ClockSync:
    """Ask systemd-timedated (over D-Bus, through timedatectl); raises `ClockError`."""
    out = await _run(timeout_s, "timedatectl", "show", "--property=NTPSynchronized", "--value")
    if out.strip() not in ("yes", "no"):
        raise ClockError(f"timedatectl: unexpected answer {out.strip()[:40]!r}")
    return ClockSync("timedated", out.strip() == "yes")


def chrony_tracking(command: str = "chronyc") -> str | None:
    """The chronyc found on PATH (None: chrony is not installed)."""
    return shutil.which(command)


class _TimeVal(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex of <sys/timex.h> (Linux): read with modes 0, no privilege needed.
    _fields_ = [("modes", ctypes.c_uint), ("offset", ctypes.c_long), ("freq", ctypes.c_long),
                ("maxerror", ctypes.c_long), ("esterror", ctypes.c_long),
                ("status", ctypes.c_int), ("constant", ctypes.c_long),
                ("precision", ctypes.c_long), ("tolerance", ctypes.c_long),
                ("time", _TimeVal), ("tick", ctypes.c_long), ("ppsfreq", ctypes.c_long),
                ("jitter", ctypes.c_long), ("shift", ctypes.c_int), ("stabil", ctypes.c_long),
                ("jitcnt", ctypes.c_long), ("calcnt", ctypes.c_long),
                ("errcnt", ctypes.c_long), ("stbcnt", ctypes.c_long), ("tai", ctypes.c_int),
                ("padding", ctypes.c_int * 11)]


# adjtimex(2): TIME_ERROR, "clock not synchronized"; STA_UNSYNC in the status bits.
_TIME_ERROR = 5
_STA_UNSYNC = 0x0040


def kernel_sync() -> ClockSync:
    """The kernel's view: synchronised unless an NTP client has not (or no longer) set it so.
    The kernel does not know the offset: only chrony's answer carries one."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = _Timex()
        state = int(libc.adjtimex(ctypes.byref(timex)))
    except (OSError, AttributeError) as exc:
        raise ClockError(f"adjtimex unavailable: {exc}") from exc
    if state < 0:
        raise ClockError(f"adjtimex failed: errno {ctypes.get_errno()}")
    synchronised = state != _TIME_ERROR and not timex.status & _STA_UNSYNC
    return ClockSync("kernel", synchronised)
