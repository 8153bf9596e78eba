"""Test-side serial devices: pty links that can be pulled, a socat cable, Modbus slaves."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import tty
from collections.abc import Callable
from pathlib import Path

from pymodbus.server import ModbusSerialServer
from pymodbus.simulator import DataType, SimData, SimDevice


async def until(check: Callable[[], bool], within_s: float = 5.0) -> None:
    """Wait for a condition the driver under test brings about."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


class PtyLink:
    """A pty pair whose slave is reachable at `path`, as udev's stable name would be.

    `unplug()` closes the pair (the reader sees a hang-up, as when a USB adapter is pulled)
    and removes the link; `plug()` makes a new pair behind the same name.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._master: int | None = None
        self._slave: int | None = None

    def plug(self) -> PtyLink:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        os.symlink(os.ttyname(slave), self.path)
        return self

    def unplug(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self.path.unlink(missing_ok=True)

    async def send(self, data: bytes) -> None:
        """Write everything, waiting while the pty's buffer is full (the reader shares the loop)."""
        assert self._master is not None
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                await asyncio.sleep(0.002)
                continue
            view = view[written:]
        # Let the reader see this write as its own read: a later send must not merge with it.
        await asyncio.sleep(0.05)

    def read_available(self) -> bytes:
        """What the other side wrote (nothing blocks)."""
        assert self._master is not None
        try:
            return os.read(self._master, 65536)
        except BlockingIOError:
            return b""


class SocatPair:
    """Two linked ptys with named ends (`socat pty,link=A pty,link=B`): a cable between two
    serial adapters. Stopping it hangs both ends up and removes the names."""

    def __init__(self, a: Path, b: Path) -> None:
        self.a, self.b = a, b
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SocatPair:
        self._proc = subprocess.Popen(
            ["socat", f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while not (self.a.exists() and self.b.exists()):
            assert time.monotonic() < deadline, "socat made no ptys"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)
            self._proc = None


CLIMATE = SimData(0, values=[215, 455], datatype=DataType.REGISTERS)          # 21.5 °C, 45.5 %
IO_MODULE = SimData(0, values=[True, False] + [False] * 14, datatype=DataType.BITS)


class Slaves:
    """pymodbus' serial server answering as two slaves; `corrupt` spoils its CRCs."""

    def __init__(self, port: Path) -> None:
        self.port = port
        self.corrupt = 0
        self._server: ModbusSerialServer | None = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if sending and self.corrupt:
            self.corrupt -= 1
            return data[:-1] + bytes([data[-1] ^ 0xFF])
        return data

    async def start(self) -> None:
        devices = [SimDevice(7, simdata=[CLIMATE]), SimDevice(8, simdata=[IO_MODULE])]
        self._server = ModbusSerialServer(devices, port=str(self.port), baudrate=19200,
                                          trace_packet=self._trace)
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()
            self._server = None
