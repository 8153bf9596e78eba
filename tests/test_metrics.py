"""/metrics (Prometheus text, per-daemon registry) and /readyz of an in-process daemon on the
session Mosquitto broker."""

from __future__ import annotations

import json
from pathlib import Path

from inprocess_daemon import TOKEN, depot, eventually, running
from prometheus_client.parser import text_string_to_metric_families
from servers import Mosquitto, free_port


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample, keyed by name and sorted labels (the official text parser)."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_move_with_the_readings(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with running(depot(tmp_path / "state", mosquitto.port)) as live:
        for _ in range(3):
            live.publish("zigbee2mqtt/clim1", {"temperature": 18.5, "humidity": 55})
        live.publish("zigbee2mqtt/clim1", b"\x00not json")
        live.publish("zigbee2mqtt/door1", {"contact": False})
        eventually(lambda: bool(live.daemon.desk.alarms())
                   and live.daemon.pipeline.readings["zigbee2mqtt/clim1"] == 3)
        status, body = live.get("/metrics", TOKEN)
        assert status == 200
        samples = scrape(body.decode())
        assert samples[("depotwatch_readings_total",
                        (("source", "zigbee2mqtt/clim1"),))] == 3
        assert samples[("depotwatch_readings_total", (("source", "zigbee2mqtt/door1"),))] == 1
        assert samples[("depotwatch_decode_errors_total",
                        (("source", "zigbee2mqtt/clim1"),))] == 1
        assert samples[("depotwatch_alarms", (("severity", "critical"),
                                               ("state", "firing")))] == 1
        assert samples[("depotwatch_input_up", (("input", "mqtt"),))] == 1
        assert ("depotwatch_spool_backlog_points", (("target", "file"),)) in samples
        assert ("depotwatch_spool_lag_seconds", (("target", "file"),)) in samples
        assert samples[("depotwatch_points_total", ())] > 0
        assert samples[("depotwatch_rule_errors_total", ())] == 0
        # The log notifier delivers every alarm notice.
        eventually(lambda: scrape(live.get("/metrics", TOKEN)[1].decode())[
            ("depotwatch_notifier_deliveries_total", (("notifier", "log"),))] >= 1)
        assert ("depotwatch_notifier_failures_total", (("notifier", "log"),)) in samples
        # Counters move with more readings.
        live.publish("zigbee2mqtt/clim1", {"temperature": 18.6})
        eventually(lambda: scrape(live.get("/metrics", TOKEN)[1].decode())[
            ("depotwatch_readings_total", (("source", "zigbee2mqtt/clim1"),))] == 4)
        eventually(lambda: live.get("/readyz")[0] == 200)
        assert json.loads(live.get("/readyz")[1]) == {"status": "ready", "reasons": []}


def test_not_ready_without_the_broker(tmp_path: Path) -> None:
    with running(depot(tmp_path / "state", free_port()), connected=False) as live:
        status, body = live.get("/readyz")
        assert status == 503
        assert json.loads(body) == {"status": "not ready", "reasons": ["MQTT not connected"]}
        status, body = live.get("/metrics", TOKEN)
        assert status == 200
        assert scrape(body.decode())[("depotwatch_input_up", (("input", "mqtt"),))] == 0
        # /healthz stays the process's liveness: alive, only not ready.
        assert live.get("/healthz")[0] == 200


def test_metrics_want_an_officer_token(mosquitto: Mosquitto, tmp_path: Path) -> None:
    # Alarm states tell an intruder whether he was noticed: only officers (any role) read them.
    with running(depot(tmp_path / "state", mosquitto.port)) as live:
        status, body = live.get("/metrics")
        assert status == 401 and b"depotwatch_" not in body
        assert live.get("/metrics", "not-an-officer-token-000")[0] == 401
        assert live.get("/metrics", TOKEN)[0] == 200
        # Health and readiness stay open for load balancers and systemd.
        assert live.get("/healthz")[0] == 200


def test_metrics_without_a_token_when_switched_off(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = depot(tmp_path / "state", mosquitto.port)
    config["api"]["metrics_token_required"] = False
    with running(config) as live:
        status, body = live.get("/metrics")
        assert status == 200 and b"depotwatch_points_total" in body
