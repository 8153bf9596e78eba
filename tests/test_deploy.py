"""Deployment: the systemd unit (systemd-analyze), sd_notify from the daemon, the install script."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import Mosquitto

from daemon.sdnotify import SystemdNotifier, stale_after, supervise, watchdog_interval_s

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "deploy" / "depotwatch.service"


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze missing: apt-get install systemd (make apt-test does)")
    return found


def _unit_for_verify(tmp_path: Path) -> Path:
    # verify checks that ExecStart= exists; point it at a stand-in, keep everything else.
    stand_in = tmp_path / "bin" / "depotwatch"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "depotwatch.service"
    unit.write_text(UNIT.read_text().replace("/opt/depotwatch/bin/depotwatch", str(stand_in)))
    return unit


def _settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    done = subprocess.run([_systemd_analyze(), "verify", "--man=no",
                           str(_unit_for_verify(tmp_path))],
                          capture_output=True, text=True, timeout=30)
    # Unknown keys and bad values are only warnings (exit 0): any output is a failure.
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stderr


def _exposure(unit: Path) -> float:
    done = subprocess.run([_systemd_analyze(), "security", "--offline=yes", "--threshold=20",
                           "--no-pager", str(unit)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    found = re.search(r"Overall exposure level for depotwatch.service: (\d+\.\d) OK", done.stdout)
    assert found, done.stdout[-3000:]
    return float(found.group(1))


def test_unit_hardening_scores_ok(tmp_path: Path) -> None:
    """The score README "Deployment" states: 1.6 as shipped (systemd 252 --offline)."""
    assert _exposure(_unit_for_verify(tmp_path)) <= 1.6


_EGRESS_CONFIG = """\
site: {id: x}
storehouses: [{id: S}]
mqtt: {host: 127.0.0.1}
influxdb: [{url: "http://192.0.2.7:8086", database: d, api: v1}]
notifiers:
  - {type: webhook, url: "https://198.51.100.3/hook", secret: 0123456789abcdef0123456789abcdef}
  - {type: alertmanager, urls: ["http://[2001:db8::5]:9093", "http://203.0.113.9:9093"]}
