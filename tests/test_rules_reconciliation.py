"""The daily count (rules/reconciliation.py): pure, fed readings and ticks by hand."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from daemon.vocabulary.readings import Reading, TransitionKind
from rules.base import Fact, Outcome
from rules.depot import (
    Depot,
    Item,
    ItemKind,
    MovementOrder,
    Portal,
    Sensor,
    SensorKind,
    Storehouse,
    Supervision,
)
from rules.reconciliation import (
    RECONCILE_PREFIX,
    ReconciliationRule,
    ReconciliationRuleConfig,
)

NS = 1_000_000_000
ZONE = ZoneInfo("Europe/Vienna")
BOOKED = [f"E2{i:022X}" for i in range(1, 6)]
STRANGER = "E2FFFFFFFFFFFFFFFFFFFFFF"


def at(day: int, hour: int, minute: int = 0) -> int:
    """A local time in the storehouse's zone, as ns."""
    return int(dt.datetime(2026, 12, day, hour, minute, tzinfo=ZONE).timestamp() * NS)


def depot(orders: tuple[MovementOrder, ...] = ()) -> Depot:
    sensors = {
        "inv1": Sensor("inv1", SensorKind.INVENTORY_READER, "SH1", Supervision.WIRED),
        "ant_in": Sensor("ant_in", SensorKind.PORTAL_ANTENNA, "SH1", Supervision.WIRED,
                         portal="P1"),
        "ant_out": Sensor("ant_out", SensorKind.PORTAL_ANTENNA, "SH1", Supervision.WIRED,
                          portal="P1"),
    }
    return Depot(
        site="d", storehouses={"SH1": Storehouse("SH1", "Store 1", ZONE),
                               "SH2": Storehouse("SH2", "Store 2", ZONE)},
        doors={}, sensors=sensors,
        portals={"P1": Portal("P1", "SH1", "ant_in", "ant_out")},
        items={e: Item(e, f"Rifle {i}", ItemKind.WEAPON, "L1", "SH1")
               for i, e in enumerate(BOOKED)},
        movement_orders=orders)


def seen(epc: str, t: int) -> Reading:
    return Reading(sensor="inv1", at_ns=t, values={"epc": epc})


def fact(outcomes: list[Outcome]) -> Fact:
    return next(o for o in outcomes if isinstance(o, Fact))


def test_the_daily_count_finds_missing_unexpected_and_moved_items() -> None:
    rule = ReconciliationRule(ReconciliationRuleConfig(), depot())
    assert rule.tick(at(7, 7)) == []
    for epc in [*BOOKED[:3], STRANGER]:
        rule.observe(seen(epc, at(7, 7, 30)), at(7, 7, 30))
    # BOOKED[2] carried out with no order.
    rule.observe(Reading("ant_in", at(7, 7, 40), {"epc": BOOKED[2]}), at(7, 7, 40))
    rule.observe(Reading("ant_out", at(7, 7, 40) + 2 * NS, {"epc": BOOKED[2]}), at(7, 7, 41))
    out = rule.tick(at(7, 8))
    counted = fact(out)
    assert counted.fields["on_book"] == 5.0 and counted.fields["seen"] == 4.0
    assert counted.fields["missing_epcs"] == " ".join(BOOKED[3:])
    assert counted.fields["unexpected_epcs"] == STRANGER
    assert counted.fields["moved_without_order_epcs"] == BOOKED[2]
    firing = {o.subject for o in out if not isinstance(o, Fact)}
    assert firing == {"missing.SH1", "unexpected.SH1", "moved_without_order.SH1"}
    # Not again until tomorrow's count, which no longer sees yesterday's reads.
    assert rule.tick(at(7, 9)) == []
    for epc in BOOKED:
        rule.observe(seen(epc, at(8, 7)), at(8, 7))
    resolved = [o for o in rule.tick(at(8, 8)) if not isinstance(o, Fact)]
    assert {(o.subject, o.kind) for o in resolved} == {
        ("missing.SH1", TransitionKind.RESOLVED), ("unexpected.SH1", TransitionKind.RESOLVED),
        ("moved_without_order.SH1", TransitionKind.RESOLVED)}


