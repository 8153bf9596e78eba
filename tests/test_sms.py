"""The sms notifier and acknowledgement by reply, on Gammu's dummy driver (a modem kept as
files: what is sent shows in Gammu's own log, a reply is planted with Gammu's AddSMS).

End to end: with the webhook to HQ down, an armed-door alarm reaches the duty officer's phone
by the SMS fallback within 40 s, and the officer's `ACK <ref> <PIN>` reply acknowledges it."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inprocess_daemon import depot, eventually, running
from servers import Mosquitto, free_port

from daemon.alerts.audit import export
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.roles import Role
from daemon.alerts.settings import AlertingConfig
from daemon.alerts.sms_replies import PhoneOfficer, ReplyDesk, hash_pin, pin_matches
from daemon.notifiers.common import Site, StorehouseInfo
from daemon.notifiers.modem import GsmModem, modem_settings
from daemon.notifiers.sms import SmsConfig, alert_reference, split_text, text_for
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Severity, TransitionKind

gammu = pytest.importorskip("gammu")

PHONE = "+4917012345678"
OTHER = "+4917099999999"
SITE = Site(id="north", name="Depot North")
_NS = 1_000_000_000


def _phone_dir(tmp_path: Path) -> tuple[Path, Path]:
    """A dummy modem (a directory) and a gammurc whose log shows every text sent."""
    phone = tmp_path / "phone"
    phone.mkdir()
    log = tmp_path / "gammu.log"
    rc = tmp_path / "gammurc"
    rc.write_text(f"[gammu]\ndevice = {phone}\nconnection = none\nmodel = dummy\n"
                  f"logfile = {log}\nlogformat = textall\n")
    return rc, log


def sent_texts(log: Path) -> list[tuple[str, str]]:
    """(number, text) of every text Gammu sent, from its log."""
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    out: list[tuple[str, str]] = []
    for i, line in enumerate(lines):
        found = re.match(r'Recipient number "(.*)"', line)
        if found:
            j = next(k for k in range(i, len(lines)) if re.search(r"SMS, length \d+", lines[k]))
            out.append((found[1], lines[j + 1]))
    return out


def plant_reply(phone_dir: Path, sender: str, text: str) -> None:
    """A text from `sender` in the modem's inbox, put there by Gammu itself."""
    machine = gammu.StateMachine()
    machine.SetConfig(0, {"Device": str(phone_dir), "Connection": "none", "Model": "dummy"})
    machine.Init()
    machine.AddSMS({"Folder": 1, "Number": sender, "Text": text, "State": "UnRead",
                    "Type": "Deliver", "Coding": "Default",
                    "SMSC": {"Location": 0, "Number": "+49000"}})
    machine.Terminate()


def _alert(key: str = "door_armed.SH1-D2", state: TransitionKind = TransitionKind.FIRING,
           **facts: Any) -> Alert:
    return Alert(key=key, rule="door_armed", subject="SH1-D2", severity=Severity.CRITICAL,
                 state=state, summary="door SH1-D2 opened while armed", storehouse="SH1",
                 started_ns=1_700_000_000 * _NS, changed_ns=1_700_000_005 * _NS, facts=facts)


# -- the text -------------------------------------------------------------------------------

def test_text_says_what_where_when_and_how_to_answer() -> None:
    import zoneinfo

    site = Site(id="north", name="Depot North",
                storehouses={"SH1": StorehouseInfo("Small-arms store 1",
                                                   zoneinfo.ZoneInfo("Europe/Berlin"))})
    alert = _alert()
    ref = alert_reference(alert.key, alert.started_ns)
    text = text_for(alert, site, pin_required=True)
    assert text == (f"CRITICAL Depot North: door SH1-D2 opened while armed - Small-arms store 1, "
                    f"since 2023-11-14 23:13:20 CET. Ref {ref}. Reply ACK {ref} <PIN> to "
                    "acknowledge.")
    assert len(split_text(text, 3)) == 1
    assert text_for(_alert(acked_by="Sgt Weber"), site, False).startswith(
        "ACKNOWLEDGED by Sgt Weber: door SH1-D2")
    assert text_for(_alert(state=TransitionKind.RESOLVED), site, False).startswith(
        "CLEARED critical: door SH1-D2")


