"""What the bench scripts share: the broker, child processes, /proc figures, versions, results."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import resource
import select
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
# The servers the bench starts are the tests' (tests/servers.py): `from servers import ...`
# works in every bench module that imports this one first.
if str(REPO_DIR / "tests") not in sys.path:
    sys.path.append(str(REPO_DIR / "tests"))


def start_broker() -> Any:
    """tests/servers.Mosquitto, but without per-packet debug logging."""
    from servers import Mosquitto

    class BenchMosquitto(Mosquitto):  # type: ignore[misc]
        name = "mosquitto-bench"

        def _write_config(self) -> None:
            super()._write_config()
            text = self.config_path.read_text()
            # "log_type all" writes a log line per PUBLISH in and out: the broker would then be
            # the bottleneck. Queue limits (max_queued_messages 0) are kept as they are.
            text = text.replace("log_type all\n", "log_type error\nlog_type warning\n")
            self.config_path.write_text(text)

    broker = BenchMosquitto()
    broker.start()
    return broker


def spawn(script: Path, role: str, extra: list[str]) -> subprocess.Popen[str]:
    """`script role extra...` as a child process whose stdout the parent reads."""
    return subprocess.Popen([sys.executable, str(script), role, *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)


def readline(stream: IO[str], timeout: float) -> str | None:
    """One line of a child's output, or None when none comes within `timeout` s."""
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else None


def last_json(text: str) -> dict[str, Any] | None:
    """The last JSON object line a child printed (its result)."""
    for raw in reversed(text.splitlines()):
        if raw.startswith("{"):
            result: dict[str, Any] = json.loads(raw)
            return result
    return None


def cpu_s() -> float:
    """User + system CPU seconds of this process (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of another process (all threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def proc_hwm_mib(pid: int) -> float:
    """Peak RSS (VmHWM) of another process so far, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def version(dist: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def mosquitto_version() -> str:
    """What `mosquitto -h` says its version is."""
    try:
        out = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    first = (out.stdout or out.stderr).splitlines()[:1]
    return first[0].removeprefix("mosquitto version ").strip() if first else "unknown"


def machine(cpu_model: str | None = None, **extra: Any) -> dict[str, Any]:
    """CPUs, Python and platform of this machine (and `extra`), for a results file."""
    head: dict[str, Any] = {"cpus": os.cpu_count()}
    if cpu_model is not None:
        head["cpu_model"] = cpu_model
    return {**head, "python": platform.python_version(), "platform": platform.platform(),
            **extra}


def fmt(value: float | None, spec: str = ",.0f") -> str:
    """`value` formatted, or "-" when there is none."""
    return "-" if value is None else format(value, spec)


def stamp() -> str:
    """Now, in UTC to the second, for a results file's "date"."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def results_path(name: str, output: str | None, suffix: str = ".json") -> Path:
    """`output` if given, else bench/results/<name>-<today><suffix>; the folder is made."""
    out_dir = BENCH_DIR / "results"
    out_dir.mkdir(exist_ok=True)
    return Path(output) if output else out_dir / f"{name}-{dt.date.today().isoformat()}{suffix}"


class LoggedProcess:
    """A server the bench starts as a child process that writes to a log file."""

    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def log_tail(self, n: int = 30) -> str:
        """The last `n` lines of its log."""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    @property
    def pid(self) -> int:
        """Its process id (it must have been started)."""
        assert self.proc is not None
        return self.proc.pid

    def stop(self, wait_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `wait_s`; its exit code (None if never started)."""
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def spawn_py_spy(pid: int, delay_s: float, seconds: float, out: Path,
                 ) -> subprocess.Popen[bytes]:
    """py-spy recording `pid`'s GIL-holding stacks (collapsed) for `seconds` after `delay_s`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        ["sh", "-c", f"sleep {delay_s}; exec {shutil.which('py-spy') or 'py-spy'} record "
         f"-p {pid} -d {max(1, int(seconds))} -r 250 --gil -f raw -o {out} --nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def spawn_strace(pid: int, delay_s: float, seconds: float, out: Path
                 ) -> subprocess.Popen[bytes]:
    """strace counting `pid`'s system calls, every thread, for `seconds` after `delay_s`: how
    often a receiver wakes up (epoll_wait) and writes; its CPU figure is not comparable then."""
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        ["sh", "-c", f"sleep {delay_s}; exec timeout -s INT {max(1, int(seconds))} "
         f"strace -c -f -p {pid} -o {out}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