"""


def test_ip_allow_drop_in_names_every_configured_server(tmp_path: Path) -> None:
    config = tmp_path / "depotwatch.yaml"
    config.write_text(_EGRESS_CONFIG + f"state_dir: {tmp_path}\n")
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "ip-allow", "-c", str(config),
                           "--allow", "10.20.0.0/16"],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    allowed = [line.split("=", 1)[1] for line in done.stdout.splitlines()
               if line.startswith("IPAddressAllow=")]
    assert {"localhost", "127.0.0.1", "192.0.2.7", "198.51.100.3", "2001:db8::5", "203.0.113.9",
            "10.20.0.0/16"} <= set(allowed)
    assert "IPAddressDeny=any" in done.stdout.splitlines()
    # The drop-in's keys added to the unit: systemd takes them, and the score drops to 1.4.
    unit = _unit_for_verify(tmp_path)
    unit.write_text(unit.read_text().replace(
        "[Install]", "\n".join(done.stdout.splitlines()[3:]) + "\n\n[Install]"))
    verified = subprocess.run([_systemd_analyze(), "verify", "--man=no", str(unit)],
                              capture_output=True, text=True, timeout=30)
    assert verified.returncode == 0 and verified.stdout + verified.stderr == "", verified.stderr
    assert _exposure(unit) <= 1.4


def test_check_config_warns_of_a_server_the_drop_in_cuts_off(tmp_path: Path) -> None:
    config = tmp_path / "depotwatch.yaml"
    config.write_text(_EGRESS_CONFIG + f"state_dir: {tmp_path}\n")
    drop_in = tmp_path / "ip-allow.conf"
    cli = [sys.executable, "-m", "daemon.cli", "check-config", "-c", str(config),
           "--ip-allow-file", str(drop_in)]
    drop_in.write_text(subprocess.run(
        [sys.executable, "-m", "daemon.cli", "ip-allow", "-c", str(config)], cwd=REPO,
        capture_output=True, text=True, timeout=60, check=True).stdout)
    done = subprocess.run(cli, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "not allowed" not in done.stderr, done.stderr
    # A new InfluxDB server in the config, the drop-in not written again: warned, by path.
    config.write_text(config.read_text().replace("192.0.2.7", "192.0.2.99"))
    done = subprocess.run(cli, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert (f"warning: influxdb[0].url: 192.0.2.99 (192.0.2.99) is not allowed by {drop_in}"
            in done.stderr), done.stderr


def test_ip_allow_refuses_a_host_that_does_not_resolve(tmp_path: Path) -> None:
    config = tmp_path / "depotwatch.yaml"
    config.write_text(f"site: {{id: x}}\nstorehouses: [{{id: S}}]\nstate_dir: {tmp_path}\n"
                      "mqtt: {host: broker.invalid}\n")
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "ip-allow", "-c", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (1, "")
    assert "does not resolve" in done.stderr


@pytest.mark.parametrize(("key", "value"), [
    ("Type", "notify"), ("WatchdogSec", "30"), ("Restart", "always"),
    ("ExecReload", "/bin/kill -HUP $MAINPID"), ("LimitNOFILE", "65536"),
    ("StartLimitIntervalSec", "300"), ("StartLimitBurst", "50"),
    ("RestartPreventExitStatus", "78"), ("User", "depotwatch"),
    ("SupplementaryGroups", "dialout"), ("StateDirectory", "depotwatch"),
    ("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("DevicePolicy", "closed"),
    ("PrivateMounts", "yes"), ("ProtectHome", "yes"), ("CapabilityBoundingSet", ""),
    ("SystemCallFilter", "@system-service"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ("ExecStart", "/opt/depotwatch/bin/depotwatch run -c /etc/depotwatch/depotwatch.yaml"),
])
def test_unit_settings(key: str, value: str) -> None:
    assert value in _settings().get(key, [])


def test_a_config_error_exits_78_which_the_unit_never_restarts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: {id: x}\nstorehouses: []\n")
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "run", "-c", str(bad)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 78 and str(done.returncode) in _settings()[
        "RestartPreventExitStatus"]


# -- sd_notify ----------------------------------------------------------------------------------

class NotifySocket:
    """systemd's end: a datagram socket in the abstract namespace ('@...'), read by a thread
    as systemd reads it (a unix datagram queue holds only ~10 unread messages)."""

    def __init__(self) -> None:
        self.name = f"@depotwatch-test-{uuid.uuid4().hex}"
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind("\0" + self.name[1:])
        self._sock.settimeout(0.02)
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.messages.append(self._sock.recv(4096).decode())

    def wait_for(self, predicate: Any, timeout: float) -> list[str]:
        """The messages so far, once `predicate(messages)` holds (fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        while not predicate(list(self.messages)):
            assert time.monotonic() < deadline, f"not received in {timeout} s: {self.messages}"
            time.sleep(0.01)
        return list(self.messages)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def notify_socket() -> Iterator[NotifySocket]:
    sock = NotifySocket()
    yield sock
    sock.close()


def test_notifier_reaches_path_and_abstract_sockets(
        tmp_path: Path, notify_socket: NotifySocket) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as by_path:
        by_path.bind(str(tmp_path / "notify"))
        by_path.settimeout(1)
        notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "notify")})
        assert notifier.notify("READY=1", "STATUS=ok")
        assert by_path.recv(4096) == b"READY=1\nSTATUS=ok"
        notifier.close()
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": notify_socket.name})
    assert notifier.notify("WATCHDOG=1")
    notifier.close()
    assert notify_socket.wait_for(lambda m: m, 2) == ["WATCHDOG=1"]
    assert not SystemdNotifier.from_environment({}).enabled
    gone = SystemdNotifier(str(tmp_path / "nobody-listens"))
    assert gone.notify("WATCHDOG=1") is False  # logged once, never raised
    gone.close()


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None), ({"WATCHDOG_USEC": "30000000"}, 15.0), ({"WATCHDOG_USEC": "0"}, None),
    ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}, 2.0),
    ({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}, None),
    ({"WATCHDOG_USEC": "soon"}, None),
])
def test_watchdog_interval_is_half_the_timeout(env: dict[str, str],
                                               expected: float | None) -> None:
    assert watchdog_interval_s(env) == expected


