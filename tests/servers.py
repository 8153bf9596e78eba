"""Start and stop real servers on 127.0.0.1 for tests.

Each class runs one server binary as a child process in its own work
directory on a free port and waits until it answers.  Only the standard
library is used.  Every child is reaped with ``Popen.wait()`` because PID 1
in the test containers does not reap zombies.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Self

HOST = "127.0.0.1"

# Never route test traffic through an http_proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(RuntimeError):
    """A server could not be started or did not become ready."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def http_request(
    method: str,
    url: str,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 5.0,
) -> tuple[int, bytes]:
    """Do one HTTP request; return ``(status, body)`` also for 4xx/5xx."""
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            status: int = resp.status
            return status, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _http_ok(url: str, expect_status: int, expect_body: bytes | None = None) -> bool:
    """Readiness probe: True if GET url answers as expected."""
    try:
        status, body = http_request("GET", url, timeout=1.0)
    except OSError:
        return False
    if status != expect_status:
        return False
    return expect_body is None or body.strip() == expect_body


def _tail(path: Path, lines: int = 30) -> str:
    """Return the last lines of a log file (or a note if it is missing)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _require_binary(name: str) -> str:
    """Return the absolute path of an executable or raise ServerError."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        raise ServerError(f"executable {name!r} not found")
    return found