def test_reference_is_stable_and_differs_for_the_next_alarm() -> None:
    assert alert_reference("door_armed.SH1-D2", 5) == alert_reference("door_armed.SH1-D2", 5)
    refs = {alert_reference("door_armed.SH1-D2", n) for n in range(50)}
    assert len(refs) > 40 and all(re.fullmatch(r"\d{4}", r) for r in refs)


@given(st.text(min_size=0, max_size=2000), st.integers(min_value=1, max_value=10))
def test_split_fits_one_sms_each_and_keeps_the_order(text: str, max_parts: int) -> None:
    parts = split_text(text, max_parts)
    assert 1 <= len(parts) <= max_parts
    # Cyrillic, CJK and the like are never in GSM 03.38: such a text goes as UCS-2.
    limit = 70 if any(ord(c) > 0x3FF for c in text) else 160
    assert all(len(p) <= limit for p in parts)
    if len(parts) > 1:
        bodies = [re.sub(r"^\(\d+/\d+\) ", "", p) for p in parts]
        joined = "".join(bodies)
        assert text.startswith(joined[:-1])


# -- replies --------------------------------------------------------------------------------

class _Desk:
    """An alarm desk with one open alarm and an audit trail in a list."""

    def __init__(self) -> None:
        self.audit: list[tuple[str, str, str, dict[str, Any]]] = []
        self.desk = AlarmDesk(AlertingConfig(), lambda alert, targets: None,
                              lambda actor, action, subject, details, at: self.audit.append(
                                  (actor, action, subject, dict(details))))
        self.alert = _alert()
        self.desk.condition(self.alert, self.alert.changed_ns)
        opened = self.desk.get(self.alert.key)
        self.ref = alert_reference(opened.key, opened.started_ns)


    def replies(self, roles: dict[str, Role] | None = None) -> ReplyDesk:
        """The reply desk over this desk; officers are operators unless `roles` says else."""
        known = roles or {}
        return ReplyDesk(self.desk, lambda o: known.get(o, Role.OPERATOR),
                         lambda *a: self.audit.append((a[0], a[1], a[2], dict(a[3]))),
                         alert_reference)


def test_ack_from_an_officers_phone_acknowledges_with_that_officer() -> None:
    desk = _Desk()
    roster = [PhoneOfficer("weber", PHONE, hash_pin("4711"))]
    replies = desk.replies()
    wrong = replies.take(PHONE, f"ACK {desk.ref} 1234", roster, True, "sms", 2 * _NS)
    assert not wrong.taken and wrong.reason == "wrong or missing PIN"
    unknown = replies.take(OTHER, f"ACK {desk.ref} 4711", roster, True, "sms", 3 * _NS)
    assert not unknown.taken and unknown.answer is None  # never text a stranger back
    # Networks give the sender as 0049...: still the officer's phone.
    taken = replies.take("0049" + PHONE[3:], f"ack {desk.ref} 4711 on my way", roster, True,
                         "sms", 4 * _NS)
    assert taken.taken and taken.alarm_key == desk.alert.key
    alarm = desk.desk.get(desk.alert.key)
    assert alarm.acked_by == "weber" and "on my way" in alarm.ack_note
    assert "4711" not in alarm.ack_note and "4711" not in json.dumps(desk.audit)
    actions = [(a[0], a[1]) for a in desk.audit if a[1].startswith("sms_reply")]
    assert actions == [("weber", "sms_reply_refused"), (f"phone {OTHER}", "sms_reply_refused"),
                       ("weber", "sms_reply_taken")]
    again = replies.take(PHONE, f"ACK {desk.ref} 4711", roster, True, "sms", 5 * _NS)
    assert not again.taken and "already acknowledged by weber" in again.reason


def test_five_wrong_pins_lock_the_phone_out_for_an_hour() -> None:
    desk = _Desk()
    roster = [PhoneOfficer("weber", PHONE, hash_pin("4711"))]
    replies = desk.replies()
    for n in range(5):
        assert not replies.take(PHONE, f"ACK {desk.ref} 000{n}", roster, True, "sms",
                                n * _NS).taken
    locked = replies.take(PHONE, f"ACK {desk.ref} 4711", roster, True, "sms", 10 * _NS)
    assert not locked.taken and "too many wrong PINs" in locked.reason
    later = replies.take(PHONE, f"ACK {desk.ref} 4711", roster, True, "sms", 3700 * _NS)
    assert later.taken