def test_an_exit_under_an_order_is_no_difference_and_an_officer_counts_on_demand() -> None:
    order = MovementOrder("MO-1", "P1", frozenset({BOOKED[0]}), at(7, 0), at(7, 23))
    rule = ReconciliationRule(ReconciliationRuleConfig(), depot((order,)))
    rule.tick(at(7, 9))
    rule.observe(Reading("ant_in", at(7, 10), {"epc": BOOKED[0]}), at(7, 10))
    rule.observe(Reading("ant_out", at(7, 10) + NS, {"epc": BOOKED[0]}), at(7, 10))
    out = rule.observe(Reading(f"{RECONCILE_PREFIX}SH1", at(7, 11), {"by": "Lt. Dahl"}),
                       at(7, 11))
    assert fact(out).fields["moved_without_order"] == 0.0 and fact(out).fields["by"] == "Lt. Dahl"
    assert rule.observe(Reading(f"{RECONCILE_PREFIX}NOPE", at(7, 11), {}), at(7, 11)) == []


def test_state_survives_a_restart() -> None:
    rule = ReconciliationRule(ReconciliationRuleConfig(), depot())
    rule.tick(at(7, 7))
    for epc in BOOKED:
        rule.observe(seen(epc, at(7, 7, 30)), at(7, 7, 30))
    again = ReconciliationRule(ReconciliationRuleConfig(), depot())
    again.restore(rule.snapshot())
    assert fact(again.tick(at(7, 8))).fields["missing"] == 0.0


@given(st.sets(st.sampled_from([*BOOKED, STRANGER])))
def test_every_item_is_counted_once_as_seen_or_missing(read: set[str]) -> None:
    rule = ReconciliationRule(ReconciliationRuleConfig(), depot())
    for epc in sorted(read):
        rule.observe(seen(epc, at(7, 7)), at(7, 7))
    counted = fact(rule.observe(Reading(f"{RECONCILE_PREFIX}SH1", at(7, 8), {}), at(7, 8)))
    missing = counted.fields["missing"]
    unexpected = counted.fields["unexpected"]
    assert isinstance(missing, float) and isinstance(unexpected, float)
    assert missing + len(read & set(BOOKED)) == len(BOOKED)
    assert unexpected == float(STRANGER in read)


def test_taking_over_a_running_engine_equals_a_snapshot_and_restore() -> None:
    from rules.engine import Engine
    from rules.item_unseen import ItemUnseenRuleConfig

    def engine() -> Engine:
        d = depot()
        return Engine([("item_unseen", ItemUnseenRuleConfig().build(d)),
                       ("reconciliation", ReconciliationRuleConfig().build(d))], d)

    running = engine()
    running.tick(at(7, 6))
    for epc in [*BOOKED[:2], STRANGER]:
        running.observe(seen(epc, at(7, 7)), at(7, 7))
    running.observe(Reading("ant_in", at(7, 7, 5), {"epc": BOOKED[3]}), at(7, 7, 5))
    taken, restored = engine(), engine()
    taken.take_over(running)
    restored.restore(running.snapshot())
    assert taken.snapshot() == restored.snapshot() == running.snapshot()


@given(st.lists(st.tuples(st.sampled_from([*BOOKED[:2], STRANGER]),
                          st.integers(min_value=0, max_value=3 * 3600)), max_size=40))
def test_shelf_reads_make_one_point_per_item_per_window(reads: list[tuple[str, int]]) -> None:
    rule = ReconciliationRule(ReconciliationRuleConfig(shelf_point_s=3600.0), depot())
    start = at(7, 0)  # on the hour: windows are aligned to the epoch
    points = [o for epc, s in sorted(reads, key=lambda r: r[1])
              for o in rule.observe(seen(epc, start + s * NS), start + s * NS)]
    assert all(isinstance(p, Fact) and p.measurement == "inventory"
               and p.tags == {"storehouse": "SH1", "reader": "inv1"} for p in points)
    windows = {(epc, s // 3600) for epc, s in reads}
    assert len(points) == len(windows)
    # Each point is its window's first read of the item.
    for p in points:
        assert isinstance(p, Fact)
        epc = str(p.fields["epc"])
        window = (p.at_ns - start) // (3600 * NS)
        assert p.at_ns == start + NS * min(s for e, s in reads
                                           if e == epc and s // 3600 == window)
    named = {p.fields["item"] for p in points if isinstance(p, Fact)
             and p.fields["epc"] == BOOKED[0]}
    assert named <= {"Rifle 0"}