class _Server:
    """Common process handling: spawn, wait for readiness, stop, reap."""

    name = "server"
    startup_timeout = 10.0

    def __init__(self, workdir: Path | str | None = None) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"depotwatch-{self.name}-")
            workdir = self._tmp.name
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = free_port()
        self.log_path = self.dir / f"{self.name}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    # -- to be provided by subclasses ---------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _log_tail(self) -> str:
        return _tail(self.log_path)

    # -- lifecycle ----------------------------------------------------
    def is_running(self) -> bool:
        """True if the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Spawn the server and block until it is ready (no-op if running)."""
        if self.is_running():
            return
        self.proc = None
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                self._command(),
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # keep Ctrl-C of pytest away from it
            )
        self.proc = proc
        deadline = time.monotonic() + self.startup_timeout
        delay = 0.005
        while True:
            if proc.poll() is not None:
                self.proc = None
                raise ServerError(
                    f"{self.name} exited with {proc.returncode} during startup;"
                    f" log {self.log_path}:\n{self._log_tail()}"
                )
            if self._is_ready():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(
                    f"{self.name} not ready after {self.startup_timeout}s on port"
                    f" {self.port}; log {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Send SIGTERM and wait for exit (SIGKILL after timeout)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Send SIGKILL and reap the process (simulates a crash)."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        self.proc = None

    def restart(self) -> None:
        """Stop, then start again on the same port with the same data."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server and delete its work dir if we created it."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        pid = self.proc.pid if self.proc is not None else None
        return f"<{type(self).__name__} {self.host}:{self.port} pid={pid} dir={self.dir}>"


class Mosquitto(_Server):
    """Mosquitto MQTT broker with persistence and unlimited queues."""

    name = "mosquitto"

    # A "$" topic is not matched by "#" subscriptions (MQTT 4.7.2), so the
    # readiness publish never reaches a persistent test session after restart.
    probe_topic = "$depotwatch/probe"

    def __init__(self, workdir: Path | str | None = None) -> None:
        super().__init__(workdir)
        self.binary = _require_binary("mosquitto")
        self.pub_binary = _require_binary("mosquitto_pub")
        self.config_path = self.dir / "mosquitto.conf"
        self.broker_log_path = self.dir / "mosquitto.log"
        self._write_config()

    def _write_config(self) -> None:
        self.config_path.write_text(
            "\n".join(
                [
                    # Started as root, mosquitto would drop to user "mosquitto"
                    # and then could not write to the temp dir.
                    "user root",
                    f"listener {self.port} {self.host}",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {self.dir}/",
                    f"log_dest file {self.broker_log_path}",
                    "log_type all",
                    "connection_messages true",
                    # The default per-client queue (1000 msgs) silently drops
                    # QoS 1 messages for offline persistent sessions.
                    "max_queued_messages 0",
                    "max_queued_bytes 268435456",
                    # As deploy/mosquitto/depotwatch.conf: no Nagle delay (up to 40 ms) on
                    # small packets such as alarms.
                    "set_tcp_nodelay true",
                    "",
                ]
            )
        )

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _is_ready(self) -> bool:
        cmd = [self.pub_binary, "-h", self.host, "-p", str(self.port)]
        cmd += ["-t", self.probe_topic, "-m", "1"]
        try:
            res = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=2,
            )
        except subprocess.TimeoutExpired:
            return False
        return res.returncode == 0

    def _log_tail(self) -> str:
        broker_log = _tail(self.broker_log_path)
        return f"{_tail(self.log_path)}\n--- {self.broker_log_path.name} ---\n{broker_log}"


class InfluxDB1(_Server):
    """InfluxDB 1.x (``influxd``) with HTTP API on a free port."""

    name = "influxdb1"

    def __init__(self, workdir: Path | str | None = None) -> None:
        super().__init__(workdir)
        self.binary = _require_binary("influxd")
        self.rpc_port = free_port()
        self.url = f"http://{self.host}:{self.port}"
        self.config_path = self.dir / "influxdb.conf"
        self._write_config()

    def _write_config(self) -> None:
        d = self.dir
        self.config_path.write_text(
            f"""\
reporting-enabled = false
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{d}/meta"

[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  query-log-enabled = false

[http]
  enabled = true
  bind-address = "{self.host}:{self.port}"
  log-enabled = false
  unix-socket-enabled = false

[monitor]
  store-enabled = false
"""
        )

    def _command(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.config_path)]

    def _is_ready(self) -> bool:
        return _http_ok(f"{self.url}/ping", 204)

    def _query_url(self, params: dict[str, str]) -> str:
        return f"{self.url}/query?{urllib.parse.urlencode(params)}"

    def create_database(self, name: str) -> None:
        """Create a database (no error if it exists)."""
        quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        body = urllib.parse.urlencode({"q": f"CREATE DATABASE {quoted}"}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        status, resp = http_request("POST", f"{self.url}/query", body, headers)
        if status != 200 or b'"error"' in resp:
            raise ServerError(f"CREATE DATABASE {name}: HTTP {status}: {resp!r}")

    def write(self, db: str, lines: str, precision: str = "ns") -> None:
        """POST line protocol to /write (database must exist)."""
        params = urllib.parse.urlencode({"db": db, "precision": precision})
        status, resp = http_request("POST", f"{self.url}/write?{params}", lines.encode())
        if status != 204:
            raise ServerError(f"write to {db}: HTTP {status}: {resp!r}")

    def query(self, db: str, influxql: str) -> dict[str, Any]:
        """Run an InfluxQL query; return the decoded JSON (epoch=ns)."""
        url = self._query_url({"db": db, "q": influxql, "epoch": "ns"})
        status, resp = http_request("GET", url)
        if status != 200:
            raise ServerError(f"query {influxql!r}: HTTP {status}: {resp!r}")
        result: dict[str, Any] = json.loads(resp)
        return result


class VictoriaMetrics(_Server):
    """Single-node VictoriaMetrics with caches and latency offset off."""

    name = "victoriametrics"

    def __init__(self, workdir: Path | str | None = None) -> None:
        super().__init__(workdir)
        self.binary = _require_binary("victoria-metrics")
        self.url = f"http://{self.host}:{self.port}"
        self.data_path = self.dir / "data"

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"-httpListenAddr={self.host}:{self.port}",
            f"-storageDataPath={self.data_path}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ]

    def _is_ready(self) -> bool:
        return _http_ok(f"{self.url}/health", 200, b"OK")

    def force_flush(self) -> None:
        """Make recently written samples searchable."""
        status, resp = http_request("GET", f"{self.url}/internal/force_flush")
        if status != 200:
            raise ServerError(f"force_flush: HTTP {status}: {resp!r}")

    def write_influx(self, lines: str) -> None:
        """POST InfluxDB line protocol to /api/v2/write.

        VictoriaMetrics names the series ``<measurement>_<field>``.
        """
        status, resp = http_request("POST", f"{self.url}/api/v2/write", lines.encode())
        if status != 204:
            raise ServerError(f"write: HTTP {status}: {resp!r}")

    def export(self, match: str) -> list[dict[str, Any]]:
        """Return all series matching a selector via /api/v1/export."""
        params = urllib.parse.urlencode({"match[]": match})
        status, resp = http_request("GET", f"{self.url}/api/v1/export?{params}")
        if status != 200:
            raise ServerError(f"export {match!r}: HTTP {status}: {resp!r}")
        return [json.loads(line) for line in resp.splitlines() if line.strip()]

    def wait_for_series(self, match: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Flush and poll export until it returns series, or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while True:
            self.force_flush()
            series = self.export(match)
            if series:
                return series
            if time.monotonic() > deadline:
                raise TimeoutError(f"no series matching {match!r} after {timeout}s")
            time.sleep(0.05)


class Alertmanager(_Server):
    """Prometheus Alertmanager, non-clustered, with one webhook receiver."""

    name = "alertmanager"

    def __init__(self, webhook_url: str, workdir: Path | str | None = None) -> None:
        super().__init__(workdir)
        self.binary = _require_binary("prometheus-alertmanager")
        self.webhook_url = webhook_url
        self.url = f"http://{self.host}:{self.port}"
        self.config_path = self.dir / "alertmanager.yml"
        self.storage_path = self.dir / "data"
        self._write_config()

    def _write_config(self) -> None:
        config = {
            "route": {
                "receiver": "webhook",
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "webhook",
                    "webhook_configs": [{"url": self.webhook_url, "send_resolved": True}],
                }
            ],
        }
        # JSON is valid YAML, and json.dumps gets quoting right.
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")

    def _command(self) -> list[str]:
        return [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.storage_path}",
            f"--web.listen-address={self.host}:{self.port}",
            "--cluster.listen-address=",  # else it gossips on 0.0.0.0:9094
        ]

    def _is_ready(self) -> bool:
        return _http_ok(f"{self.url}/-/ready", 200)


__all__ = [
    "HOST",
    "Alertmanager",
    "InfluxDB1",
    "Mosquitto",
    "ServerError",
    "VictoriaMetrics",
    "free_port",
    "http_request",
]
