"""The Grafana depot overview: Grafana's schema, and every query answered by a real InfluxDB 1.6
after the demo night and a morning of badges and portal movements, written by the daemon."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from daemon_process import DaemonProcess
from grafana_schema import schema_problems
from mqtt_probe import MqttProbe
from servers import InfluxDB1, Mosquitto

from daemon.config.schema import Config
from daemon.dashboards.climate import ClimateBands
from daemon.dashboards.overview import (
    DATASOURCE_UID,
    OVERVIEW_UID,
    depot_overview,
    render,
)

REPO = Path(__file__).resolve().parent.parent
DB = "dashboards"
SITE = "depot-north"
# The demo night at 3000x (about 14 s) instead of `make demo`'s 1200x: the same messages.
DEMO_SPEED = "3000"
RIFLE_1, RIFLE_2 = "E28011700000020A1B2C3D01", "E28011700000020A1B2C3D02"


def _targets(dashboard: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield f"{panel['title']}/{target['refId']}", target
    for annotation in dashboard["annotations"]["list"]:
        if annotation["datasource"]["type"] == "influxdb":
            yield f"annotation {annotation['name']}", annotation["target"]


OVERVIEW = depot_overview()
TARGETS = dict(_targets(OVERVIEW))


# -- the dashboard model ------------------------------------------------------------------------

def test_committed_json_is_what_render_writes() -> None:
    committed = json.loads((REPO / "dashboards" / "depot-overview.json").read_text())
    # If this fails: depotwatch dashboards render -o dashboards/depot-overview.json
    assert committed == render()[0]


def test_dashboards_follow_grafana_schema() -> None:
    config = Config.model_validate(yaml.safe_load(
        (REPO / "examples" / "demo-depot.yaml").read_text()))
    for dashboard in (*render(), *render(config), depot_overview(None)):
        assert schema_problems(dashboard) == []


@pytest.mark.parametrize(("mistake", "expected"), [
    (lambda d: d["panels"][1]["options"].update(colourMode="background"), "colourMode"),
    (lambda d: d["panels"][2]["gridPos"].update(h="7"), "grid_pos.h"),
    (lambda d: d["panels"][3].update(type="timeseriez"), "unknown type"),
    (lambda d: d["panels"][2]["transformations"][0].update(option={}), "option"),
    (lambda d: d.update(graphTooltip=7), "graph_tooltip"),
    (lambda d: d["templating"]["list"][1].update(definition="x"), "definition"),
])
def test_schema_check_catches_mistakes(mistake: Any, expected: str) -> None:
    dashboard = depot_overview()
    mistake(dashboard)
    problems = schema_problems(dashboard)
    assert any(expected in p for p in problems), problems


def test_climate_bands_come_from_the_config() -> None:
    data = yaml.safe_load((REPO / "examples" / "demo-depot.yaml").read_text())
    data["rules"] = [{"type": "climate", "temperature_warning_c": 27.5,
                      "temperature_alarm_c": 35.0, "propellant_humidity_alarm_pct": 55.0}]
    dashboard = render(Config.model_validate(data))[0]
    panels = {p["title"]: p for p in dashboard["panels"]}
    steps = panels["Temperature"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, 27.5, 35.0, 50.0]
    humidity = panels["Relative humidity"]["fieldConfig"]
    assert [s["value"] for s in humidity["defaults"]["thresholds"]["steps"]] == [None, 65.0, 70.0]
    # SH2 is the propellant magazine: its 55 % alarm lies under the 65 % warning.
    (override,) = humidity["overrides"]
    assert override["matcher"]["options"] == "^(SH2) .*"
    assert [s["value"] for s in override["properties"][0]["value"]["steps"]] == [None, 55.0]
    assert dashboard["templating"]["list"][1]["current"]["value"] == "depot-north"
    data["rules"] = [{"type": "climate", "enabled": False}]
    assert ClimateBands.from_config(Config.model_validate(data)) is None


def test_provisioning_points_at_the_dashboards() -> None:
    base = REPO / "dashboards" / "provisioning"
    datasources = yaml.safe_load((base / "datasources" / "depotwatch.yaml").read_text())
    (source,) = datasources["datasources"]
    assert datasources["apiVersion"] == 1
    assert source["type"] == "influxdb" and source["uid"] == DATASOURCE_UID
    assert source["jsonData"]["version"] == "InfluxQL"
    providers = yaml.safe_load((base / "dashboards" / "depotwatch.yaml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    assert OVERVIEW["uid"] == OVERVIEW_UID
    variable = OVERVIEW["templating"]["list"][0]
    assert variable["type"] == "datasource" and variable["current"]["value"] == DATASOURCE_UID


def test_queries_are_influxql_and_never_read_badge_numbers() -> None:
    for name, target in TARGETS.items():
        query = target["query"]
        assert target.get("rawQuery", True) and query.startswith("SELECT"), name
        assert "badge" not in query, name
        # `key` is an InfluxQL keyword: only ever quoted.
        assert not re.search(r'(?<!")\bkey\b(?!")', query.replace("WITH KEY", "")), name
        assert target.get("datasource", {"uid": "${datasource}"})["uid"] == "${datasource}"


# -- every query against a real InfluxDB after a simulated night --------------------------------

@dataclass(frozen=True)
class Loaded:
    """The database the night and morning went into, and the time range that covers both."""

    influxdb: InfluxDB1
    start_ms: int
    end_ms: int


def _morning_config(mosquitto: Mosquitto, influxdb1: InfluxDB1, state_dir: Path,
                    read_at: dt.time, order_ends: dt.datetime) -> dict[str, Any]:
    """The demo depot plus badge readers, a roster, a portal and an order, writing InfluxDB."""
    config: dict[str, Any] = yaml.safe_load(
        resources.files("daemon.cli").joinpath("demo_depot.yaml").read_text(encoding="utf-8"))
    for door in config["doors"]:
        if door["id"] in ("SH1-D1", "SH2-D1"):
            door["badge_reader"] = door["id"].lower().replace("-d", "-reader")
    config.update({
        "state_dir": str(state_dir),
        "badge_salt": "dashboard-test-salt",
        "roster": [{"name": "Sgt. Anna Berger", "badge": "1001", "zones": ["SH1", "SH2"]}],
        "portals": [{"id": "P1", "storehouse": "SH1", "inner_antenna": "p1-inner",
                     "outer_antenna": "p1-outer"}],
        "items": [{"epc": RIFLE_1, "name": "Rifle G3 #10231", "storehouse": "SH1"},
                  {"epc": RIFLE_2, "name": "Rifle G3 #10232", "storehouse": "SH1"}],
        "movement_orders": [{"id": "MO-7", "portal": "P1", "items": [RIFLE_1, RIFLE_2],
                             "valid_from": (order_ends - dt.timedelta(hours=1)).isoformat(),
                             "valid_until": order_ends.isoformat()}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                 "client_id": "depotwatch-dashboards", "subscriptions": [
                     {"topic": "dash/z2m/{sensor}", "decoder": {"type": "zigbee2mqtt"}},
                     {"topic": "dash/badge/{sensor}", "decoder": {
                         "type": "json_fields", "fields": {"badge": "card"},
                         "required": ["badge"]}},
                     {"topic": "dash/rfid/{sensor}", "decoder": {
                         "type": "json_fields", "fields": {"epc": "epc", "rssi_dbm": "rssi"},
                         "required": ["epc"]}}]},
        "influxdb": [{"api": "v1", "url": influxdb1.url, "database": DB,
                      "flush_interval_s": 0.2}],
        "rules": [{"type": "climate_record", "read_at": read_at.isoformat()},
                  {"type": "sensor_silent", "enabled": False}],
        "tick_interval_s": 0.2,
        "api": {"listen_port": 0},  # 8470 may be another run's daemon
    })
    config.pop("file_output", None)
    return config


async def _morning_traffic(port: int, order_ends: float) -> None:
    async with MqttProbe(port) as devices:
        for sensor, temperature in (("sh1-climate1", 19.0), ("sh2-climate1", 22.5)):
            devices.publish(f"dash/z2m/{sensor}", {"temperature": temperature, "humidity": 50})
        devices.publish("dash/badge/sh1-reader1", {"card": "1001"})   # on the roster
        devices.publish("dash/badge/sh2-reader1", {"card": "9999"})   # unknown: an alarm
        devices.publish("dash/rfid/p1-inner", {"epc": RIFLE_1, "rssi": -50})
        await asyncio.sleep(0.5)
        devices.publish("dash/rfid/p1-outer", {"epc": RIFLE_1, "rssi": -48})  # out, on MO-7
        # Past 08:00's stand-in and the order's end: the record and the order are written.
        await asyncio.sleep(max(0.0, order_ends - time.time()) + 0.6)
        devices.publish("dash/z2m/sh1-climate1", {"temperature": 19.5, "humidity": 51})
        await asyncio.sleep(0.5)


def _play_morning(mosquitto: Mosquitto, influxdb1: InfluxDB1, workdir: Path) -> None:
    zone = ZoneInfo("Europe/Vienna")
    closes = dt.datetime.now(zone).replace(microsecond=0) + dt.timedelta(seconds=9)
    daemon = DaemonProcess(workdir, _morning_config(
        mosquitto, influxdb1, workdir / "state", closes.time(), closes))
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        asyncio.run(_morning_traffic(mosquitto.port, closes.timestamp()))
    finally:
        assert daemon.stop() == 0, daemon.log()[-4000:]


@pytest.fixture(scope="module")
def loaded(influxdb1: InfluxDB1, mosquitto: Mosquitto,
           tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    influxdb1.create_database(DB)
    night = tmp_path_factory.mktemp("night")
    started_ns = time.time_ns()
    # The night (on its own embedded broker) and the morning (a daemon on the test broker)
    # run side by side to save time.
    demo = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "demo", "--speed", DEMO_SPEED,
         "--state-dir", str(night)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _play_morning(mosquitto, influxdb1, tmp_path_factory.mktemp("morning"))
        out, _ = demo.communicate(timeout=150)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.communicate()
    assert demo.returncode == 0, out[-4000:]
    points = (night / "points.lp").read_text()
    influxdb1.write(DB, points)
    first_ns = int(points.split("\n", 1)[0].rsplit(" ", 1)[1])
    # The daemon's writer has flushed before it exited; make sure the server shows it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = influxdb1.query(DB, 'SHOW MEASUREMENTS')["results"][0].get("series", [])
        names = {row[0] for series in found for row in series["values"]}
        if {"access", "portal", "movement_order", "climate_daily", "door"} <= names:
            break
        time.sleep(0.1)
    hour_ms = 3_600_000
    return Loaded(influxdb1, min(first_ns, started_ns) // 1_000_000 - hour_ms,
                  time.time_ns() // 1_000_000 + hour_ms)


def _regex_escape(value: str) -> str:
    # Grafana's escapeRegex, which its InfluxDB datasource applies to multi-value variables.
    return re.sub(r"[\\^$*+?.()|\[\]{}/]", lambda m: "\\" + m.group(0), value)


def _interpolate(query: str, values: dict[str, list[str]], loaded: Loaded) -> str:
    """What Grafana sends: time filter, interval, then each variable (multi: `(a|b)`)."""
    interval_s = max(1, (loaded.end_ms - loaded.start_ms) // 1000 // 1000)  # ~1000 points
    query = query.replace("$timeFilter",
                          f"time >= {loaded.start_ms}ms and time <= {loaded.end_ms}ms")
    query = query.replace("$__interval", f"{interval_s}s")
    for name in sorted(values, key=len, reverse=True):
        chosen = values[name]
        text = chosen[0] if name == "site" else (
            "(" + "|".join(_regex_escape(v) for v in chosen) + ")" if len(chosen) > 1
            else _regex_escape(chosen[0]))
        query = query.replace(f"${name}", text)
    return query


def _rows(loaded: Loaded, query: str) -> list[dict[str, Any]]:
    result = loaded.influxdb.query(DB, query)["results"][0]
    assert "error" not in result, (query, result)
    rows = []
    for series in result.get("series", []):
        for values in series["values"]:
            rows.append({**series.get("tags", {}), **dict(zip(series["columns"], values,
                                                                strict=True))})
    return rows


@pytest.fixture(scope="module")
def variables(loaded: Loaded) -> dict[str, list[str]]:
    """Each variable's options, in dashboard order: Depot = depot-north, the others All."""
    chosen: dict[str, list[str]] = {}
    for variable in OVERVIEW["templating"]["list"]:
        if variable["type"] != "query":
            continue
        # Grafana drops duplicates (one series per measurement) and sorts (`sort: 1`).
        options = sorted({r["value"] for r in _rows(
            loaded, _interpolate(variable["query"], chosen, loaded))})
        assert options, f"variable {variable['name']} has no options"
        chosen[variable["name"]] = [SITE] if variable["name"] == "site" else options
    assert SITE in chosen["site"] and chosen["storehouse"] == ["SH1", "SH2"]
    assert chosen["door"] == ["SH1-D1", "SH1-D2", "SH2-D1", "SH2-D2"]
    return chosen


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_query_returns_rows(name: str, loaded: Loaded,
                                  variables: dict[str, list[str]]) -> None:
    query = _interpolate(TARGETS[name]["query"], variables, loaded)
    assert not re.search(r"\$\w", query), query
    if "spool_points" in query and not _rows(loaded, 'SHOW FIELD KEYS FROM "gateway"'
                                             ).count({"fieldKey": "spool_points",
                                                      "fieldType": "float"}):
        pytest.skip("this daemon writes no spool fields yet")
    assert _rows(loaded, query), f"{name}: no rows for {query}"