def test_a_viewer_cannot_acknowledge_and_a_wrong_reference_is_refused() -> None:
    desk = _Desk()
    roster = [PhoneOfficer("clerk", PHONE)]
    viewer = desk.replies({"clerk": Role.VIEWER}).take(PHONE, f"ACK {desk.ref}", roster, False,
                                                   "sms", _NS)
    assert not viewer.taken and "viewer" in viewer.reason
    other_ref = f"{(int(desk.ref) + 1) % 10_000:04d}"
    missing = desk.replies().take(PHONE, f"ACK {other_ref}", roster, False, "sms", _NS)
    assert not missing.taken and "no open alarm" in missing.reason
    garbled = desk.replies().take(PHONE, "yes", roster, False, "sms", _NS)
    assert not garbled.taken and garbled.answer is not None and "ACK <ref>" in garbled.answer


def test_pin_digest_round_trip() -> None:
    stored = hash_pin("4711")
    assert pin_matches("4711", stored) and not pin_matches("4712", stored)
    assert not pin_matches("4711", "garbage")
    roster = [PhoneOfficer("weber", PHONE, stored)]
    # What the modem watch checks on a worker thread before the desk takes the reply.
    assert ReplyDesk.claimed_pin(PHONE, "ACK 1234 4711 on my way", roster) == ("4711", stored)
    assert ReplyDesk.claimed_pin(OTHER, "ACK 1234 4711", roster) is None
    assert ReplyDesk.claimed_pin(PHONE, "ACK 1234", roster) is None
    desk = _Desk()
    refused = desk.replies().take(PHONE, f"ACK {desk.ref} 4711", roster, True, "sms", _NS,
                                  pin_ok=False)
    assert not refused.taken and refused.reason == "wrong or missing PIN"
    taken = desk.replies().take(PHONE, f"ACK {desk.ref} 9999", roster, True, "sms", 2 * _NS,
                                pin_ok=True)
    assert taken.taken


# -- the modem -------------------------------------------------------------------------------

def test_modem_sends_reads_replies_and_reports_its_state(tmp_path: Path) -> None:
    rc, log = _phone_dir(tmp_path)

    async def scenario() -> tuple[Any, list[Any], list[Any]]:
        modem = GsmModem(modem_settings("", "", gammurc=rc), "duty-sms")
        try:
            await modem.send(PHONE, ["(1/2) first", "(2/2) second"])
            state = await modem.state()
            plant_reply(tmp_path / "phone", PHONE, "ACK 1234")
            first = await modem.take_received()
            second = await modem.take_received()
        finally:
            await modem.close()
        return state, first, second

    state, first, second = asyncio.run(scenario())
    assert sent_texts(log) == [(PHONE, "(1/2) first"), (PHONE, "(2/2) second")]
    assert state.registered and state.sim == "ready" and state.trouble() is None
    assert [(t.number, t.text) for t in first] == [(PHONE, "ACK 1234")]
    assert second == []  # read once


def test_config_mistakes_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="give the modem's `device`"):
        SmsConfig(officers=[{"officer": "a", "phone": PHONE}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="pin_required, but no pin_hash for a"):
        SmsConfig(device="/dev/ttyUSB2", pin_required=True,
                  officers=[{"officer": "a", "phone": PHONE}])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="phone"):
        SmsConfig(device="/dev/ttyUSB2",
                  officers=[{"officer": "a", "phone": "0170 123"}])  # type: ignore[list-item]


# -- end to end -------------------------------------------------------------------------------

@pytest.fixture
def broker(tmp_path: Path) -> Any:
    with Mosquitto(tmp_path / "mosquitto") as server:
        yield server


