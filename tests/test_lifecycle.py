"""Every item accounted for (issue 27), against the real broker, InfluxDB and daemon: a
consignment of 50 tagged rifles received and stored, 10 issued and returned through the portal
under a movement order, 1 destroyed on a certificate with a second officer, 1 carried out with
no order; the consignment's custody record shows exactly those histories, signed, and both
verifiers refuse it once a byte of it, or of the audit log behind it, is changed. A destroyed
item read again alarms; an item marked lost opens a signed loss report and its alarm."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from inprocess_daemon import Running, eventually, running
from servers import InfluxDB1, Mosquitto
from test_living_records import (
    CLERK,
    CLERK_TOKEN,
    SECOND,
    SECOND_TOKEN,
    alarm_keys,
    call,
    settings,
    window,
)

from daemon.cli.main import main
from daemon.records.report import parse_csv
from daemon.records.signing import GatewayKey, key_path

ROOT = Path(__file__).resolve().parents[1]
STANDALONE = ROOT / "deploy" / "verify_report.py"
EPCS = [f"E2801160600002{n:010X}" for n in range(50)]
ISSUED, DESTROYED, UNORDERED, LOST = EPCS[:10], EPCS[10], EPCS[11], EPCS[12]
SHELVED = EPCS[20]


def _config(tmp_path: Path, mosquitto: Mosquitto, influxdb1: InfluxDB1) -> dict[str, Any]:
    database = f"lifecycle_{uuid.uuid4().hex[:8]}"
    influxdb1.create_database(database)
    config = settings(tmp_path / "state", mosquitto.port)
    config["items"] = []
    config["climate_sensors"] = [{"id": "clim1", "storehouse": "SH1"}]
    config["influxdb"] = [{"api": "v1", "url": influxdb1.url, "database": database,
                           "flush_interval_s": 0.2}]
    return config


def _receive(daemon: Running) -> None:
    status, answer = call(daemon, "POST", "/api/v1/records/consignments", CLERK_TOKEN, {
        "id": "C-2026-11", "exporting_state": "Republic of Examplia",
        "reference": "EUC-4471/2026", "storehouse": "SH1",
        "items": [{"epc": epc, "serial": f"SN{n:05d}", "name": f"Rifle {n}"}
                  for n, epc in enumerate(EPCS)]})
    assert status == 200, answer
    for epc in EPCS:
        status, answer = call(daemon, "POST", f"/api/v1/records/items/{epc}/step",
                              CLERK_TOKEN, {"state": "stored"})
        assert status == 200, answer


def _through(daemon: Running, epc: str, *, out: bool) -> None:
    first, second = ("rfid/ant_in", "rfid/ant_out") if out else ("rfid/ant_out", "rfid/ant_in")
    daemon.publish(first, {"epc": epc})
    time.sleep(0.02)
    daemon.publish(second, {"epc": epc})


def _state(daemon: Running, epc: str) -> str:
    status, answer = call(daemon, "GET", f"/api/v1/records/items/{epc}", CLERK_TOKEN)
    assert status == 200, answer
    return str(answer["state"])


def _play(daemon: Running) -> None:
    """The consignment's life, through the API and the portal."""
    daemon.publish("zigbee2mqtt/clim1", {"temperature": 21.5, "humidity": 45.0})
    _receive(daemon)
    status, answer = call(daemon, "PUT", "/api/v1/records/movement_orders/MO-11", CLERK_TOKEN,
                          {"portal": "P1", "items": ISSUED, **window()})
    assert status == 202, answer  # weapons: a second officer
    status, answer = call(daemon, "POST",
                          f"/api/v1/records/parked/{answer['parked']['id']}/approve",
                          SECOND_TOKEN)
    assert status == 200, answer
    for epc in ISSUED:
        _through(daemon, epc, out=True)
    eventually(lambda: all(_state(daemon, e) == "issued" for e in ISSUED))
    for epc in ISSUED:
        _through(daemon, epc, out=False)
    eventually(lambda: all(_state(daemon, e) == "returned" for e in ISSUED))
    # Destruction takes the item off the book: its certificate, and a second officer.
    status, answer = call(daemon, "POST", f"/api/v1/records/items/{DESTROYED}/step",
                          CLERK_TOKEN, {"state": "destroyed"})
    assert status == 422 and "document" in json.dumps(answer), answer
    status, answer = call(daemon, "POST", f"/api/v1/records/items/{DESTROYED}/step",
                          CLERK_TOKEN, {"state": "destroyed", "document": "DC-0042"})
    assert status == 202, answer
    status, answer = call(daemon, "POST",
                          f"/api/v1/records/parked/{answer['parked']['id']}/approve",
                          SECOND_TOKEN)
    assert status == 200, answer
    assert _state(daemon, DESTROYED) == "destroyed"
    # On the shelf: read twice by the inventory reader, one point (the hour's first read).
    daemon.publish("rfid/inv1", {"epc": SHELVED})
    daemon.publish("rfid/inv1", {"epc": SHELVED})
    _through(daemon, UNORDERED, out=True)
    eventually(lambda: f"portal_movement.{UNORDERED}" in alarm_keys(daemon))
    # Read again after its destruction: an alarm.
    daemon.publish("rfid/inv1", {"epc": DESTROYED})
    eventually(lambda: f"item_state.destroyed.{DESTROYED}" in alarm_keys(daemon))
    status, answer = call(daemon, "POST", f"/api/v1/records/items/{DESTROYED}/step",
                          CLERK_TOKEN, {"state": "stored"})
    assert status == 422 and "cannot become stored" in json.dumps(answer), answer