def test_no_ready_before_inputs_and_no_watchdog_while_stalled(
        notify_socket: NotifySocket) -> None:
    async def scenario() -> list[str]:
        notifier = SystemdNotifier(notify_socket.name)
        inputs_up, stalled = asyncio.Event(), asyncio.Event()
        last_tick = [time.monotonic()]

        async def rule_tick() -> None:
            while not stalled.is_set():
                last_tick[0] = time.monotonic()
                await asyncio.sleep(0.02)

        ticks = asyncio.create_task(rule_tick())
        task = asyncio.create_task(supervise(
            notifier, inputs_up, ready_timeout_s=5.0, interval_s=0.05,
            healthy=stale_after(lambda: last_tick[0], 0.2, "rule tick")))
        await asyncio.sleep(0.2)
        early = list(notify_socket.messages)
        inputs_up.set()
        await asyncio.sleep(0.3)   # READY=1, then pings while the tick runs
        stalled.set()              # the tick loop stops
        await asyncio.sleep(0.5)
        task.cancel()
        await ticks
        notifier.close()
        return early

    assert asyncio.run(scenario()) == [], "READY=1 before MQTT was up"
    messages = notify_socket.wait_for(
        lambda m: any(x.startswith("STATUS=unhealthy") for x in m), 2)
    assert messages[0] == "READY=1\nSTATUS=inputs up; supervising"
    stalled = next(i for i, m in enumerate(messages) if m.startswith("STATUS=unhealthy"))
    assert len(messages[1:stalled]) >= 3 and set(messages[1:stalled]) == {"WATCHDOG=1"}
    assert "rule tick last ran" in messages[stalled]
    assert messages[stalled + 1:] == []  # no ping while stalled, the reason said once


def test_ready_comes_anyway_when_the_broker_stays_down(notify_socket: NotifySocket) -> None:
    async def scenario() -> None:
        notifier = SystemdNotifier(notify_socket.name)
        await supervise(notifier, asyncio.Event(), ready_timeout_s=0.1, interval_s=None,
                        healthy=lambda: None)
        notifier.close()

    asyncio.run(scenario())
    assert notify_socket.wait_for(lambda m: m, 2) == [
        "READY=1\nSTATUS=MQTT broker not reachable; supervising anyway (input-lost alarm)"]


def _daemon_config(mosquitto: Mosquitto, state_dir: Path) -> dict[str, Any]:
    return {
        "site": {"id": "notify-depot"}, "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "armed": {"mode": "never"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                 "client_id": f"depotwatch-notify-{uuid.uuid4().hex[:6]}",
                 "subscriptions": [{"topic": "notify/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "tick_interval_s": 0.1,
    }


def test_daemon_tells_systemd_ready_then_pings_then_stopping(
        mosquitto: Mosquitto, tmp_path: Path, notify_socket: NotifySocket) -> None:
    config = tmp_path / "depotwatch.yaml"
    config.write_text(yaml.safe_dump(_daemon_config(mosquitto, tmp_path / "state")))
    log = tmp_path / "daemon.log"
    env = {**os.environ, "NOTIFY_SOCKET": notify_socket.name, "WATCHDOG_USEC": "400000"}
    env.pop("WATCHDOG_PID", None)
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "daemon.cli", "run", "-c", str(config)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        (ready, *_) = notify_socket.wait_for(lambda m: m, 20)
        assert ready == "READY=1\nSTATUS=inputs up; supervising"
        assert "MQTT connected" in log.read_text()  # READY=1 only once the input is up
        time.sleep(1.0)  # pings every 0.2 s
        assert notify_socket.messages[1:].count("WATCHDOG=1") >= 3, notify_socket.messages
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    messages = notify_socket.wait_for(lambda m: "STOPPING=1" in m, 2)
    assert set(messages[1:messages.index("STOPPING=1")]) == {"WATCHDOG=1"}


# -- the install script -------------------------------------------------------------------------

def _install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(REPO / "deploy" / "install.sh"), *args],
                          capture_output=True, text=True, timeout=240)


