"""The item lifecycle (issue 27), pure: the rule `item_state` fed by hand, the steps the book
allows, the daily count and the unseen warning judging only items at home, and a loss report
made with InfluxDB away (it says so and keeps the rest)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from daemon.book.checks import NEXT_STATES, approval_needed, problems
from daemon.book.entries import LifecycleEntry, Records
from daemon.book.losses import gather, summary
from daemon.config.schema import Config
from daemon.vocabulary.readings import Reading, Transition, TransitionKind
from rules.base import Fact
from rules.depot import (
    AT_HOME,
    GONE,
    Depot,
    Item,
    ItemKind,
    ItemState,
    Sensor,
    SensorKind,
    Storehouse,
    Supervision,
)
from rules.item_state import ItemStateRule, ItemStateRuleConfig
from rules.item_unseen import ItemUnseenRule, ItemUnseenRuleConfig
from rules.reconciliation import ReconciliationRule, ReconciliationRuleConfig

NS = 1_000_000_000
ZONE = ZoneInfo("UTC")
RIFLE = "E20000000000000000000A01"


def depot(state: ItemState) -> Depot:
    return Depot(site="d", storehouses={"SH1": Storehouse("SH1", "Store 1", ZONE)}, doors={},
                 sensors={"inv1": Sensor("inv1", SensorKind.INVENTORY_READER, "SH1",
                                         Supervision.RADIO)},
                 items={RIFLE: Item(RIFLE, "Rifle 1", ItemKind.WEAPON, "L1", "SH1", state)})


def read(rule: ItemStateRule, at_s: float) -> list[Transition]:
    out = rule.observe(Reading("inv1", int(at_s * NS), {"epc": RIFLE}), int(at_s * NS))
    return [t for t in out if isinstance(t, Transition)]


@given(st.sampled_from(list(ItemState)))
def test_only_items_gone_or_lost_alarm_when_read_and_once_per_event(state: ItemState) -> None:
    rule = ItemStateRule(ItemStateRuleConfig(), depot(state))
    first = read(rule, 10)
    if state not in GONE and state is not ItemState.LOST:
        assert first == []
        return
    [fired] = first
    assert fired.key == f"item_state.{state.value}.{RIFLE}"
    assert fired.severity.value == ("warning" if state is ItemState.LOST else "critical")
    assert read(rule, 20) == []  # the same event, extended
    assert rule.tick(int(20 * NS + 899 * NS)) == []
    [closed] = rule.tick(int(20 * NS + 900 * NS))
    assert closed.kind is TransitionKind.RESOLVED


def test_a_loss_report_request_is_an_alarm_with_its_summary() -> None:
    rule = ItemStateRule(ItemStateRuleConfig(), depot(ItemState.LOST))
    [fired] = rule.observe(Reading(f"loss:{RIFLE}", 5 * NS, {"summary": "LOSS REPORT: x",
                                                              "report": "/r.json"}), 5 * NS)
    assert isinstance(fired, Transition) and fired.key == f"item_state.lost.{RIFLE}"
    assert fired.summary == "Store 1: LOSS REPORT: x" and fired.severity.value == "alarm"
    assert rule.observe(Reading("loss:E2FFFF", 5 * NS, {}), 5 * NS) == []


@given(st.sampled_from(list(ItemState)), st.sampled_from(list(ItemState)))
def test_steps_follow_the_lifecycle_and_leaving_the_book_needs_a_second_officer(
        now: ItemState, then: ItemState) -> None:
    places = depot(now)
    records = Records(items=places.items)
    step = LifecycleEntry("s", RIFLE, then, "SH1", "DOC-1", "", 0)
    found = problems("lifecycle", step, records, places, 0)
    assert (found == []) == (then in NEXT_STATES[now])
    assert then is not ItemState.RECEIVED or found  # received only through a consignment
    assert not NEXT_STATES[ItemState.DESTROYED] and not NEXT_STATES[ItemState.TRANSFERRED]
    assert bool(approval_needed("lifecycle", step, records, places)) == (then in GONE)
    if then is ItemState.DESTROYED and not found:
        bare = dataclasses.replace(step, document=" ")
        assert [p.field for p in problems("lifecycle", bare, records, places, 0)] == [
            "document"]


@given(st.sampled_from(list(ItemState)))
def test_the_count_and_the_unseen_warning_expect_only_items_at_home(state: ItemState) -> None:
    places = depot(state)
    count = ReconciliationRule(ReconciliationRuleConfig(), places)
    fact, *warnings = count.count("SH1", 10 * NS, "test")
    missing = [t for t in warnings if isinstance(t, Transition)]
    assert bool(missing) == (state in AT_HOME)
    assert isinstance(fact, Fact) and fact.fields["on_book"] == float(state in AT_HOME)
    unseen = ItemUnseenRule(ItemUnseenRuleConfig(max_unseen_s=60), places)
    unseen.tick(0)
    assert bool(unseen.tick(61 * NS)) == (state in AT_HOME)


def test_a_loss_report_with_influxdb_away_says_so_and_keeps_the_rest(tmp_path: Path) -> None:
    config = Config.model_validate({
        "site": {"id": "d"}, "state_dir": str(tmp_path),
        "storehouses": [{"id": "SH1", "name": "Store 1"}],
        "influxdb": [{"api": "v1", "url": "http://127.0.0.1:9", "database": "x"}],
        "mqtt": {"host": "127.0.0.1", "subscriptions": []}})
    places = depot(ItemState.LOST)
    report = gather(config, [], Records(items=places.items), RIFLE, "marked lost", "Cpl. Reyes",
                    (3 * NS, "inv1"), 100 * NS)
    assert report["gaps"] and report["gaps"][0].startswith("InfluxDB not read")
    assert report["last_seen"] == {"at": "1970-01-01T00:00:03+00:00", "sensor": "inv1"}
    text = summary(report, tmp_path / "loss-x.json")
    assert text.startswith("LOSS REPORT: Rifle 1") and "last read" in text
