"""Smoke tests for the real-server fixtures in servers.py / conftest.py."""

from __future__ import annotations

import subprocess
import time

from servers import Alertmanager, InfluxDB1, Mosquitto, VictoriaMetrics, http_request


def _publish(broker: Mosquitto, topic: str, payload: str) -> int:
    cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1"]
    cmd += ["-t", topic, "-m", payload]
    return subprocess.run(cmd, timeout=10, capture_output=True).returncode


def test_mosquitto_restart_keeps_port(mosquitto: Mosquitto) -> None:
    port = mosquitto.port
    assert _publish(mosquitto, "depotwatch/smoke", "before") == 0
    mosquitto.restart()
    assert mosquitto.port == port
    assert mosquitto.is_running()
    assert _publish(mosquitto, "depotwatch/smoke", "after") == 0


def test_influxdb1_write_and_query(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("x")
    ts = time.time_ns()
    status, body = http_request(
        "POST",
        f"{influxdb1.url}/write?db=x&precision=ns",
        f"depot,site=a temp=21.5 {ts}".encode(),
    )
    assert status == 204, body
    result = influxdb1.query("x", "SELECT temp, site FROM depot")
    series = result["results"][0]["series"][0]
    assert series["columns"] == ["time", "temp", "site"]
    assert series["values"] == [[ts, 21.5, "a"]]


def test_victoriametrics_write_and_export(victoriametrics: VictoriaMetrics) -> None:
    ts = time.time_ns()
    status, body = http_request(
        "POST",
        f"{victoriametrics.url}/api/v2/write",
        f"depot,site=a temp=21.5 {ts}".encode(),
    )
    assert status == 204, body
    series = victoriametrics.wait_for_series('depot_temp{site="a"}', timeout=5)
    assert len(series) == 1
    assert series[0]["metric"] == {"__name__": "depot_temp", "site": "a"}
    assert series[0]["values"] == [21.5]
    assert series[0]["timestamps"] == [ts // 1_000_000]


def test_alertmanager_ready(alertmanager: Alertmanager) -> None:
    status, _ = http_request("GET", f"{alertmanager.url}/-/ready")
    assert status == 200
    status, body = http_request("GET", f"{alertmanager.url}/api/v2/status")
    assert status == 200
    assert alertmanager.webhook_url.encode() in body
