"""The parts of HQ's loopback tests: a depot's Mosquitto bridged to HQ's as
deploy/mosquitto/bridge-hq.conf does, `depotwatch hq` as a process, and a cuttable uplink."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from servers import Mosquitto, free_port, http_request

__all__ = ["DepotBroker", "Hq", "HqProcess", "Uplink", "retained", "until"]


class DepotBroker(Mosquitto):
    """The depot's own Mosquitto, bridged to HQ's as deploy/mosquitto/bridge-hq.conf does."""

    def __init__(self, site: str, hq_port: int, workdir: Path) -> None:
        self.site, self.hq_port = site, hq_port
        super().__init__(workdir)

    def _write_config(self) -> None:
        super()._write_config()
        site = self.site
        with self.config_path.open("a") as conf:
            conf.write("\n".join([
                f"connection hq-{site}", f"address 127.0.0.1:{self.hq_port}",
                f"remote_clientid depotwatch-bridge-{site}", "cleansession false",
                f"local_clientid depotwatch-bridge-hq-{site}", "restart_timeout 1 2",
                "notifications true", f"notification_topic depotwatch/{site}/gateway/bridge",
                f"topic depotwatch/{site}/alerts/# out 1",
                f"topic depotwatch/{site}/gateway/# out 1",
                f"topic depotwatch/{site}/status out 1",
                f"topic depotwatch/{site}/commands in 1",
                f"topic depotwatch/{site}/commands/replies out 1", ""]))


def retained(broker: Mosquitto, topic: str) -> str:
    done = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                           "-t", topic, "-C", "1", "-W", "3"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip()


class HqProcess:
    """`depotwatch hq -c hq.yaml` as a process, its log in a file."""

    def __init__(self, workdir: Path, config: dict[str, object]) -> None:
        self.config_path = workdir / "hq.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = workdir / "hq.log"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "--log-level", "info", "hq",
                 "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONWARNINGS": "default"})

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, text: str, timeout_s: float) -> float:
        """Seconds until `text` is logged."""
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            if text in self.log():
                return time.monotonic() - started
            assert self.proc.poll() is None, self.log()
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged in {timeout_s} s:\n{self.log()}")

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(timeout=20)


class Uplink:
    """A depot's line to HQ: socat forwarding a port to HQ's broker; cut() drops it and every
    connection through it, restore() brings it back on the same port."""

    def __init__(self, hq_port: int) -> None:
        self.hq_port = hq_port
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def restore(self) -> None:
        self.proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,fork,reuseaddr",
             f"TCP:127.0.0.1:{self.hq_port}"], start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)

    def cut(self) -> None:
        if self.proc is None:
            return
        # Its own process group: socat forks one child per connection.
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None


def until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """`check()` once it is true (fails after `timeout_s`)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s} s")


class Hq:
    """HQ's API as a client sees it."""

    def __init__(self, process: HqProcess, token: str) -> None:
        self.token = token
        line = until(lambda: next((x for x in process.log().splitlines()
                                    if "HQ console and API on " in x), None), 20, "HQ API up")
        self.url = line.rsplit(" ", 1)[-1]
        self.process = process

    def depots(self) -> dict[str, dict[str, Any]]:
        """Every depot as HQ's API lists it, by site."""
        status, body = http_request("GET", f"{self.url}/api/depots",
                                    headers={"Authorization": f"Bearer {self.token}"})
        assert status == 200, body
        return {d["site"]: d for d in json.loads(body)["depots"]}

    def ack(self, site: str, key: str, token: str) -> tuple[int, dict[str, Any]]:
        """Acknowledge an alarm of `site` at HQ as the officer holding `token`."""
        status, body = http_request(
            "POST", f"{self.url}/api/depots/{site}/alarms/{key}/ack",
            data=json.dumps({"note": "called the guard"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout=15)
        return status, json.loads(body)
