"""Living records against the real daemon and the real broker (issue 19): the book changed over
the HTTP API with roles, applied to the rules at once, audited."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemon_process import DaemonProcess
from inprocess_daemon import Running, eventually, running
from servers import InfluxDB1, Mosquitto, free_port

from daemon.cli.main import main

CLERK, CLERK_TOKEN = "Cpl. Reyes", "records-clerk-token-0123456789"
SECOND, SECOND_TOKEN = "Lt. Dahl", "records-second-token-0123456789"
DUTY, DUTY_TOKEN = "Sgt. Novak", "duty-operator-token-0123456789"
RIFLE, TARP, PISTOL = "E20000000000000000000A01", "E20000000000000000000B02", \
    "E20000000000000000000C03"


def settings(state_dir: Path, mqtt_port: int) -> dict[str, Any]:
    """One store with a badge door and a portal; a vault with a two-person door."""
    def officer(name: str, token: str, role: str) -> dict[str, str]:
        return {"name": name, "token_sha256": hashlib.sha256(token.encode()).hexdigest(),
                "role": role}
    return {
        "site": {"id": "records-depot"}, "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "name": "Store 1", "armed": {"mode": "never"}},
                        {"id": "VAULT", "armed": {"mode": "never"}}],
        "doors": [{"id": "D1", "storehouse": "SH1", "contact_sensor": "door1",
                   "badge_reader": "reader1"},
                  {"id": "V1", "storehouse": "VAULT", "contact_sensor": "vdoor",
                   "two_person": True}],
        "portals": [{"id": "P1", "storehouse": "SH1", "inner_antenna": "ant_in",
                     "outer_antenna": "ant_out"}],
        "inventory_readers": [{"id": "inv1", "storehouse": "SH1"}],
        "roster": [{"name": "Pvt. Ash", "badge": "1001", "zones": ["SH1"]}],
        "items": [{"epc": RIFLE, "name": "Rifle 1", "kind": "weapon", "storehouse": "SH1"},
                  {"epc": TARP, "name": "Tarp", "kind": "other", "storehouse": "SH1"},
                  {"epc": PISTOL, "name": "Pistol 3", "kind": "weapon", "storehouse": "SH1"}],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port,
                 "client_id": f"depotwatch-{uuid.uuid4().hex[:8]}",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                 "subscriptions": [
                     {"topic": "zigbee2mqtt/{sensor}", "decoder": {"type": "zigbee2mqtt"}},
                     {"topic": "badge/{sensor}",
                      "decoder": {"type": "json_fields", "fields": {"badge": "card"}}},
                     {"topic": "rfid/{sensor}",
                      "decoder": {"type": "json_fields", "fields": {"epc": "epc"}}}]},
        "file_output": {"path": str(state_dir / "points.lp")},
        "rules": [{"type": "badge_access"}, {"type": "portal_movement"}],
        "tick_interval_s": 0.1,
        "api": {"listen_port": 0, "officers": [
            officer(CLERK, CLERK_TOKEN, "records"), officer(SECOND, SECOND_TOKEN, "records"),
            officer(DUTY, DUTY_TOKEN, "operator")]},
    }


def call(daemon: Running, method: str, path: str, token: str,
         body: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One JSON call to the running daemon's API."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        daemon.url + path, method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def alarm_keys(daemon: Running) -> list[str]:
    """Keys of the open alarms."""
    status, alarms = call(daemon, "GET", "/api/v1/alerts", DUTY_TOKEN)
    assert status == 200
    return [a["key"] for a in alarms["alerts"]]


def window(hours: float = 2) -> dict[str, str]:
    """A movement order's window around now."""
    now = dt.datetime.now(dt.UTC)
    return {"valid_from": (now - dt.timedelta(minutes=5)).isoformat(),
            "valid_until": (now + dt.timedelta(hours=hours)).isoformat()}


def carry_out(daemon: Running, epc: str) -> None:
    """A tag read inside, then outside: it left through the portal."""
    daemon.publish("rfid/ant_in", {"epc": epc})
    time.sleep(0.05)
    daemon.publish("rfid/ant_out", {"epc": epc})


