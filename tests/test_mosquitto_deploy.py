"""The shipped Mosquitto configs (deploy/mosquitto/), run as Debian lays them out: each starts;
a gateway bridged to an HQ broker over mutual TLS carries an alert across; the per-device ACL
refuses a sensor that publishes another sensor's topic; a device logging in with the daemon's
client id cannot take the daemon's session."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from daemon_process import DaemonProcess
from servers import _Server, free_port

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "deploy" / "mosquitto"
SITE = "depot-north"
PASSWORDS = {"depotwatch": "daemon-pw", "sh1-door1": "door1-pw", "sh1-door2": "door2-pw",
             "zigbee2mqtt": "z2m-pw", SITE: "bridge-secret", "hq-reader": "reader-pw"}

# Debian's /etc/mosquitto/mosquitto.conf, should the machine have none.
DEBIAN_MAIN = """pid_file /run/mosquitto/mosquitto.pid
persistence true
persistence_location /var/lib/mosquitto/
log_dest file /var/log/mosquitto/mosquitto.log
include_dir /etc/mosquitto/conf.d
"""


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if found is None:
        pytest.fail(f"{name} missing: apt-get install mosquitto mosquitto-clients openssl")
    return found


def _openssl(*args: str) -> None:
    subprocess.run([_binary("openssl"), *args], check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A test CA; server certificates for 127.0.0.1; client certificates by common name."""
    d = tmp_path_factory.mktemp("pki")
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2"]
    _openssl("req", "-x509", *key, "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
             "-subj", "/CN=depotwatch test CA")
    for name, san in (("gateway", True), ("hq", True), ("bridge", False), ("reader", False)):
        extensions = ["-addext", "basicConstraints=critical,CA:FALSE"]
        if san:
            extensions += ["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        _openssl("req", "-x509", *key, "-keyout", str(d / f"{name}.key"),
                 "-out", str(d / f"{name}.crt"), "-subj", f"/CN={name}",
                 "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"), *extensions)
    return d


