"""`depotwatch report`: a synthetic month in a real InfluxDB 1.x and a real audit log, read back
as CSV, JSON and PDF and checked figure by figure."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from servers import InfluxDB1

from daemon.alerts.audit import AuditLog, audit_path
from daemon.cli.main import main
from daemon.records.report import parse_csv

MONTH = "2026-10"
UTC = dt.UTC
NS = 1_000_000_000
START = dt.datetime(2026, 10, 1, tzinfo=UTC)


def _ns(day: int, hour: int = 0, minute: int = 0, month: int = 10) -> int:
    return int(dt.datetime(2026, month, day, hour, minute, tzinfo=UTC).timestamp()) * NS


def _climate_lines() -> list[str]:
    """Every 10 min from a day before the month to its end; known exceedances."""
    lines = []
    t = dt.datetime(2026, 9, 30, tzinfo=UTC)
    end = dt.datetime(2026, 11, 1, tzinfo=UTC)
    while t < end:
        ns = int(t.timestamp()) * NS
        for sensor, sh in (("sh1-t1", "SH1"), ("sh1-t2", "SH1"), ("sh2-t1", "SH2")):
            temp = 20.0 + (t.hour % 6) * 0.5
            rh = 50.0
            if sensor == "sh2-t1" and t >= dt.datetime(2026, 10, 20, tzinfo=UTC):
                continue  # silent from 20 Oct
            if sensor == "sh1-t1" and t.month == 10 and t.day == 10:
                if 12 <= t.hour < 14:
                    temp = 31.0  # 2 h above the 30 °C warning
                elif t.hour == 14:
                    temp = 39.0  # 1 h above warning and the 37.8 °C alarm
            if sensor == "sh1-t2" and t.month == 10 and t.day == 7 and t.hour < 6:
                rh = 66.0  # 6 h above the 65 % warning
            if sensor == "sh2-t1" and t.month == 10 and t.day == 3 and t.hour == 9:
                rh = 62.0  # 1 h above the propellant store's 60 % alarm
            lines.append(f"climate,site=depot-x,storehouse={sh},sensor={sensor} "
                         f"temperature_c={temp},humidity_pct={rh} {ns}")
        t += dt.timedelta(minutes=10)
    return lines


def _other_lines() -> list[str]:
    lines = [f"climate_daily,site=depot-x,storehouse=SH1 max_c={25.5 + d},min_c={10.5 + d},"
             f"max_humidity_pct=55,min_humidity_pct=45 {_ns(d, 8)}" for d in range(1, 6)]
    # SH1-D1 and the vault SH1-V1 report every 150 s, SH1-D1 but for 15 Oct 10:00-10:30 (one
    # silent period); SH1-D2 never. The vault opens three times for 10 min.
    openings = (_ns(6, 22), _ns(13, 11), _ns(20, 11))
    for step in range(31 * 24 * 24):
        at = _ns(1) + step * 150 * NS
        if not _ns(15, 10) < at < _ns(15, 10, 30):
            lines.append(f"door,site=depot-x,storehouse=SH1,door=SH1-D1 open=false {at}")
        is_open = str(any(o <= at < o + 600 * NS for o in openings)).lower()
        lines.append(f"door,site=depot-x,storehouse=SH1,door=SH1-V1 open={is_open} {at}")
    # Vault badges: two persons before the first opening, Alice alone (twice) before the
    # second, Alice too early (3 min) and Carol before the third.
    for at, person in ((_ns(6, 21, 59) + 10 * NS, "Alice Adams"),
                       (_ns(6, 21, 59) + 40 * NS, "Carol Clark"),
                       (_ns(13, 10, 59) + 30 * NS, "Alice Adams"),
                       (_ns(13, 10, 59) + 45 * NS, "Alice Adams"),
                       (_ns(20, 10, 57), "Alice Adams"),
                       (_ns(20, 10, 59) + 50 * NS, "Carol Clark")):
        lines.append(f'access,site=depot-x,door=SH1-V1,result=granted person="{person}",'
                     f'badge_hash="h-x" {at}')
    alert = "alert,site=depot-x,severity=warning,storehouse=SH1"
    lines += [
        f'{alert},rule=two_person,state=firing key="two_person.SH1-V1",summary="v" {_ns(13, 11)}',
        f'{alert},rule=two_person,state=resolved key="two_person.SH1-V1",summary="ok" '
        f'{_ns(13, 11, 10)}',
        f'{alert},rule=two_person_alone,state=firing key="two_person_alone.SH1-V1",'
        f'summary="alone" {_ns(13, 11, 1)}',
        f'{alert},rule=item_unseen,state=firing key="item_unseen.A0000001",'
        f'summary="Rifle 7 unseen" {_ns(16, 8)}',
        f'{alert},rule=item_unseen,state=resolved key="item_unseen.A0000001",'
        f'summary="Rifle 7 read" {_ns(17, 9, 30)}',
        f'{alert},rule=item_unseen,state=firing key="item_unseen.A0000002",'
        f'summary="Rifle 8 unseen" {_ns(29, 8)}',
    ]
    # The MQTT input: up from before the month, down 6 h on 5 Oct and 3 h on 25 Oct; a serial
    # port first heard of on 2 Oct. Spool backlog on 5 and 6 Oct (and one before the month).
    for at, component, up in ((_ns(30, 12, month=9), "mqtt", True), (_ns(5, 10), "mqtt", False),
                              (_ns(5, 16), "mqtt", True), (_ns(25), "mqtt", False),
                              (_ns(25, 3), "mqtt", True), (_ns(2), "serial-usb0", True)):
        lines.append(f"gateway,site=depot-x,component={component} up={str(up).lower()} {at}")
    for at, backlog, lag in ((_ns(30, 12, month=9), 9999, 999), (_ns(5, 10, 10), 0, 0),
                             (_ns(5, 10, 20), 120, 40.5), (_ns(5, 10, 30), 340, 95.25),
                             (_ns(6, 12), 12, 3)):
        lines.append(f"gateway,site=depot-x,component=spool spool_points={backlog},"
                     f"lag_s={lag},fill_pct=0.1 {at}")
    # Gateway health: on battery 23:00 on 7 Oct to 01:30 on 8 Oct (the hours split at
    # midnight), the clock unsynchronised for 2 h on 9 Oct, disk and CPU once a day on 7 and 9.
    for at, on_battery, charge in ((_ns(7, 12), False, 100), (_ns(7, 23), True, 80),
                                   (_ns(8, 1, 30), False, 41.5)):
        lines.append(f"gateway,site=depot-x,component=ups on_battery={str(on_battery).lower()},"
                     f"charge_pct={charge} {at}")
    for at, synced, offset in ((_ns(9, 8), False, -2.5), (_ns(9, 10), True, 0.002)):
        lines.append(f"gateway,site=depot-x,component=clock synchronised={str(synced).lower()},"
                     f"offset_s={offset} {at}")
    for day, free, celsius in ((7, 55.0, 61.5), (9, 54.25, 70.0)):
        lines.append(f"gateway,site=depot-x,component=disk free_pct={free} {_ns(day, 6)}")
        lines.append(f"gateway,site=depot-x,component=cpu temperature_c={celsius} {_ns(day, 6)}")
    for i in range(5):
        lines.append(f'access,site=depot-x,door=SH1-D1,result=granted person="Alice Adams",'
                     f'badge_hash="h-alice" {_ns(4, 9, i)}')
    for i in range(2):
        lines.append(f'access,site=depot-x,door=SH1-D1,result=expired person="Bob Brown",'
                     f'badge_hash="h-bob" {_ns(5, 9, i)}')
    lines.append(f'access,site=depot-x,door=SH1-D1,result=unknown person="",'
                 f'badge_hash="h-secret-unknown" {_ns(6, 3)}')
    portal = "portal,site=depot-x,storehouse=SH1,portal=P1"
    for i in range(3):
        lines.append(f'{portal},direction=out epc="E{i}",item="Rifle {i}",order="MO-1",'
                     f'antenna="outer" {_ns(8, 10, i)}')
    lines.append(f'{portal},direction=in epc="E0",item="Rifle 0",order="MO-1",antenna="inner" '
                 f'{_ns(9, 10)}')
    for i in range(2):
        lines.append(f'{portal},direction=out epc="F{i}",item="Pistol {i}",order="",'
                     f'antenna="outer" {_ns(12, 22, i)}')
    lines.append(f"movement_order,site=depot-x,storehouse=SH1,portal=P1,order=MO-1 "
                 f"expected_count=4,read_count=3,complete=false {_ns(8, 10, 5)}")
    lines.append(f"movement_order,site=depot-x,storehouse=SH1,portal=P1,order=MO-2 "
                 f"expected_count=2,read_count=2,complete=true {_ns(15, 10)}")
    lines.append(f'alert,site=depot-x,rule=tamper,severity=alarm,state=firing,storehouse=SH1 '
                 f'key="tamper.sh1-t1",summary="sh1-t1 case opened" {_ns(14, 2)}')
    lines.append(f'alert,site=depot-x,rule=door_forced,severity=critical,state=firing,'
                 f'storehouse=SH1 key="door_forced.SH1-D1",summary="forced" {_ns(3, 10)}')
    walk = "walk_test,site=depot-x,storehouse=SH1"
    for at, result, seen, not_seen in ((_ns(5, 9), "started", "", ""),
                                       (_ns(5, 9, 20), "passed", "sh1-pir1, sh1-vib1", ""),
                                       (_ns(20, 9, 30), "failed", "sh1-pir1", "sh1-vib1")):
        lines.append(f'{walk} result="{result}",by="Eng. Huber",how="api",seen="{seen}",'
                     f'not_seen="{not_seen}",note="" {at}')
    zone = "zone,site=depot-x,storehouse=SH1"
    for at, state, result, forced, open_ in ((_ns(6, 18), "disarmed", "refused", "false",
                                              "door SH1-D1"),
                                             (_ns(6, 18, 1), "arming", "arming", "true",
                                              "door SH1-D1"),
                                             (_ns(6, 18, 2), "arming", "unchanged", "false",
                                              "")):
        lines.append(f'{zone} state="{state}",result="{result}",action="arm",by="Sgt. Novak",'
                     f'how="api",forced={forced},not_secured="{open_}",note="" {at}')
    return lines


def _audit(state_dir: Path) -> str:
    log = AuditLog(audit_path(state_dir))
    try:
        def alarm(key: str, at: int, ack: tuple[str, int] | None,
                  check: tuple[str, int, str] | None) -> None:
            log.append("system", "raised", key, {"severity": "alarm", "summary": key}, at)
            if ack:
                log.append(ack[0], "acknowledged", key, {"note": ""}, at + ack[1] * 60 * NS)
            if check:
                at_check = at + check[1] * 60 * NS
                log.append(check[0], "checked", key, {"finding": check[2], "note": ""}, at_check)
                log.append(check[0], "cleared", key, {"why": "on-site check"}, at_check)

        alarm("door_forced.SH1-D1", _ns(28, 9, month=9), ("alice", 1), ("alice", 5, "fault"))
        alarm("door_forced.SH1-D1", _ns(3, 10), ("alice", 2), ("bob", 12, "intrusion"))
        alarm("temperature_warning.sh1-t1", _ns(10, 12, 30), ("carol", 5),
              ("carol", 25, "fault"))
        log.append("carol", "silence_created", "s-1", {"reason": "maintenance"}, _ns(11))
        alarm("input_lost.sh2-t1", _ns(20, 0, 15), None, None)
        alarm("door_forced.SH1-D2", _ns(2, 1, month=11), ("bob", 1), None)
        return log.last_hash()
    finally:
        log.close()


@pytest.fixture(scope="module")
def month(influxdb1: InfluxDB1, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("report")
    db = "report_month_test"
    influxdb1.create_database(db)
    influxdb1.write(db, "\n".join(_climate_lines()))
    influxdb1.write(db, "\n".join(_other_lines()))
    state_dir = workdir / "state"
    head = _audit(state_dir)
    config = workdir / "depot.yaml"
    config.write_text(f"""\