def test_install_script_plan_on_a_new_gateway(tmp_path: Path) -> None:
    done = _install("--dry-run", "--root", str(tmp_path), "--with-mosquitto", "--ip-allow")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for step in (f"python3 -m venv {tmp_path}/opt/depotwatch",
                 "--force-reinstall --no-deps",
                 f"install -m 0640 {REPO}/examples/demo-depot.yaml {tmp_path}/etc/depotwatch/",
                 "state_dir: /var/lib/depotwatch",
                 f"{tmp_path}/etc/mosquitto/conf.d/depotwatch.conf",
                 f"install -m 0644 {REPO}/deploy/depotwatch.service "
                 f"{tmp_path}/etc/systemd/system/depotwatch.service",
                 f"depotwatch completion bash > {tmp_path}/usr/local/share/bash-completion/"
                 "completions/depotwatch",
                 f"depotwatch completion zsh > {tmp_path}/usr/local/share/zsh/site-functions/"
                 "_depotwatch",
                 f"depotwatch manpage > {tmp_path}/usr/local/share/man/man1/depotwatch.1",
                 f"depotwatch ip-allow -c {tmp_path}/etc/depotwatch/depotwatch.yaml > "
                 f"{tmp_path}/etc/systemd/system/depotwatch.service.d/ip-allow.conf"):
        assert step in out, step
    assert list(tmp_path.iterdir()) == []  # a dry run changes nothing


def test_install_script_upgrade_keeps_the_config(tmp_path: Path) -> None:
    (tmp_path / "etc" / "depotwatch").mkdir(parents=True)
    (tmp_path / "etc" / "depotwatch" / "depotwatch.yaml").write_text("site: {id: mine}\n")
    (tmp_path / "etc" / "depotwatch" / "depotwatch.env").write_text("DEPOTWATCH_BADGE_SALT=x\n")
    (tmp_path / "opt" / "depotwatch" / "bin").mkdir(parents=True)
    (tmp_path / "opt" / "depotwatch" / "bin" / "python").symlink_to(sys.executable)
    done = _install("--dry-run", "--root", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "keeping the existing config" in done.stdout and "upgrading the virtual" in done.stdout
    assert "demo-depot.yaml" not in done.stdout and "python3 -m venv" not in done.stdout
    assert (tmp_path / "etc" / "depotwatch" / "depotwatch.env").read_text().endswith("=x\n")


def test_install_script_installs_then_upgrades_in_place(tmp_path: Path) -> None:
    # A real run, staged under a temp root (no user, no systemctl): pip builds and installs.
    first = _install("--root", str(tmp_path))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    depotwatch = tmp_path / "opt" / "depotwatch" / "bin" / "depotwatch"
    config = tmp_path / "etc" / "depotwatch" / "depotwatch.yaml"
    env_file = tmp_path / "etc" / "depotwatch" / "depotwatch.env"
    checked = subprocess.run([str(depotwatch), "check-config", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr
    share = tmp_path / "usr" / "local" / "share"
    assert (share / "man" / "man1" / "depotwatch.1").read_text().startswith(".TH DEPOTWATCH 1")
    assert "#compdef depotwatch" in (share / "zsh" / "site-functions" / "_depotwatch").read_text()
    assert "complete " in (share / "bash-completion" / "completions" / "depotwatch").read_text()
    assert "state_dir: /var/lib/depotwatch" in config.read_text()
    assert "file_output" not in config.read_text()
    salt = env_file.read_text()
    assert "DEPOTWATCH_BADGE_SALT=" in salt
    config.write_text(config.read_text() + "# edited on site\n")
    again = _install("--root", str(tmp_path))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "keeping the existing config" in again.stdout
    assert config.read_text().endswith("# edited on site\n") and env_file.read_text() == salt
    version = subprocess.run([str(depotwatch), "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.stdout.startswith("depotwatch ")
    assert (tmp_path / "etc" / "systemd" / "system" / "depotwatch.service").read_text() == \
        UNIT.read_text()
