"""The gateway's own health as readings: UPS (NUT), clock synchronisation, disk free of the
state dir, CPU temperature; each on by default where its source exists on this machine.

Every `interval_s` it reports `ups`, `clock`, `disk` and `cpu` readings (gateway components,
as the spool's health); a source that stops answering is a gateway fault (`ups_unreachable`,
`clock_unreadable`), cleared when it answers again. Its limits are the `gateway_health` rule's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Literal, NoReturn

from pydantic import Field

from daemon.vocabulary.errors import DriverError
from daemon.vocabulary.settings import Settings
from drivers.clock_sync import (
    ClockError,
    ClockSync,
    chrony_tracking,
    kernel_sync,
    read_chrony,
    read_timedated,
)
from drivers.host_health import cpu_temperature, disk_free, thermal_zones
from drivers.nut import UpsConfig, read_ups

__all__ = ["NOT_AVAILABLE", "GatewayHealth", "GatewayHealthConfig"]

log = logging.getLogger(__name__)

NOT_AVAILABLE = "not available"
Report = Callable[[str, Mapping[str, float | bool]], None]
Fault = Callable[[str, str, bool, str], None]


class GatewayHealthConfig(Settings):
    """Which of the gateway's own health sources are read, and how often."""

    enabled: bool = True
    interval_s: float = Field(default=10.0, gt=0)
    # `auto`: upsd on this machine if it answers (no fault while it never has); a UPS given
    # here must answer, or `ups_unreachable` is raised; `off`: no UPS.
    ups: Literal["auto", "off"] | UpsConfig = "auto"
    # `auto`: chrony when `chronyc` is installed, else the kernel's state (timesyncd, ntpd).
    clock: Literal["auto", "chrony", "kernel", "off"] = "auto"
    chronyc: str = "chronyc"
    disk: bool = True
    thermal_dir: Path = Path("/sys/class/thermal")


class GatewayHealth:
    """Reads each health source every `interval_s`; readings and faults go to the callbacks."""

    def __init__(self, config: GatewayHealthConfig, state_dir: Path, report: Report,
                 fault: Fault) -> None:
        self.config = config
        self._state_dir = state_dir
        self._report = report
        self._fault = fault
        # Component -> where it is read from, or why not ("not available: ..."), for the log,
        # the heartbeat and `/healthz`.
        self.sources: dict[str, str] = {}
        self._faults: set[str] = set()
        self._ups_seen = False
        self._zones: list[Path] = []
        self._probes: list[Callable[[], Awaitable[None]]] = []

    def start(self) -> None:
        """Find the sources this machine has (no network: upsd is asked at the first read)."""
        config = self.config
        self._probes = []
        if config.ups != "off":
            ups = config.ups if isinstance(config.ups, UpsConfig) else UpsConfig()
            self.sources["ups"] = f"NUT upsd {ups.host}:{ups.port}"
            self._probes.append(lambda: self._ups(ups))
        else:
            self.sources["ups"] = f"{NOT_AVAILABLE}: switched off"
        clock = config.clock
        if clock == "auto":
            clock = "chrony" if chrony_tracking(config.chronyc) else "kernel"
        self.sources["clock"] = ({"chrony": f"chrony ({config.chronyc} -c tracking)",
                                  "kernel": "kernel adjtimex state"}.get(clock)
                                 or f"{NOT_AVAILABLE}: switched off")
        if clock != "off":
            self._probes.append(lambda: self._clock(clock == "chrony"))
        self.sources["disk"] = (f"free space of {self._state_dir}" if config.disk
                                else f"{NOT_AVAILABLE}: switched off")
        if config.disk:
            self._probes.append(self._disk)
        self._zones = thermal_zones(config.thermal_dir)
        self.sources["cpu"] = (f"{len(self._zones)} thermal zone(s) in {config.thermal_dir}"
                               if self._zones else
                               f"{NOT_AVAILABLE}: no thermal zone in {config.thermal_dir}")
        if self._zones:
            self._probes.append(self._cpu)
        for component, source in self.sources.items():
            log.info("gateway health %s: %s", component, source)

    async def probe(self) -> None:
        """Read every source once."""
        if not self._probes:
            self.start()
        for read in self._probes:
            await read()

    async def run(self) -> NoReturn:
        """Read every source now and every `interval_s`, forever (switched off: idle)."""
        if not self.config.enabled:
            self.sources = dict.fromkeys(("ups", "clock", "disk", "cpu"),
                                         f"{NOT_AVAILABLE}: health switched off")
            await asyncio.Event().wait()
        while True:
            await self.probe()
            await asyncio.sleep(self.config.interval_s)

    def _set_fault(self, fault: str, subject: str, problem: str | None) -> None:
        if (problem is not None) == (fault in self._faults):
            return
        if problem is not None:
            self._faults.add(fault)
            log.warning("gateway health %s: %s", subject, problem)
        else:
            self._faults.discard(fault)
        self._fault(fault, subject, problem is not None,
                    problem or f"{subject} answers again")

    async def _ups(self, ups: UpsConfig) -> None:
        try:
            state = await read_ups(ups)
        except DriverError as exc:
            # `auto` on a machine without upsd: no UPS, not a fault, until one has answered.
            if self._ups_seen or isinstance(self.config.ups, UpsConfig):
                self._set_fault("ups_unreachable", "ups", f"UPS unreachable: {exc}")
            elif not self.sources["ups"].startswith(NOT_AVAILABLE):
                self.sources["ups"] = f"{NOT_AVAILABLE}: {exc}"
                log.info("gateway health ups: %s", self.sources["ups"])
            return
        if not self._ups_seen:
            self._ups_seen = True
            self.sources["ups"] = f"NUT upsd {ups.host}:{ups.port}, UPS {state.ups}"
        self._set_fault("ups_unreachable", "ups", None)
        self._report("ups", state.values())

    async def _clock(self, chrony: bool) -> None:
        try:
            sync = (await read_chrony(self.config.chronyc) if chrony
                    else await self._kernel_clock())
        except DriverError as exc:
            self._set_fault("clock_unreadable", "clock", f"clock state unreadable: {exc}")
            return
        self._set_fault("clock_unreadable", "clock", None)
        self._report("clock", sync.values())

    async def _kernel_clock(self) -> ClockSync:
        try:
            return await asyncio.to_thread(kernel_sync)
        except ClockError as kernel:
            try:
                return await read_timedated()
            except ClockError as timedated:
                raise ClockError(f"{kernel}; {timedated}") from timedated

    async def _disk(self) -> None:
        try:
            free = await asyncio.to_thread(disk_free, self._state_dir)
        except DriverError as exc:
            self._set_fault("disk_unreadable", "disk", str(exc))
            return
        self._set_fault("disk_unreadable", "disk", None)
        self._report("disk", free.values())

    async def _cpu(self) -> None:
        celsius = await asyncio.to_thread(cpu_temperature, self._zones)
        if celsius is not None:
            self._report("cpu", {"temperature_c": celsius})
