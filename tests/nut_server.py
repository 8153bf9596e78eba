"""NUT for tests: Debian's upsd with the dummy-ups driver, on 127.0.0.1, in a temp dir.

The driver reads the UPS's variables from `<ups>.dev` and reads it again when it changes
(within its `pollinterval`), so a test sets the UPS's state by writing that file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from servers import HOST, ServerError, free_port

__all__ = ["NutServer"]

# Debian installs the real programs under /lib/nut; /sbin/upsd is a wrapper that refuses to
# run unless /etc/nut/nut.conf enables it.
UPSD = Path("/lib/nut/upsd")
DUMMY_UPS = Path("/lib/nut/dummy-ups")


class NutServer:
    """One dummy UPS named `ups` served by upsd on a free port."""

    def __init__(self, workdir: Path, ups: str = "gw-ups") -> None:
        self.dir = workdir
        self.ups = ups
        self.host = HOST
        self.port = free_port()
        self._procs: list[subprocess.Popen[bytes]] = []
        self._mtime_s = 0

    def set_state(self, status: str, charge_pct: float = 100.0, runtime_s: float = 1800) -> None:
        """What the dummy UPS reports from now on (`OL`, `OB`, `OB LB`, ...)."""
        path = self.dir / f"{self.ups}.dev"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(f"ups.status: {status}\nbattery.charge: {charge_pct:g}\n"
                       f"battery.runtime: {runtime_s:g}\n")
        # dummy-ups notices a change by the file's mtime in whole seconds: two states written
        # within one second would look like one.
        self._mtime_s = max(int(time.time()), self._mtime_s + 1)
        os.utime(tmp, (self._mtime_s, self._mtime_s))
        tmp.replace(path)

    def start(self) -> None:
        """Start the driver and upsd; return once upsd serves the UPS's data."""
        if not UPSD.exists() or not DUMMY_UPS.exists():
            raise ServerError("NUT not installed: apt-get install nut-server")
        self.set_state("OL")
        (self.dir / "ups.conf").write_text(
            f"pollinterval = 1\n[{self.ups}]\n  driver = dummy-ups\n  port = {self.ups}.dev\n"
            '  desc = "depotwatch test UPS"\n')
        (self.dir / "upsd.conf").write_text(f"LISTEN {self.host} {self.port}\n")
        (self.dir / "upsd.users").write_text("")
        for path in self.dir.iterdir():
            path.chmod(0o600)
        env = {"NUT_CONFPATH": str(self.dir), "NUT_STATEPATH": str(self.dir),
               "NUT_ALTPIDPATH": str(self.dir), "PATH": "/usr/bin:/bin"}
        log = open(self.dir / "nut.out", "ab")  # noqa: SIM115 - kept open for the children
        for command in ([str(DUMMY_UPS), "-a", self.ups, "-u", "root", "-F"],
                        [str(UPSD), "-u", "root", "-F"]):
            self._procs.append(subprocess.Popen(command, cwd=self.dir, env=env,
                                                stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT,
                                                start_new_session=True))
        log.close()
        self.wait_status("OL")

    def status(self) -> str | None:
        """The UPS's status as upsd serves it now (None: no answer)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(f"GET VAR {self.ups} ups.status\n".encode())
                answer = sock.recv(4096).decode()
        except OSError:
            return None
        if not answer.startswith("VAR "):
            return None
        return answer.split('"')[1]

    def wait_status(self, status: str, timeout_s: float = 10.0) -> None:
        """Until upsd serves `status`."""
        deadline = time.monotonic() + timeout_s
        while self.status() != status:
            if time.monotonic() > deadline:
                raise ServerError(f"upsd not serving {status!r} after {timeout_s} s: "
                                  f"{(self.dir / 'nut.out').read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop upsd and the driver (by their own PIDs) and reap them."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs = []
