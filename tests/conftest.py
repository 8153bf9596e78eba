"""Session-scoped pytest fixtures that run real servers on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import Alertmanager, InfluxDB1, Mosquitto, VictoriaMetrics

# Webhook target until tests bring their own receiver (port 9 = discard).
DUMMY_WEBHOOK_URL = "http://127.0.0.1:9/"

_APT_HINT = (
    "apt-get install -y mosquitto mosquitto-clients influxdb victoria-metrics"
    " prometheus-alertmanager"
)


def _need(*binaries: str) -> None:
    """Fail (never skip) the requesting test if a server binary is missing."""
    path = "/usr/sbin:/usr/bin:/sbin:/bin"
    missing = [b for b in binaries if not (shutil.which(b) or shutil.which(b, path=path))]
    if missing:
        pytest.fail(f"missing executable(s) {', '.join(missing)}; install with: {_APT_HINT}")


def _workdir(factory: pytest.TempPathFactory, name: str) -> Path:
    return factory.mktemp(name)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A running Mosquitto broker (tests may restart()/kill() it; call start() after kill())."""
    _need("mosquitto", "mosquitto_pub")
    server = Mosquitto(_workdir(tmp_path_factory, "mosquitto"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """A running InfluxDB 1.x server."""
    _need("influxd")
    server = InfluxDB1(_workdir(tmp_path_factory, "influxdb1"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def victoriametrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """A running single-node VictoriaMetrics."""
    _need("victoria-metrics")
    server = VictoriaMetrics(_workdir(tmp_path_factory, "victoriametrics"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def alertmanager_webhook_url() -> str:
    """Webhook URL the alertmanager fixture notifies; override to capture alerts."""
    return DUMMY_WEBHOOK_URL


@pytest.fixture(scope="session")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, alertmanager_webhook_url: str
) -> Iterator[Alertmanager]:
    """A running Alertmanager sending all alerts to ``alertmanager_webhook_url``."""
    _need("prometheus-alertmanager")
    server = Alertmanager(alertmanager_webhook_url, _workdir(tmp_path_factory, "alertmanager"))
    server.start()
    try:
        yield server
    finally:
        server.close()