def _influx_holds(influxdb1: InfluxDB1, database: str, count: int,
                  measurement: str = "portal") -> bool:
    found = influxdb1.query(database, f'SELECT count("epc") FROM "{measurement}"')
    series = found["results"][0].get("series")
    return bool(series) and int(series[0]["values"][0][1]) >= count


def _verifiers(document: Path, public: Path, audit: Path | None = None) -> list[int]:
    extra = ["--audit", str(audit)] if audit else []
    ours = subprocess.run([sys.executable, "-m", "daemon.cli", "verify", str(document),
                           "--key", str(public), *extra], capture_output=True, cwd=ROOT)
    theirs = subprocess.run([sys.executable, str(STANDALONE), str(document), "--key",
                             str(public), *extra], capture_output=True)
    return [ours.returncode, theirs.returncode]


def _expected(epc: str) -> list[tuple[str, str]]:
    """(event, state or direction) of an item's custody history."""
    steps = [("step", "received"), ("step", "stored")]
    if epc in ISSUED:
        return [*steps, ("passage P1", "out"), ("step", "issued"), ("passage P1", "in"),
                ("step", "returned")]
    if epc == DESTROYED:
        return [*steps, ("step", "destroyed")]
    if epc == UNORDERED:
        return [*steps, ("passage P1", "out")]
    return steps