site: {{id: depot-x, name: Depot X}}
state_dir: {state_dir}
storehouses:
  - id: SH1
    name: North magazine
    armed: {{mode: schedule, windows: [{{from: "18:00", to: "07:00"}}], holidays: [2026-10-04]}}
  - {{id: SH2, name: Propellant store, climate_class: propellant}}
doors:
  - {{id: SH1-D1, storehouse: SH1, contact_sensor: sh1-door1}}
  - {{id: SH1-D2, storehouse: SH1, contact_sensor: sh1-door2}}
  - {{id: SH1-V1, storehouse: SH1, contact_sensor: sh1-vault, two_person: true}}
items:
  - {{epc: A0000001, name: Rifle 7, storehouse: SH1}}
  - {{epc: A0000002, name: Rifle 8, storehouse: SH1}}
climate_sensors:
  - {{id: sh1-t1, storehouse: SH1}}
  - {{id: sh1-t2, storehouse: SH1}}
  - {{id: sh2-t1, storehouse: SH2}}
portals:
  - {{id: P1, storehouse: SH1, inner_antenna: p1-in, outer_antenna: p1-out}}
influxdb:
  - {{api: v1, url: "{influxdb1.url}", database: {db}}}
""", encoding="utf-8")
    out = {}
    for fmt in ("csv", "json", "pdf"):
        path = workdir / f"report.{fmt}"
        assert main(["report", "--month", MONTH, "-c", str(config), "-o", str(path),
                     "--format", fmt]) == 0
        out[fmt] = path
    return {"config": config, "head": head, "state_dir": state_dir, "workdir": workdir,
            "csv": parse_csv(out["csv"].read_text(encoding="utf-8")),
            "json": json.loads(out["json"].read_text(encoding="utf-8")), "pdf": out["pdf"]}


def _table(month: dict[str, Any], name: str, storehouse: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = month["csv"][(name, storehouse)]
    return rows


def test_daily_max_min(month: dict[str, Any]) -> None:
    days = {r["date"]: r for r in _table(month, "climate_daily", "SH1")}
    assert len(days) == 31
    # From the climate_daily points the daemon wrote at 08:00.
    assert (days["2026-10-02"]["max_c"], days["2026-10-02"]["min_c"]) == ("27.5", "12.5")
    assert days["2026-10-02"]["source"] == "climate_daily"
    # Computed from climate over the 24 h to 08:00: the 39 °C hour of 10 Oct is in 11 Oct's.
    assert days["2026-10-11"]["max_c"] == "39.0" and days["2026-10-11"]["min_c"] == "20.0"
    assert days["2026-10-11"]["source"] == "computed"
    assert days["2026-10-10"]["max_c"] == "22.5"
    assert days["2026-10-07"]["max_rh_pct"] == "66.0"
    assert days["2026-10-07"]["min_rh_pct"] == "50.0"
    sh2 = {r["date"]: r for r in _table(month, "climate_daily", "SH2")}
    assert sh2["2026-10-25"]["source"] == "no data"


def test_hours_above_limits(month: dict[str, Any]) -> None:
    hours = {(r["sensor"], r["quantity"], r["band"]): (r["limit"], r["hours_above"])
             for r in _table(month, "climate_limits", "SH1")}
    assert hours[("sh1-t1", "temperature_c", "warning")] == ("30.0", "3.0")
    assert hours[("sh1-t1", "temperature_c", "alarm")] == ("37.8", "1.0")
    assert hours[("sh1-t2", "humidity_pct", "warning")] == ("65.0", "6.0")
    assert hours[("sh1-t2", "humidity_pct", "alarm")] == ("70.0", "0.0")
    sh2 = {(r["sensor"], r["quantity"], r["band"]): (r["limit"], r["hours_above"])
           for r in _table(month, "climate_limits", "SH2")}
    # Propellant store: 60 % RH alarm limit.
    assert sh2[("sh2-t1", "humidity_pct", "alarm")] == ("60.0", "1.0")
    assert sh2[("sh2-t1", "humidity_pct", "warning")] == ("65.0", "0.0")


def test_alarms_and_response_times(month: dict[str, Any]) -> None:
    alarms = _table(month, "alarms", "SH1")
    assert [(a["raised"], a["key"], a["acknowledged_by"], a["ack_min"], a["checked_by"],
             a["finding"], a["response_min"], a["within_target"]) for a in alarms] == [
        ("2026-10-03 10:00", "door_forced.SH1-D1", "alice", "2.0", "bob", "intrusion", "12.0",
         "yes"),
        ("2026-10-10 12:30", "temperature_warning.sh1-t1", "carol", "5.0", "carol", "fault",
         "25.0", "no"),
    ]
    assert alarms[0]["rule"] == "door_forced" and alarms[0]["checked"] == "2026-10-03 10:12"
    counts = {r["nature"]: r["count"] for r in _table(month, "alarm_counts", "SH1")}
    assert counts == {"intrusion": "1", "fault": "1", "false_alarm": "0", "not checked": "0",
                      "muted": "0"}
    sh2 = _table(month, "alarms", "SH2")
    assert [(a["key"], a["within_target"], a["acknowledged_by"]) for a in sh2] == [
        ("input_lost.sh2-t1", "no check", "")]


def test_access_movements_supervision(month: dict[str, Any]) -> None:
    doors = {r["door"]: r for r in _table(month, "access_doors", "SH1")}
    assert (doors["SH1-D1"]["entries"], doors["SH1-D1"]["refused"],
            doors["SH1-D1"]["unknown_badges"]) == ("5", "2", "1")
    refused = _table(month, "access_refused", "SH1")
    assert [r["person"] for r in refused] == ["Bob Brown", "Bob Brown", "(not on the roster)"]
    portals = _table(month, "movements", "SH1")
    assert portals == [{"portal": "P1", "out": "5", "in": "1", "orders": "MO-1",
                        "out_without_order": "2"}]
    assert [r["item"] for r in _table(month, "out_without_order", "SH1")] == [
        "Pistol 0", "Pistol 1"]
    assert [(r["order"], r["expected"], r["read"])
            for r in _table(month, "count_uncertain", "SH1")] == [("MO-1", "4.0", "3.0")]
    availability = {r["sensor"]: r["percent"] for r in _table(month, "availability", "SH1")}
    assert availability == {"sh1-t1": "100.0", "sh1-t2": "100.0", "SH1-D1": "100.0",
                            "SH1-D2": "0.0", "SH1-V1": "100.0"}
    sh2 = {r["sensor"]: (r["hours_reporting"], r["hours"], r["percent"])
           for r in _table(month, "availability", "SH2")}
    assert sh2 == {"sh2-t1": ("456", "744", "61.3")}
    assert [r["key"] for r in _table(month, "tamper", "SH1")] == ["tamper.sh1-t1"]


def test_walk_tests_and_zone_changes(month: dict[str, Any]) -> None:
    walks = [(r["time"], r["result"], r["seen"], r["not_seen"])
             for r in _table(month, "walk_tests", "SH1")]
    assert walks == [("2026-10-05 09:20", "passed", "sh1-pir1, sh1-vib1", ""),
                     ("2026-10-20 09:30", "failed", "sh1-pir1", "sh1-vib1")]
    changes = [(r["result"], r["forced"], r["not_secured"])
               for r in _table(month, "zone_changes", "SH1")]
    assert changes == [("refused", "", "door SH1-D1"), ("arming", "yes", "door SH1-D1")]
    assert _table(month, "walk_tests", "SH2") == []


def test_climate_events(month: dict[str, Any]) -> None:
    events = [(r["sensor"], r["quantity"], r["band"], r["limit"], r["start"], r["end"],
               r["hours"], r["peak"]) for r in _table(month, "climate_events", "SH1")]
    assert events == [
        ("sh1-t2", "humidity_pct", "warning", "65.0", "2026-10-07 00:00", "2026-10-07 06:00",
         "6.0", "66.0"),
        ("sh1-t1", "temperature_c", "warning", "30.0", "2026-10-10 12:00", "2026-10-10 15:00",
         "3.0", "39.0"),
        ("sh1-t1", "temperature_c", "alarm", "37.8", "2026-10-10 14:00", "2026-10-10 15:00",
         "1.0", "39.0"),
    ]
    sh2 = _table(month, "climate_events", "SH2")
    assert [(r["band"], r["limit"], r["start"], r["end"], r["peak"]) for r in sh2] == [
        ("alarm", "60.0", "2026-10-03 09:00", "2026-10-03 10:00", "62.0")]


def test_armed_entries_and_two_person(month: dict[str, Any]) -> None:
    # SH1 is armed 18:00-07:00 and all of the 4 Oct holiday.
    armed = [(r["time"], r["door"], r["person"]) for r in _table(month, "access_armed", "SH1")]
    assert armed == [(f"2026-10-04 09:0{i}", "SH1-D1", "Alice Adams") for i in range(5)] + [
        ("2026-10-06 21:59", "SH1-V1", "Alice Adams"),
        ("2026-10-06 21:59", "SH1-V1", "Carol Clark")]
    assert _table(month, "access_armed", "SH2") == []
    assert _table(month, "two_person", "SH1") == [
        {"door": "SH1-V1", "openings": "3", "two_persons": "1", "fewer": "2",
         "two_person_alerts": "1", "alone_alerts": "1"}]
    assert [(r["time"], r["persons"]) for r in _table(month, "two_person_openings", "SH1")] == [
        ("2026-10-13 11:00", "Alice Adams"), ("2026-10-20 11:00", "Carol Clark")]
    assert [(r["time"], r["rule"]) for r in _table(month, "two_person_alerts", "SH1")] == [
        ("2026-10-13 11:00", "two_person"), ("2026-10-13 11:01", "two_person_alone")]
    assert _table(month, "two_person", "SH2") == []


def test_items_unseen(month: dict[str, Any]) -> None:
    assert [(r["since"], r["epc"], r["item"], r["resolved"])
            for r in _table(month, "items_unseen", "SH1")] == [
        ("2026-10-16 08:00", "A0000001", "Rifle 7", "2026-10-17 09:30"),
        ("2026-10-29 08:00", "A0000002", "Rifle 8", "")]


def test_silent_periods_gateway_spool(month: dict[str, Any]) -> None:
    silent = [(r["sensor"], r["kind"], r["limit_s"], r["start"], r["end"], r["minutes"],
               r["open_at_end"]) for r in _table(month, "silent_periods", "SH1")]
    assert silent == [
        ("SH1-D1", "door", "180.0", "2026-10-15 10:00", "2026-10-15 10:30", "30.0", "no"),
        ("SH1-D2", "door", "180.0", "2026-10-01 00:00", "2026-11-01 00:00", "44640.0", "yes")]
    assert [(r["sensor"], r["start"], r["minutes"])
            for r in _table(month, "silent_periods", "SH2")] == [
        ("sh2-t1", "2026-10-19 23:50", "17290.0")]
    uptime = {r["component"]: (r["up_hours"], r["down_hours"], r["unknown_hours"],
                               r["up_percent"], r["outages"])
              for r in _table(month, "gateway_uptime", "")}
    assert uptime == {"mqtt": ("735.0", "9.0", "0.0", "98.79", "2"),
                      "serial-usb0": ("720.0", "0.0", "24.0", "96.77", "0")}
    assert _table(month, "spool_peaks", "") == [
        {"date": "2026-10-05", "max_spool_points": "340.0", "max_lag_s": "95.25"},
        {"date": "2026-10-06", "max_spool_points": "12.0", "max_lag_s": "3.0"}]
    assert _table(month, "gateway_health", "") == [
        {"date": "2026-10-07", "on_battery_hours": "1.0", "min_charge_pct": "80.0",
         "unsynchronised_hours": "0.0", "max_offset_s": "", "min_disk_free_pct": "55.0",
         "max_cpu_c": "61.5"},
        {"date": "2026-10-08", "on_battery_hours": "1.5", "min_charge_pct": "41.5",
         "unsynchronised_hours": "0.0", "max_offset_s": "", "min_disk_free_pct": "",
         "max_cpu_c": ""},
        {"date": "2026-10-09", "on_battery_hours": "0.0", "min_charge_pct": "",
         "unsynchronised_hours": "2.0", "max_offset_s": "2.5", "min_disk_free_pct": "54.25",
         "max_cpu_c": "70.0"}]
    tables = {(t["name"], t["storehouse"]): t for t in month["json"]["tables"]}
    assert tables[("gateway_uptime", "")]["rows"][0] == {
        "component": "mqtt", "up_hours": 735.0, "down_hours": 9.0, "unknown_hours": 0.0,
        "up_percent": 98.79, "outages": 2}
    assert tables[("two_person", "SH1")]["rows"][0]["fewer"] == 2


def test_integrity_and_json_match_csv(month: dict[str, Any]) -> None:
    integrity = {r["item"]: r["value"] for r in _table(month, "integrity", "")}
    assert integrity["status"] == "intact"
    assert integrity["head_hash"] == month["head"]
    assert integrity["entries_in_month"] == "10"
    doc = month["json"]
    assert doc["audit"] == {"status": "intact", "head_hash": month["head"]}
    tables = {(t["name"], t["storehouse"]): t for t in doc["tables"]}
    assert set(tables) == set(month["csv"])
    hours = tables[("climate_limits", "SH1")]["rows"][0]
    assert hours == {"sensor": "sh1-t1", "quantity": "temperature_c", "band": "warning",
                     "limit": 30.0, "hours_above": 3.0, "peak": 39.0}
    # Roster names only: never a badge hash.
    assert "h-secret-unknown" not in json.dumps(doc)


def test_pdf(month: dict[str, Any]) -> None:
    reader = PdfReader(month["pdf"])
    assert len(reader.pages) >= 3
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "North magazine" in text and "Propellant store" in text
    assert month["head"] in text.replace("\n", "")
    assert "door_forced.SH1-D1" in text
    for title in ("Exceedance events", "Entries while the storehouse was armed",
                  "Two-person compliance", "Items not seen for more than 24 h",
                  "Silent periods", "Gateway inputs: uptime", "Spool backlog peaks"):
        assert title in text
    assert "two_person_alone.SH1-V1" in text.replace("\n", "")
    if shutil.which("pdftotext"):
        plain = subprocess.run(["pdftotext", "-layout", str(month["pdf"]), "-"],
                               capture_output=True, text=True, check=True).stdout
        assert month["head"] in plain and "North magazine" in plain
    if shutil.which("pdftoppm"):
        prefix = month["workdir"] / "page"
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "2", str(month["pdf"]),
                        str(prefix)], check=True)
        pngs = sorted(month["workdir"].glob("page*.png"))
        assert len(pngs) == 2 and all(p.stat().st_size > 3000 for p in pngs)


def test_reports_are_signed_by_the_gateway_key(month: dict[str, Any]) -> None:
    # Before test_empty_month_and_broken_chain, which edits the audit log.
    from daemon.records.signing import GatewayKey, key_path, verify_document

    public = GatewayKey.load(key_path(month["state_dir"])).public_pem().encode()
    for name in ("report.csv", "report.json", "report.pdf"):
        report = month["workdir"] / name
        signed = json.loads((month["workdir"] / f"{name}.sig").read_text())
        assert signed["audit_head"]["hash"] == month["head"] and signed["site"] == "depot-x"
        assert verify_document(report, report.with_name(f"{name}.sig"), public,
                               audit_path(month["state_dir"])) == []


def test_empty_month_and_broken_chain(month: dict[str, Any]) -> None:
    path = audit_path(month["state_dir"])
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"alice"', b'"mallory"')
    path.write_bytes(b"\n".join(lines))
    out = month["workdir"] / "empty.json"
    assert main(["report", "--month", "2025-01", "-c", str(month["config"]), "-o",
                 str(out)]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["audit"]["status"] == "TAMPERED"
    problems = [r["value"] for t in doc["tables"] if t["name"] == "integrity"
                for r in t["rows"] if r["item"] == "problem"]
    assert problems and "line 3" in problems[0]
    assert doc["storehouses"][0]["notes"] == ["no climate readings in InfluxDB for this month"]
    pdf = month["workdir"] / "empty.pdf"
    assert main(["report", "--month", "2025-01", "--storehouse", "SH2", "-c",
                 str(month["config"]), "-o", str(pdf)]) == 0
    assert "TAMPERED" in "".join(p.extract_text() for p in PdfReader(pdf).pages)


def test_bad_arguments(month: dict[str, Any]) -> None:
    out = month["workdir"] / "x.csv"
    assert main(["report", "--month", "2026-13", "-c", str(month["config"]),
                 "-o", str(out)]) == 1
    assert main(["report", "--month", MONTH, "--storehouse", "SH9", "-c", str(month["config"]),
                 "-o", str(out)]) == 1


def test_pdf_without_the_extra(month: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "fpdf", None)
    out = month["workdir"] / "nolib.pdf"
    assert main(["report", "--month", MONTH, "-c", str(month["config"]), "-o", str(out)]) == 1
    assert "pip install 'depotwatch[report]'" in capsys.readouterr().err
    assert not out.exists()


def test_pdf_shows_the_first_rows_of_a_long_table(month: dict[str, Any]) -> None:
    from daemon.records.document import Report, Table
    from daemon.records.pdf import PDF_MAX_ROWS, render_pdf

    long = Table("access_refused", "Refused and unknown badges", "", ["time", "person"],
                 [[f"2026-10-01 00:{i % 60:02d}", f"Person {i}"] for i in range(1000)])
    report = Report("depot-x", "Depot X", MONTH, "UTC", 0, 1, "now", [], [long], "intact", "h")
    path = month["workdir"] / "long.pdf"
    path.write_bytes(render_pdf(report))
    text = "".join(page.extract_text() for page in PdfReader(path).pages)
    assert f"Person {PDF_MAX_ROWS - 1}" in text and "Person 999" not in text
    assert f"and {1000 - PDF_MAX_ROWS} more rows" in text