def test_armed_door_by_sms_when_hq_is_down_and_acknowledged_by_reply(
        tmp_path: Path, broker: Mosquitto) -> None:
    rc, log = _phone_dir(tmp_path)
    config: dict[str, Any] = depot(tmp_path / "state", broker.port)
    config["api"] = {"listen_port": 0, "officers": [
        {"name": "weber", "token_sha256": "ab" * 32}]}
    config["notifiers"] = [
        # Nothing listens on HQ's port: the uplink was cut.
        {"type": "webhook", "name": "hq-webhook", "url": f"http://127.0.0.1:{free_port()}/h",
         "secret": "sms-test-secret-0123456789", "timeout_s": 1},
        {"type": "sms", "name": "duty-sms", "gammurc": str(rc), "pin_required": True,
         "poll_s": 0.3, "officers": [
             {"officer": "weber", "phone": PHONE, "pin_hash": hash_pin("4711")}]},
        {"type": "dual_path", "name": "hq", "primary": "hq-webhook", "fallback": "duty-sms",
         "fallback_after_s": 5},
    ]
    with running(config) as r:
        r.publish("zigbee2mqtt/door1", {"contact": True})
        time.sleep(0.5)
        opened = time.monotonic()
        r.publish("zigbee2mqtt/door1", {"contact": False})
        eventually(lambda: bool(sent_texts(log)), timeout_s=40)
        took = time.monotonic() - opened
        number, text = sent_texts(log)[0]
        ref = re.search(r"Ref (\d{4})", text)
        assert ref is not None
        plant_reply(tmp_path / "phone", PHONE, f"ACK {ref[1]} 4711 going now")
        eventually(lambda: r.daemon.desk.get("door_armed.SH1-D1").acked_by == "weber",
                   timeout_s=10)
        # The officer hears that it was taken.
        eventually(lambda: any(t.startswith(f"ACK {ref[1]} taken") for _, t in
                               sent_texts(log)), timeout_s=10)
        # The acknowledgement's own text goes out by the same fallback (counted once sent).
        hq = next(o for o in r.daemon.outboxes if o.notifier.name == "hq")
        eventually(lambda: hq.figures().delivered == 2, timeout_s=20)
        audit = list(export(r.daemon.audit.path, 0))
        sent = sent_texts(log)
        figures = {f.name: f for f in (o.figures() for o in r.daemon.outboxes)}
        dual = hq.notifier
    assert number == PHONE and "door SH1-D1 opened while armed" in text
    assert took < 40
    assert [e["action"] for e in audit if e["action"].startswith("sms_reply")] == [
        "sms_reply_taken"]
    # The firing and the acknowledgement both went by the fallback.
    assert getattr(dual, "delivered_by", {}) == {"duty-sms": 2}
    assert figures["hq"].delivered_by == {"duty-sms": 2}
    assert any(t.startswith("ACKNOWLEDGED by weber") for _, t in sent)


def test_a_modem_gone_is_a_fault_and_delays_no_armed_door_alarm(
        tmp_path: Path, broker: Mosquitto) -> None:
    # The modem's device does not exist (unplugged): every modem call fails. The armed door's
    # alarm must still reach the desk and MQTT at once; the lost path is a gateway fault.
    config: dict[str, Any] = depot(tmp_path / "state", broker.port)
    config["rules"] = [{"type": "door_armed"}, {"type": "gateway_fault"}]
    config["api"]["officers"].append({"name": "weber", "token_sha256": "cd" * 32})
    config["notifiers"] = [
        {"type": "sms", "name": "duty-sms", "device": str(tmp_path / "ttyUSB-gone"),
         "poll_s": 0.3, "officers": [{"officer": "weber", "phone": PHONE}]}]
    with running(config) as r:
        eventually(lambda: any(a.rule == "sms_modem" for a in r.daemon.desk.alarms()),
                   timeout_s=10)
        fault = next(a for a in r.daemon.desk.alarms() if a.rule == "sms_modem")
        r.publish("zigbee2mqtt/door1", {"contact": True})
        time.sleep(0.3)
        opened = time.monotonic()
        r.publish("zigbee2mqtt/door1", {"contact": False})
        eventually(lambda: any(a.rule == "door_armed" for a in r.daemon.desk.alarms()),
                   timeout_s=10)
        took = time.monotonic() - opened
        mqtt = next(o for o in r.daemon.outboxes if o.notifier.name == "mqtt")
        eventually(lambda: mqtt.delivered >= 2, timeout_s=10)
    assert "duty-sms" in fault.summary and "modem cannot send" in fault.summary
    assert took < 2.0