def test_a_consignment_custody_record_shows_every_history_and_is_verifiable(
        mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path) -> None:
    config = _config(tmp_path, mosquitto, influxdb1)
    config_file = tmp_path / "depotwatch.yaml"
    config_file.write_text(yaml.safe_dump(config))
    with running(config) as daemon:
        _play(daemon)
        eventually(lambda: _influx_holds(influxdb1, config["influxdb"][0]["database"], 21))
        eventually(lambda: _influx_holds(influxdb1, config["influxdb"][0]["database"], 2,
                                         "inventory"))
    today = dt.datetime.now(dt.UTC).date()
    span = ["--from", str(today - dt.timedelta(days=1)), "--to", str(today + dt.timedelta(2))]
    report = tmp_path / "custody.csv"
    assert main(["consignment", "report", "C-2026-11", *span, "-c", str(config_file),
                 "-o", str(report)]) == 0
    tables = parse_csv(report.read_text(encoding="utf-8"))
    assert tables[("consignment", "")][0]["reference"] == "EUC-4471/2026"
    items = {row["epc"]: row for row in tables[("items", "")]}
    assert len(items) == 50 and items[DESTROYED]["state"] == "destroyed"
    assert {items[e]["state"] for e in ISSUED} == {"returned"}
    history: dict[str, list[dict[str, str]]] = {}
    for row in tables[("custody", "")]:
        history.setdefault(row["epc"], []).append(row)
    for epc in EPCS:
        assert [(r["event"], r["state"]) for r in history[epc]] == _expected(epc), epc
    destruction = history[DESTROYED][-1]
    assert (destruction["by"], destruction["approved_by"], destruction["document"]) == (
        CLERK, SECOND, "DC-0042")
    assert {r["document"] for e in ISSUED for r in history[e][2:]} == {"MO-11"}
    assert history[UNORDERED][-1]["document"] == ""
    assert history[EPCS[0]][0]["document"] == "EUC-4471/2026 (consignment C-2026-11)"
    shelves = {row["epc"]: row for row in tables[("shelf_reads", "")]}
    assert set(shelves) == {SHELVED, DESTROYED}
    assert shelves[SHELVED]["first_read"] == shelves[SHELVED]["last_read"]
    assert (shelves[SHELVED]["serial"], shelves[SHELVED]["storehouse"],
            shelves[SHELVED]["readers"]) == ("SN00020", "SH1", "inv1")
    found = influxdb1.query(config["influxdb"][0]["database"],
                            'SELECT count("epc") FROM "inventory"')
    assert found["results"][0]["series"][0]["values"][0][1] == 2  # not one per raw read
    days = tables[("climate_daily", "SH1")]
    assert any(d["within_limits"] == "yes" and d["max_c"] == "21.5" for d in days)
    alarms = tables[("alarms", "SH1")]
    assert {f"portal_movement.{UNORDERED}", f"item_state.destroyed.{DESTROYED}"} <= {
        a["key"] for a in alarms}
    state = Path(config["state_dir"])
    public = tmp_path / "gateway.pub"
    public.write_text(GatewayKey.load(key_path(state)).public_pem())
    audit = state / "audit.jsonl"
    assert _verifiers(report, public, audit) == [0, 0]
    original = report.read_bytes()
    report.write_bytes(original.replace(b"DC-0042", b"DC-0043"))
    assert _verifiers(report, public) == [1, 1]
    report.write_bytes(original)
    for other in (tmp_path / "custody.pdf", tmp_path / "custody.json"):
        assert main(["consignment", "report", "C-2026-11", *span, "-c", str(config_file),
                     "-o", str(other)]) == 0
        assert _verifiers(other, public, audit) == [0, 0]
    document = json.loads((tmp_path / "custody.json").read_text())
    assert document["title"] == "Consignment custody record"
    # The audit entry of the destruction, edited: the chain no longer holds.
    audit.write_bytes(audit.read_bytes().replace(b"DC-0042", b"DC-0043", 1))
    assert _verifiers(report, public, audit) == [1, 1]


def test_an_item_marked_lost_opens_a_signed_loss_report_and_its_alarm(
        mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path) -> None:
    config = _config(tmp_path, mosquitto, influxdb1)
    with running(config) as daemon:
        _receive(daemon)
        daemon.publish("rfid/inv1", {"epc": LOST})
        daemon.publish("badge/reader1", {"card": "1001"})
        time.sleep(0.5)
        status, answer = call(daemon, "POST", f"/api/v1/records/items/{LOST}/step",
                              CLERK_TOKEN, {"state": "lost", "note": "not on its rack"})
        assert status == 200, answer
        eventually(lambda: f"item_state.lost.{LOST}" in alarm_keys(daemon))
        status, answer = call(daemon, "GET", "/api/v1/alerts", CLERK_TOKEN)
        alarm = next(a for a in answer["alerts"] if a["key"] == f"item_state.lost.{LOST}")
        assert alarm["summary"].startswith("Store 1: LOSS REPORT: Rifle 12"), alarm
        assert "by inv1" in alarm["summary"] and "Pvt. Ash" in alarm["summary"]
        losses = Path(config["state_dir"]) / "losses"
        eventually(lambda: len(list(losses.glob("*.json.sig"))) == 1)
    document = next(losses.glob("*.json"))
    report = json.loads(document.read_text())
    assert report["cause"] == "marked lost: not on its rack"
    assert report["consignment"]["serial"] == "SN00012"
    assert [s["state"] for s in report["steps"]] == ["received", "stored", "lost"]
    assert report["last_seen"]["sensor"] == "inv1"
    assert [b["person"] for b in report["badged_in"]] == ["Pvt. Ash"]
    public = tmp_path / "gateway.pub"
    public.write_text(GatewayKey.load(key_path(Path(config["state_dir"]))).public_pem())
    assert _verifiers(document, public) == [0, 0]
    document.write_bytes(document.read_bytes().replace(b"not on its rack", b"not on its rock"))
    assert _verifiers(document, public) == [1, 1]
