"""The key register rule (rules/key_register.py): pure, fed by hand."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from daemon.vocabulary.readings import Reading, Transition, TransitionKind
from rules.base import Fact
from rules.depot import (
    Depot,
    Door,
    Item,
    ItemKind,
    KeyIssue,
    Person,
    Sensor,
    SensorKind,
    Storehouse,
    Supervision,
)
from rules.key_register import KeyRegisterRule, KeyRegisterRuleConfig

NS = 1_000_000_000
ZONE = ZoneInfo("Europe/Vienna")
STORE_KEY, VAULT_KEY = "4B0000000001", "4B0000000002"


def at(day: int, hour: int, minute: int = 0) -> int:
    return int(dt.datetime(2026, 12, day, hour, minute, tzinfo=ZONE).timestamp() * NS)


def depot(keys_out: dict[str, KeyIssue] | None = None) -> Depot:
    return Depot(
        site="d", storehouses={"SH1": Storehouse("SH1", "Store 1", ZONE),
                               "V": Storehouse("V", "Vault", ZONE)},
        doors={"V1": Door("V1", "V", "vc", two_person=True)},
        sensors={"cab1": Sensor("cab1", SensorKind.KEY_CABINET, "SH1", Supervision.WIRED)},
        roster={"1001": Person("Sgt. Berger", frozenset({"SH1"}))},
        items={STORE_KEY: Item(STORE_KEY, "Store 1 key", ItemKind.KEY, "", "SH1"),
               VAULT_KEY: Item(VAULT_KEY, "Vault key", ItemKind.KEY, "", "V")},
        keys_out=keys_out or {}, badge_salt=b"salt")


def test_a_cabinet_event_names_the_person_and_never_the_badge() -> None:
    rule = KeyRegisterRule(KeyRegisterRuleConfig(), depot())
    [taken] = rule.observe(Reading("cab1", at(7, 9), {"epc": STORE_KEY, "badge": "1001",
                                                     "action": "taken"}), at(7, 9))
    assert isinstance(taken, Fact) and taken.tags == {"storehouse": "SH1", "action": "taken"}
    assert taken.fields["person"] == "Sgt. Berger" and "1001" not in repr(taken)
    [stranger] = rule.observe(Reading("cab1", at(7, 9), {"epc": STORE_KEY, "badge": "77",
                                                        "action": "taken"}), at(7, 9))
    assert isinstance(stranger, Fact)
    assert stranger.fields["person"] == "" and len(str(stranger.fields["badge_hash"])) == 16
    assert rule.observe(Reading("cab1", at(7, 9), {"epc": STORE_KEY, "badge": "1001",
                                                   "action": "opened"}), at(7, 9)) == []


def test_overdue_warns_a_vault_key_overnight_alarms_and_both_resolve_on_return() -> None:
    out = {STORE_KEY: KeyIssue(STORE_KEY, "Sgt. Berger", at(7, 8), at(7, 16)),
           VAULT_KEY: KeyIssue(VAULT_KEY, "Sgt. Berger", at(7, 8), at(8, 8))}
    rule = KeyRegisterRule(KeyRegisterRuleConfig(), depot(out))
    assert rule.tick(at(7, 15)) == []
    [overdue] = rule.tick(at(7, 16, 1))
    assert isinstance(overdue, Transition)
    assert (overdue.rule, overdue.subject, overdue.severity.value) == (
        "key_overdue", STORE_KEY, "warning")
    assert rule.tick(at(7, 21)) == []
    [overnight] = rule.tick(at(7, 22, 1))
    assert isinstance(overnight, Transition)
    assert (overnight.rule, overnight.subject, overnight.severity.value) == (
        "key_overnight", VAULT_KEY, "alarm")
    # Both keys back on the register: a new depot, the rule's state carried over.
    back = KeyRegisterRule(KeyRegisterRuleConfig(), dataclasses.replace(depot(), keys_out={}))
    back.restore(rule.snapshot())
    resolved = back.tick(at(7, 23))
    assert {(t.rule, t.kind) for t in resolved if isinstance(t, Transition)} == {
        ("key_overdue", TransitionKind.RESOLVED), ("key_overnight", TransitionKind.RESOLVED)}


def test_a_vault_key_issued_after_the_overnight_time_waits_for_the_next_night() -> None:
    out = {VAULT_KEY: KeyIssue(VAULT_KEY, "Sgt. Berger", at(7, 22, 30), at(8, 12))}
    rule = KeyRegisterRule(KeyRegisterRuleConfig(), depot(out))
    assert rule.tick(at(7, 23)) == []
    assert rule.tick(at(8, 11)) == []