def test_panels_show_what_the_night_and_morning_did(loaded: Loaded,
                                                    variables: dict[str, list[str]]) -> None:
    def rows(name: str) -> list[dict[str, Any]]:
        return _rows(loaded, _interpolate(TARGETS[name]["query"], variables, loaded))

    # Active alarms: the last change of each key, as the panel's transformations take it.
    last: dict[str, str] = {}
    for row in sorted(rows("Active alarms/A"), key=lambda r: r["time"]):
        last[row["key"]] = row["state"]
    firing = {key for key, state in last.items() if state == "firing"}
    assert "climate_swing.sh2-climate1" in firing and "badge_access.SH2-D1" in firing
    assert last["door_armed.SH1-D2"] == "resolved"
    badges = {(r["person"], r["door"], r["result"]) for r in rows("Last badge events/A")}
    assert badges == {("Sgt. Anna Berger", "SH1-D1", "granted"), ("", "SH2-D1", "unknown")}
    (passage,) = rows("Portal movements/A")
    assert (passage["item"], passage["direction"], passage["order"]) == (
        "Rifle G3 #10231", "out", "MO-7")
    (order,) = rows("Movement orders closed/A")
    assert (order["read_count"], order["expected_count"], order["complete"]) == (1, 2, False)
    daily = {r["storehouse"]: r for r in rows("Daily climate record (08:00)/A")}
    assert daily["SH2"]["max_c"] == 22.5 and daily["SH1"]["min_c"] == 19.0
    temperatures = [r["mean"] for r in rows("Temperature/A")]
    assert max(temperatures) > OVERVIEW["panels"][5]["fieldConfig"]["defaults"][
        "thresholds"]["steps"][1]["value"]  # the propellant magazine's cooling failed
    doors = {r["door"]: r["last"] for r in rows("Doors now/A")}
    assert doors == {"SH1-D1": False, "SH1-D2": False, "SH2-D1": False, "SH2-D2": False}
    assert {r["component"]: r["last"] for r in rows("Gateway inputs/A")}["mqtt"] is True