def test_a_revoked_badge_is_refused_at_its_door_within_2_s(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    with running(settings(tmp_path, mosquitto.port)) as daemon:
        daemon.publish("badge/reader1", {"card": "1001"})
        time.sleep(0.5)
        assert not [k for k in alarm_keys(daemon) if k.endswith(".D1")]
        # An operator acknowledges alarms but does not keep the roster.
        status, answer = call(daemon, "POST", "/api/v1/records/roster/Pvt.%20Ash/revoke",
                              DUTY_TOKEN)
        assert status == 403, answer
        status, answer = call(daemon, "POST", "/api/v1/records/roster/Pvt.%20Ash/revoke",
                              CLERK_TOKEN)
        assert status == 200, answer
        assert answer["after"]["state"] == "revoked" and "1001" not in json.dumps(answer)
        revoked = time.monotonic()
        daemon.publish("badge/reader1", {"card": "1001"})
        eventually(lambda: any(k.endswith(".D1") for k in alarm_keys(daemon)), 2.0)
        assert time.monotonic() - revoked < 2.0
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    change = next(e for e in audit if e["action"] == "records.change")
    assert (change["actor"], change["subject"]) == (CLERK, "roster/Pvt. Ash")
    assert change["details"]["before"]["state"] == "active"
    assert change["details"]["after"]["state"] == "revoked"
    assert "1001" not in (tmp_path / "audit.jsonl").read_text()


def test_a_movement_order_from_the_api_lets_its_items_pass_and_others_still_alarm(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    with running(settings(tmp_path, mosquitto.port)) as daemon:
        order = {"portal": "P1", "items": [RIFLE, TARP], **window()}
        status, answer = call(daemon, "PUT", "/api/v1/records/movement_orders/MO-7",
                              CLERK_TOKEN, order)
        # Weapons: the two-person rule holds it until a second records officer approves.
        assert status == 202, answer
        parked = answer["parked"]["id"]
        status, answer = call(daemon, "POST", f"/api/v1/records/parked/{parked}/approve",
                              CLERK_TOKEN)
        assert status == 409 and "second officer" in answer["error"]
        status, answer = call(daemon, "POST", f"/api/v1/records/parked/{parked}/approve",
                              SECOND_TOKEN)
        assert status == 200, answer
        assert (answer["by"], answer["approved_by"]) == (CLERK, SECOND)
        carry_out(daemon, RIFLE)
        carry_out(daemon, PISTOL)
        eventually(lambda: f"portal_movement.{PISTOL}" in alarm_keys(daemon))
        assert f"portal_movement.{RIFLE}" not in alarm_keys(daemon)


def test_bad_changes_name_their_field_and_a_stale_writer_is_told_to_reload(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    with running(settings(tmp_path, mosquitto.port), connected=False) as daemon:
        past = {"portal": "P9", "items": ["E2000000000000000000FFFF"],
                "valid_from": "2020-01-01T00:00:00+00:00",
                "valid_until": "2020-01-02T00:00:00+00:00"}
        status, answer = call(daemon, "PUT", "/api/v1/records/movement_orders/MO-8",
                              CLERK_TOKEN, past)
        assert status == 422
        assert {d["loc"][0] for d in answer["detail"]} == {"portal", "items", "valid_until"}
        status, answer = call(daemon, "PUT", "/api/v1/records/roster/Pvt.%20Bo", CLERK_TOKEN,
                              {"badge": "1001", "zones": ["SH1"]})
        assert status == 422 and answer["detail"] == [
            {"loc": ["badge"], "msg": "this badge is already on the roster (Pvt. Ash)"}]
        status, person = call(daemon, "GET", "/api/v1/records/roster/Pvt.%20Ash", CLERK_TOKEN)
        assert status == 200 and person["version"] == 1 and "badge" not in person
        first = {"zones": ["SH1"], "escort_only": True, "version": 1}
        assert call(daemon, "PUT", "/api/v1/records/roster/Pvt.%20Ash", CLERK_TOKEN,
                    first)[0] == 200
        status, answer = call(daemon, "PUT", "/api/v1/records/roster/Pvt.%20Ash",
                              SECOND_TOKEN, {"zones": ["SH1"], "version": 1})
        assert status == 409 and "reload" in answer["error"]
        # Vault access waits for a second officer; the badge is kept when not sent.
        status, answer = call(daemon, "PUT", "/api/v1/records/roster/Pvt.%20Ash", CLERK_TOKEN,
                              {"zones": ["SH1", "VAULT"], "version": 2})
        assert status == 202 and answer["parked"]["reason"] == "grants vault access (VAULT)"
        assert daemon.daemon.book.records.roster["Pvt. Ash"].zones == {"SH1"}


def test_a_change_answered_200_survives_sigkill_and_the_seed_does_not_undo_it(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    port = free_port()
    config = settings(tmp_path, mosquitto.port)
    config["api"]["listen_port"] = port
    process = DaemonProcess(tmp_path, config)
    process.start()
    try:
        process.wait_log("alert API listening")
        api = Running.__new__(Running)
        api.url = f"http://127.0.0.1:{port}"
        status, _ = call(api, "POST", "/api/v1/records/roster/Pvt.%20Ash/revoke", CLERK_TOKEN)
        assert status == 200
        # No clean close: the answer was sent once the change was committed (synchronous=FULL).
        assert process.proc is not None
        process.proc.send_signal(signal.SIGKILL)
        process.proc.wait(10)
        process.start()
        process.wait_log("alert API listening", count=2)
        status, person = call(api, "GET", "/api/v1/records/roster/Pvt.%20Ash", CLERK_TOKEN)
        # The config still lists him active: the seed was imported once, never again.
        assert (status, person["state"], person["version"]) == (200, "revoked", 2)
    finally:
        if process.running():
            process.stop()


def test_csv_import_is_all_or_nothing_with_line_numbers_and_a_dry_run(
        mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(tmp_path, mosquitto.port)
    config_file = tmp_path / "depotwatch.yaml"
    config_file.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DEPOTWATCH_TOKEN", CLERK_TOKEN)
    bad = ("name,badge,zones,valid_until\n"
           "Pvt. Cole,2001,SH1,\n"
           "Pvt. Dunn,1001,SH1,\n"
           "Pvt. Eads,2003,SH9 SH1,\n"
           "Pvt. Falk,2004,SH1,2020-13-01\n")
    good = "name,badge,zones\nPvt. Cole,2001,SH1\nPvt. Ash,,SH1 VAULT\n"
    (tmp_path / "bad.csv").write_text(bad)
    (tmp_path / "good.csv").write_text(good)
    with running(config, connected=False) as daemon:
        base = ["records", "import", "-c", str(config_file), "--url", daemon.url,
                "--kind", "roster"]
        assert main([*base, str(tmp_path / "bad.csv")]) == 1
        err = capsys.readouterr().err
        assert "3 bad row(s): nothing imported" in err
        assert "line 3: badge: this badge is already on the roster (Pvt. Ash)" in err
        assert "line 4: zones: no storehouse 'SH9' in this depot" in err
        assert "line 5: valid_until:" in err
        assert "Pvt. Cole" not in daemon.daemon.book.records.roster
        # Vault access through an import is no way around the second officer.
        assert main([*base, "--dry-run", str(tmp_path / "good.csv")]) == 1
        assert "roster Pvt. Ash: grants vault access (VAULT)" in capsys.readouterr().err
        (tmp_path / "good.csv").write_text("name,badge,zones\nPvt. Cole,2001,SH1\n")
        assert main([*base, "--dry-run", str(tmp_path / "good.csv")]) == 0
        assert "would change 1 record(s)" in capsys.readouterr().out
        assert "Pvt. Cole" not in daemon.daemon.book.records.roster
        assert main([*base, str(tmp_path / "good.csv")]) == 0
        assert "changed 1 record(s)" in capsys.readouterr().out
        assert daemon.daemon.book.records.roster["Pvt. Cole"].badge == "2001"
    assert main(["records", "export", "-c", str(config_file), "roster-history", "-"]) == 0
    history = capsys.readouterr().out
    assert "Pvt. Cole" in history and CLERK in history and "2001" not in history


def test_a_count_on_demand_warns_of_each_difference_and_is_kept_for_the_auditors(
        mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = settings(tmp_path, mosquitto.port)
    config_file = tmp_path / "depotwatch.yaml"
    config_file.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DEPOTWATCH_TOKEN", CLERK_TOKEN)
    stranger = "E2000000000000000000DEAD"
    with running(config) as daemon:
        for epc in (RIFLE, TARP, stranger):
            daemon.publish("rfid/inv1", {"epc": epc})
        eventually(lambda: daemon.daemon.pipeline.engine.snapshot()["rules"]
                   ["reconciliation"]["seen"].keys() >= {RIFLE, TARP, stranger})
        carry_out(daemon, TARP)  # no order
        time.sleep(0.5)
        command = ["records", "reconcile", "-c", str(config_file), "--url", daemon.url,
                   "--storehouse", "SH1"]
        assert main(command) == 1
        out = capsys.readouterr().out
        assert "3 on the book, 3 seen by its readers" in out
        assert f"missing: 1 ({PISTOL})" in out and f"unexpected: 1 ({stranger})" in out
        assert f"moved without order: 1 ({TARP})" in out
        keys = alarm_keys(daemon)
        assert {"reconciliation.missing.SH1", "reconciliation.unexpected.SH1",
                "reconciliation.moved_without_order.SH1"} <= set(keys)
        assert call(daemon, "POST", "/api/v1/records/reconcile/SH1", DUTY_TOKEN)[0] == 403
    assert main(["records", "export", "-c", str(config_file), "reconciliation", "-"]) == 0
    exported = capsys.readouterr().out.splitlines()
    assert exported[0].startswith("at,storehouse,by,on_book,seen,missing")
    assert f",SH1,{CLERK},3,3,1,1,1,{PISTOL},{stranger},{TARP}" in exported[1]
    points = (tmp_path / "points.lp").read_text()
    assert "reconciliation,site=records-depot,storehouse=SH1 " in points


def test_movement_orders_export_with_their_portal_passages_from_influxdb(
        mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    database = f"records_{uuid.uuid4().hex[:8]}"
    influxdb1.create_database(database)
    config = settings(tmp_path, mosquitto.port)
    config["influxdb"] = [{"api": "v1", "url": influxdb1.url, "database": database,
                           "flush_interval_s": 0.2}]
    config_file = tmp_path / "depotwatch.yaml"
    config_file.write_text(yaml.safe_dump(config))
    with running(config) as daemon:
        status, answer = call(daemon, "PUT", "/api/v1/records/movement_orders/MO-3",
                              CLERK_TOKEN, {"portal": "P1", "items": [TARP], **window()})
        assert status == 200, answer  # a tarp: no second officer
        carry_out(daemon, TARP)

        def stored() -> bool:
            found = influxdb1.query(database, 'SELECT "order" FROM "portal"')
            return bool(found["results"][0].get("series"))
        eventually(stored)
    assert main(["records", "export", "-c", str(config_file), "movements", "-"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert rows[0] == ("order,portal,valid_from,valid_until,state,issued_by,approved_by,items,"
                       "passage_at,passage_portal,direction,epc,item")
    assert len(rows) == 2
    fields = rows[1].split(",")
    assert fields[:2] == ["MO-3", "P1"] and fields[5] == CLERK
    assert fields[-4:] == ["P1", "out", TARP, "Tarp"]


def test_keys_from_the_cabinet_and_the_desk_go_on_the_register_and_an_overdue_key_warns(
        mosquitto: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = settings(tmp_path, mosquitto.port)
    store_key, vault_key = "4B00000000000001", "4B00000000000002"
    config["items"] += [
        {"epc": store_key, "name": "Store 1 key", "kind": "key", "storehouse": "SH1"},
        {"epc": vault_key, "name": "Vault key", "kind": "key", "storehouse": "VAULT"}]
    config["detectors"] = [{"id": "cab1", "kind": "key_cabinet", "storehouse": "SH1"}]
    config["mqtt"]["subscriptions"].append(
        {"topic": "keys/{sensor}", "decoder": {"type": "json_fields", "fields": {
            "epc": "key", "badge": "card", "action": "action"}}})
    config["rules"].append({"type": "key_register"})
    config_file = tmp_path / "depotwatch.yaml"
    config_file.write_text(yaml.safe_dump(config))
    with running(config) as daemon:
        book = daemon.daemon.book
        daemon.publish("keys/cab1", {"key": store_key, "card": "1001", "action": "taken"})
        eventually(lambda: any(k.epc == store_key and k.state.value == "active"
                               for k in book.records.key_issues.values()))
        issue = next(k for k in book.records.key_issues.values() if k.epc == store_key)
        assert issue.person == "Pvt. Ash"
        daemon.publish("keys/cab1", {"key": store_key, "card": "1001", "action": "returned"})
        eventually(lambda: all(k.state.value == "closed"
                               for k in book.records.key_issues.values()))
        # At the desk: an item that is no key, a person not on the roster, then due in 1 s.
        due = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat()
        status, answer = call(daemon, "POST", f"/api/v1/records/keys/{RIFLE}/issue",
                              CLERK_TOKEN, {"person": "Nobody", "due": due})
        assert status == 422
        assert {d["loc"][0] for d in answer["detail"]} == {"epc", "person"}
        status, answer = call(daemon, "POST", f"/api/v1/records/keys/{vault_key}/issue",
                              CLERK_TOKEN, {"person": "Pvt. Ash", "due": due})
        assert status == 200, answer
        eventually(lambda: f"key_overdue.{vault_key}" in alarm_keys(daemon), 5.0)
        status, _ = call(daemon, "POST", f"/api/v1/records/keys/{vault_key}/return",
                         CLERK_TOKEN)
        assert status == 200
        status, answer = call(daemon, "PUT", f"/api/v1/records/key_issues/{vault_key}",
                              CLERK_TOKEN, {})
        assert status == 404 and "/records/keys/" in answer["error"]
        eventually(lambda: f"key_overdue.{vault_key}" not in alarm_keys(daemon), 5.0)
    assert main(["records", "export", "-c", str(config_file), "key-register", "-"]) == 0
    register = capsys.readouterr().out.splitlines()
    assert register[0] == "key,epc,person,issued,due,returned,issued_by,returned_by"
    assert register[1].startswith(f"Store 1 key,{store_key},Pvt. Ash,")
    assert register[1].endswith(",key cabinet cab1,key cabinet cab1")
    assert register[2].startswith(f"Vault key,{vault_key},Pvt. Ash,")
    assert register[2].endswith(f",{CLERK},{CLERK}")