class Broker(_Server):
    """Mosquitto started on a Debian-style /etc/mosquitto tree under a temp root."""

    name = "mosquitto-shipped"

    def __init__(self, root: Path, ready_port: int) -> None:
        super().__init__(root / "proc")
        self.root = root
        self.ready_port = ready_port
        self.config_path = root / "etc" / "mosquitto" / "mosquitto.conf"
        self.broker_log = root / "var" / "log" / "mosquitto" / "mosquitto.log"

    def _command(self) -> list[str]:
        return [_binary("mosquitto"), "-c", str(self.config_path)]

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.ready_port), timeout=0.5):
                return True
        except OSError:
            return False

    def _log_tail(self) -> str:
        return super()._log_tail() + "\n--- broker log ---\n" + self.log()

    def log(self) -> str:
        return self.broker_log.read_text(errors="replace") if self.broker_log.exists() else ""

    def wait_log(self, text: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert time.monotonic() < deadline, f"{text!r} not in the broker log:\n{self.log()}"
            time.sleep(0.02)


def _localize(text: str, root: Path, replace: dict[str, str]) -> str:
    """A shipped file with its system paths under `root` and test ports and addresses."""
    for old, new in replace.items():
        assert old in text, f"the shipped file no longer has {old!r}"
        text = text.replace(old, new)
    for path in ("/etc/mosquitto/", "/var/lib/mosquitto/", "/var/log/mosquitto/",
                 "/run/mosquitto/"):
        text = text.replace(path, f"{root}{path}")
        (root / path.strip("/")).mkdir(parents=True, exist_ok=True)
    return text


def _layout(root: Path, pki: Path, conf_d: dict[str, dict[str, str]], acl: str,
            passwd: str, users: list[str], certs: dict[str, str]) -> None:
    """/etc/mosquitto as the Debian package leaves it, plus our files in conf.d."""
    etc = root / "etc" / "mosquitto"
    (etc / "conf.d").mkdir(parents=True)
    (etc / "certs").mkdir()
    debian = Path("/etc/mosquitto/mosquitto.conf")
    main = debian.read_text() if debian.exists() else DEBIAN_MAIN
    # As root, mosquitto would drop to user mosquitto, who cannot read the temp dir.
    (etc / "mosquitto.conf").write_text("user root\nlog_type all\n" + _localize(main, root, {}))
    for name, replace in conf_d.items():
        (etc / "conf.d" / name).write_text(_localize((SHIPPED / name).read_text(), root,
                                                     replace))
    shutil.copy(SHIPPED / acl, etc / acl)
    for target, source in certs.items():
        shutil.copy(pki / source, etc / "certs" / target)
    passwd_path = etc / passwd
    passwd_path.touch()
    for user in users:
        subprocess.run([_binary("mosquitto_passwd"), "-b", str(passwd_path), user,
                        PASSWORDS[user]], check=True, capture_output=True, timeout=10)


@dataclass
class Gateway:
    broker: Broker
    local_port: int
    tls_port: int


def _gateway(root: Path, pki: Path, hq_port: int | None = None) -> Gateway:
    local, tls = free_port(), free_port()
    conf_d = {"depotwatch.conf": {"listener 1883 127.0.0.1": f"listener {local} 127.0.0.1",
                                  "listener 8883\n": f"listener {tls} 127.0.0.1\n"}}
    if hq_port is not None:
        conf_d["bridge-hq.conf"] = {"address hq.example.org:8883": f"address 127.0.0.1:{hq_port}",
                                    "remote_password CHANGE-ME":
                                        f"remote_password {PASSWORDS[SITE]}"}
    _layout(root, pki, conf_d, "depotwatch.acl", "depotwatch.passwd",
            ["depotwatch", "sh1-door1", "sh1-door2", "zigbee2mqtt"],
            {"ca.crt": "ca.crt", "gateway.crt": "gateway.crt", "gateway.key": "gateway.key",
             "hq-ca.crt": "ca.crt", "bridge.crt": "bridge.crt", "bridge.key": "bridge.key"})
    return Gateway(Broker(root, local), local, tls)


def _hq(root: Path, pki: Path) -> Broker:
    port = free_port()
    _layout(root, pki, {"hq.conf": {"listener 8883\n": f"listener {port} 127.0.0.1\n"}},
            "hq.acl", "hq.passwd", [SITE, "hq-reader"],
            {"ca.crt": "ca.crt", "hq.crt": "hq.crt", "hq.key": "hq.key"})
    return Broker(root, port)


@pytest.fixture
def running() -> Iterator[list[Broker]]:
    brokers: list[Broker] = []
    yield brokers
    for broker in brokers:
        broker.close()


def _start(running: list[Broker], broker: Broker) -> Broker:
    running.append(broker)
    broker.start()
    return broker


@pytest.mark.parametrize("layout", ["gateway", "gateway with the HQ bridge", "hq"])
def test_each_shipped_config_starts(layout: str, tmp_path: Path, pki: Path,
                                    running: list[Broker]) -> None:
    if layout == "hq":
        broker = _start(running, _hq(tmp_path, pki))
    else:
        # The bridge's HQ is down: the gateway broker starts anyway and keeps retrying.
        hq_port = free_port() if "bridge" in layout else None
        broker = _start(running, _gateway(tmp_path, pki, hq_port).broker)
    broker.wait_log("mosquitto version")
    time.sleep(0.2)
    assert broker.is_running(), broker.log()
    # With HQ down the bridge reports its failed connects, and retries. A TCP connect closed
    # before any TLS handshake (the harness's readiness probe on a TLS port) logs
    # "unexpected eof while reading": not a config error.
    errors = [line for line in broker.log().splitlines()
              if "Error" in line and "Error creating bridge" not in line
              and "unexpected eof while reading" not in line]
    assert errors == [], broker.log()


def _mqtt(tool: str, port: int, user: str, *args: str, tls: tuple[Path, str] | None = None
          ) -> list[str]:
    command = [_binary(tool), "-h", "127.0.0.1", "-p", str(port), "-u", user,
               "-P", PASSWORDS[user], "-V", "mqttv5", *args]
    if tls is not None:
        pki, client = tls
        command += ["--cafile", str(pki / "ca.crt")]
        if client:
            command += ["--cert", str(pki / f"{client}.crt"), "--key", str(pki / f"{client}.key")]
    return command


def _subscribe(port: int, user: str, topics: list[str], count: int,
               tls: tuple[Path, str] | None = None) -> subprocess.Popen[str]:
    filters = [a for t in topics for a in ("-t", t)]
    return subprocess.Popen(
        _mqtt("mosquitto_sub", port, user, *filters, "-v", "-q", "1", "-C", str(count),
              "-W", "15", "-i", f"sub-{user}", tls=tls),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _publish(port: int, user: str, topic: str, message: str, *extra: str,
             tls: tuple[Path, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(_mqtt("mosquitto_pub", port, user, "-t", topic, "-m", message,
                                "-q", "1", *extra, tls=tls),
                          capture_output=True, text=True, timeout=15)


def test_bridge_carries_an_alert_to_hq(tmp_path: Path, pki: Path,
                                       running: list[Broker]) -> None:
    hq = _start(running, _hq(tmp_path / "hq", pki))
    gateway = _gateway(tmp_path / "gateway", pki, hq.ready_port)
    _start(running, gateway.broker)
    hq.wait_log(f"as depotwatch-bridge-{SITE}")  # mutual TLS and the site's password passed
    reader = _subscribe(hq.ready_port, "hq-reader", ["depotwatch/#"], 2, tls=(pki, "reader"))
    hq.wait_log("Sending SUBACK to sub-hq-reader")
    alert = '{"key": "door_armed.SH1-D2", "state": "firing", "severity": "critical"}'
    done = _publish(gateway.local_port, "depotwatch",
                    f"depotwatch/{SITE}/alerts/door_armed.SH1-D2", alert, "-r")
    assert done.returncode == 0, done.stdout + done.stderr
    out, _ = reader.communicate(timeout=20)
    assert sorted(out.splitlines()) == [
        f"depotwatch/{SITE}/alerts/door_armed.SH1-D2 {alert}",
        f"depotwatch/{SITE}/gateway/bridge 1",  # gateway health: the bridge is up
    ], out


def test_acl_refuses_a_sensor_publishing_another_sensors_topic(
        tmp_path: Path, pki: Path, running: list[Broker]) -> None:
    gateway = _gateway(tmp_path, pki)
    broker = _start(running, gateway.broker)
    # The daemon's view: every device topic and the alerts.
    daemon = _subscribe(gateway.local_port, "depotwatch", ["zigbee2mqtt/#", "depotwatch/#"], 1)
    broker.wait_log("Sending SUBACK to sub-depotwatch")
    device = (pki, "")  # devices authenticate by password over TLS
    for forged in ("zigbee2mqtt/sh1-door2", f"depotwatch/{SITE}/alerts/door_armed.SH1-D2"):
        refused = _publish(gateway.tls_port, "sh1-door1", forged, '{"contact": true}',
                           tls=device)
        assert "not authorized" in (refused.stdout + refused.stderr).lower(), refused
    # Neither a wrong password nor no login gets in at all.
    assert _publish(gateway.tls_port, "sh1-door2", "zigbee2mqtt/sh1-door2", "{}", "-P", "x",
                    tls=device).returncode != 0
    anonymous = [_binary("mosquitto_pub"), "-h", "127.0.0.1", "-p", str(gateway.local_port),
                 "-t", "zigbee2mqtt/sh1-door2", "-m", "{}"]
    assert subprocess.run(anonymous, capture_output=True, timeout=15).returncode != 0
    own = _publish(gateway.tls_port, "sh1-door1", "zigbee2mqtt/sh1-door1", '{"contact": false}',
                   tls=device)
    assert own.returncode == 0, own.stdout + own.stderr
    out, _ = daemon.communicate(timeout=20)
    assert out.splitlines() == ['zigbee2mqtt/sh1-door1 {"contact": false}'], out
    assert "Denied PUBLISH from sh" in broker.log() or "denied" in broker.log().lower()


def _daemon_config(gateway: Gateway, state_dir: Path) -> dict[str, Any]:
    """The daemon as README "Deployment" sets it up: its own login, client id = username."""
    return {
        "site": {"id": SITE}, "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "armed": {"mode": "never"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "sh1-door1"}],
        "mqtt": {"host": "127.0.0.1", "port": gateway.local_port, "client_id": "depotwatch",
                 "username": "depotwatch", "password": PASSWORDS["depotwatch"],
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "tick_interval_s": 0.1,
        "api": {"listen_port": 0},  # 8470 may be another run's daemon
    }


def test_a_device_with_the_daemons_client_id_cannot_take_its_session(
        tmp_path: Path, pki: Path, running: list[Broker]) -> None:
    gateway = _gateway(tmp_path / "broker", pki)
    broker = _start(running, gateway.broker)
    daemon = DaemonProcess(tmp_path, _daemon_config(gateway, tmp_path / "state"))
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        broker.wait_log("as depotwatch (")
        # The issue's attack: a device's own login, the daemon's client id (it is in the
        # config file), connecting again and again over the devices' listener.
        for _ in range(3):
            thief = subprocess.run(
                _mqtt("mosquitto_sub", gateway.tls_port, "sh1-door2", "-i", "depotwatch",
                      "-t", "zigbee2mqtt/sh1-door2", "-W", "1", tls=(pki, "")),
                capture_output=True, text=True, timeout=15)
            assert "not authori" not in (thief.stdout + thief.stderr).lower(), thief
        # The broker named the device's connection after its username, not the daemon's id.
        assert broker.log().count("as sh1-door2 (") == 3, broker.log()
        assert "already connected" not in broker.log(), broker.log()
        own = _publish(gateway.tls_port, "sh1-door1", "zigbee2mqtt/sh1-door1",
                       '{"contact": false, "tamper": true}', tls=(pki, ""))
        assert own.returncode == 0, own.stdout + own.stderr
        daemon.wait_log("tamper")  # the session stayed the daemon's: the reading reached it
        assert "lost" not in daemon.log(), daemon.log()
        assert daemon.log().count("MQTT connected") == 1, daemon.log()
    finally:
        assert daemon.stop() == 0, daemon.log()
