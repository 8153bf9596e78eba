"""The records store: versioned writes, history, parked changes, the seed, the rules' view."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from daemon.book.checks import approval_needed, problems
from daemon.book.entries import EntryState, MovementOrderEntry, RosterEntry, WorkOrderEntry
from daemon.book.judged import judged_depot
from daemon.book.live import seed_store
from daemon.book.store import RecordsStore, StaleRecord, Write
from daemon.config.schema import Config
from rules.depot import Item, ItemKind

NOW = int(dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC).timestamp() * 1e9)
HOUR = 3600 * 10**9
RIFLE = "E2000000000000000000A001"


def _config(tmp_path: Path, **sections: Any) -> Config:
    return Config.model_validate({
        "site": {"id": "d"}, "state_dir": str(tmp_path),
        "storehouses": [{"id": "SH1"}, {"id": "VAULT"}],
        "doors": [{"id": "D1", "storehouse": "SH1", "contact_sensor": "c1"},
                  {"id": "V1", "storehouse": "VAULT", "contact_sensor": "c2",
                   "two_person": True}],
        "portals": [{"id": "P1", "storehouse": "SH1", "inner_antenna": "a1",
                     "outer_antenna": "a2"}],
        "mqtt": {"host": "127.0.0.1", "subscriptions": []},
        **sections})


def _person(name: str = "Pvt. Ash", badge: str = "1001", zones: tuple[str, ...] = ("SH1",),
            state: EntryState = EntryState.ACTIVE) -> RosterEntry:
    return RosterEntry(name, badge, frozenset(zones), state=state)


def test_a_write_is_versioned_and_its_history_holds_before_and_after(tmp_path: Path) -> None:
    store = RecordsStore(tmp_path / "records.sqlite")
    [first] = store.write([Write("roster", _person(), None)], "Lt. Kay", NOW)
    assert first.version == 1 and first.before is None
    [second] = store.write([Write("roster", _person(zones=("SH1", "VAULT")), 1)], "Lt. Kay",
                           NOW + 1)
    assert second.version == 2
    assert second.before is not None and second.before["zones"] == ["SH1"]
    assert second.after is not None and second.after["zones"] == ["SH1", "VAULT"]
    # Badge numbers never in the history: a digest tells one badge from another.
    assert "1001" not in repr(store.history("roster"))
    assert [c.version for c in store.history("roster")] == [1, 2]
    store.close()
    assert (tmp_path / "records.sqlite").stat().st_mode & 0o777 == 0o600
    again = RecordsStore(tmp_path / "records.sqlite")
    assert again.load().roster["Pvt. Ash"].zones == {"SH1", "VAULT"}


def test_a_second_writer_on_an_old_version_is_told_to_reload(tmp_path: Path) -> None:
    store = RecordsStore(tmp_path / "records.sqlite")
    store.write([Write("roster", _person(), None)], "a", NOW)
    store.write([Write("roster", _person(zones=("VAULT",)), 1)], "a", NOW)
    with pytest.raises(StaleRecord, match="reload"):
        store.write([Write("roster", _person(zones=("SH1", "VAULT")), 1)], "b", NOW)
    with pytest.raises(StaleRecord, match="already on the book"):
        store.write([Write("roster", _person(), None)], "b", NOW)
    assert store.load().roster["Pvt. Ash"].zones == {"VAULT"}


def test_a_batch_is_all_or_nothing(tmp_path: Path) -> None:
    store = RecordsStore(tmp_path / "records.sqlite")
    store.write([Write("roster", _person(), None)], "a", NOW)
    with pytest.raises(StaleRecord):
        store.write([Write("roster", _person("Pvt. Bo", "1002"), None),
                     Write("roster", _person(), None)], "a", NOW)
    assert set(store.load().roster) == {"Pvt. Ash"}


def test_every_kind_round_trips(tmp_path: Path) -> None:
    store = RecordsStore(tmp_path / "records.sqlite")
    item = Item(RIFLE, "Rifle 1", ItemKind.WEAPON, "L1", "SH1")
    order = MovementOrderEntry("MO-1", "P1", frozenset({RIFLE}), NOW, NOW + HOUR)
    work = WorkOrderEntry("WO-1", "D1", NOW, NOW + HOUR)
    person = RosterEntry("Cpl. Dee", "77", frozenset({"SH1"}), NOW, NOW + HOUR, True, "4242")
    store.write([Write("items", item, None), Write("movement_orders", order, None),
                 Write("work_orders", work, None), Write("roster", person, None)], "a", NOW)
    records = RecordsStore(tmp_path / "records.sqlite").load()
    assert records.items[RIFLE] == item and records.movement_orders["MO-1"] == order
    assert records.work_orders["WO-1"] == work and records.roster["Cpl. Dee"] == person


def test_the_rules_see_only_active_records(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = RecordsStore(tmp_path / "records.sqlite")
    store.write([Write("roster", _person(), None),
                 Write("roster", _person("Pvt. Gone", "9", state=EntryState.REVOKED), None),
                 Write("movement_orders", MovementOrderEntry(
                     "MO-1", "P1", frozenset({RIFLE}), NOW, NOW + HOUR, EntryState.CLOSED),
                           None)], "a", NOW)
    depot = judged_depot(config.depot(), store.load())
    assert set(depot.roster) == {"1001"} and depot.movement_orders == ()


def test_the_config_seeds_the_store_once_and_again_on_import(tmp_path: Path) -> None:
    config = _config(tmp_path, roster=[{"name": "Pvt. Ash", "badge": "1001", "zones": ["SH1"]}],
                     items=[{"epc": RIFLE.lower(), "name": "Rifle 1", "storehouse": "SH1"}])
    store = RecordsStore(tmp_path / "records.sqlite")
    assert not store.seeded
    assert seed_store(store, config, "config", NOW) == 2
    assert store.seeded and RIFLE in store.load().items
    # Unchanged: nothing written; changed in the YAML: a new version.
    assert seed_store(store, config, "config", NOW) == 0
    changed = _config(tmp_path, roster=[{"name": "Pvt. Ash", "badge": "1001",
                                         "zones": ["SH1", "VAULT"]}])
    assert seed_store(store, changed, "config", NOW) == 1
    assert store.version("roster", "Pvt. Ash") == 2


def test_bad_records_name_their_field(tmp_path: Path) -> None:
    config = _config(tmp_path)
    records = RecordsStore(tmp_path / "r.sqlite").load()
    places = config.depot()
    order = MovementOrderEntry("MO-1", "P9", frozenset({RIFLE}), NOW - 2 * HOUR, NOW - HOUR)
    found = {p.field: p.message for p in problems("movement_orders", order, records, places,
                                                   NOW)}
    assert found == {"portal": "no portal 'P9' in this depot",
                     "items": f"EPC {RIFLE} is not on the book",
                     "valid_until": "the window is in the past"}
    person = _person(zones=("SH9",))
    assert [p.field for p in problems("roster", person, records, places, NOW)] == ["zones"]


def test_vault_access_and_weapon_orders_wait_for_a_second_officer(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = RecordsStore(tmp_path / "r.sqlite")
    store.write([Write("items", Item(RIFLE, "Rifle", ItemKind.WEAPON, "", "SH1"), None),
                 Write("items", Item("AB000001", "Tarp", ItemKind.OTHER, "", "SH1"), None)],
                "a", NOW)
    records, places = store.load(), config.depot()
    assert approval_needed("roster", _person(zones=("VAULT",)), records, places)
    assert not approval_needed("roster", _person(), records, places)
    weapons = MovementOrderEntry("MO-1", "P1", frozenset({RIFLE}), NOW, NOW + HOUR)
    tarp = MovementOrderEntry("MO-2", "P1", frozenset({"AB000001"}), NOW, NOW + HOUR)
    assert approval_needed("movement_orders", weapons, records, places) == "moves weapon"
    assert not approval_needed("movement_orders", tarp, records, places)
    closed = MovementOrderEntry("MO-1", "P1", frozenset({RIFLE}), NOW, NOW + HOUR,
                                EntryState.CLOSED)
    assert not approval_needed("movement_orders", closed, records, places)


def test_a_damaged_store_is_set_aside_and_the_book_starts_again(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    path.write_bytes(b"not a database, a torn copy" * 100)
    store = RecordsStore(path)
    assert store.damage is not None and "set aside as records.sqlite.damaged-" in store.damage
    assert not store.seeded and store.load().roster == {}
    assert len(list(tmp_path.glob("records.sqlite.damaged-*"))) == 1
    store.write([Write("roster", _person(), None)], "a", NOW)
    store.close()
    assert RecordsStore(path).damage is None


def test_an_export_imports_back_unchanged(tmp_path: Path) -> None:
    from daemon.book.csvio import export_csv, read_csv
    config = _config(tmp_path)
    store = RecordsStore(tmp_path / "r.sqlite")
    store.write([Write("items", Item(RIFLE, "Rifle, G3", ItemKind.WEAPON, "L1", "SH1"), None),
                 Write("roster", _person(), None)], "a", NOW)
    records = store.load()
    for kind in ("items", "roster"):
        entries, errors = read_csv(kind, export_csv(kind, records), records, config.depot(),
                                   NOW)
        assert errors == []
        assert {getattr(e, "epc", None) or getattr(e, "name", None): e for e in entries} == \
            dict(records.of(kind))


def test_an_item_step_updates_the_judged_items_in_place_and_rebuilds_no_rule(
        tmp_path: Path) -> None:
    """A pallet through the portal steps each item: no rebuild of the rules per item (it
    stalled the event loop and took most of a core at depot rates), and the rules, which hold
    the book's item mapping, see the new state at the next reading."""
    import asyncio

    from daemon.book.desk import RecordsDesk
    from daemon.vocabulary.clock import SystemClock
    from rules.depot import ItemState

    store = RecordsStore(tmp_path / "records.sqlite")
    store.write([Write("items", Item(RIFLE, "rifle", ItemKind.WEAPON, "L1", "SH1"), None)],
                "Lt. Kay", NOW)
    rebuilds: list[object] = []
    config = _config(tmp_path)
    desk = RecordsDesk(store, config.depot(), SystemClock(), lambda *a: None,
                       applied=[rebuilds.append])
    judged = judged_depot(config.depot(), desk.records)

    async def play() -> None:
        await desk.step("Lt. Kay", RIFLE, ItemState.ISSUED, None, "MO-1")
        assert judged.items[RIFLE].state is ItemState.ISSUED and not rebuilds
        await desk.step("Lt. Kay", RIFLE, ItemState.RETURNED, "VAULT", "MO-1")
        assert len(rebuilds) == 1  # another storehouse: the rules are built again
        new = Item("E2000000000000000000A002", "pistol", ItemKind.WEAPON, "L1", "SH1")
        await desk.propose("Lt. Kay", "items", new, None)
        assert len(rebuilds) == 2 and new.epc not in judged.items

    asyncio.run(play())
    assert store.load().items[RIFLE].state is ItemState.RETURNED
    # The book holds the item's newest step; every step is in the store.
    assert [s.state for s in store.load().lifecycle.values()] == [ItemState.RETURNED]
    assert [c.after["state"] for c in store.history("lifecycle")] == ["issued", "returned"]


def test_a_pallet_through_the_portal_is_one_transaction_and_one_audit_fsync(
        tmp_path: Path) -> None:
    """25 items out under their order: each issued, in one transaction of the book (its
    changes share one time) and one batch of audit entries, no rebuild of the rules; back in,
    each returned with the order as its document."""
    import asyncio

    from daemon.book.desk import RecordsDesk
    from daemon.vocabulary.clock import SystemClock
    from rules.base import Fact
    from rules.depot import ItemState

    store = RecordsStore(tmp_path / "records.sqlite")
    epcs = [f"E2000000000000000000B{n:03d}" for n in range(25)]
    store.write([Write("items", Item(e, "rifle", ItemKind.WEAPON, "L1", "SH1"), None)
                 for e in epcs], "Lt. Kay", NOW)
    rebuilds: list[object] = []
    singles: list[tuple[Any, ...]] = []
    batches: list[list[Any]] = []
    desk = RecordsDesk(store, _config(tmp_path).depot(), SystemClock(),
                       lambda *a: singles.append(a), applied=[rebuilds.append])
    desk.audit_all = lambda lines: batches.append(list(lines))

    def through(direction: str, at_ns: int) -> None:
        for e in epcs:
            desk.heard(Fact("portal", {"portal": "P1", "direction": direction},
                            {"epc": e, "order": "MO-1" if direction == "out" else ""}, at_ns))

    async def play() -> None:
        through("out", NOW + 1)
        through("out", NOW + 2)  # read again at the outer antenna: already issued
        await desk.portal_steps.settled()
        assert {desk.records.items[e].state for e in epcs} == {ItemState.ISSUED}
        through("in", NOW + 3)
        await desk.portal_steps.settled()

    asyncio.run(play())
    assert not rebuilds and not singles
    assert [len(b) for b in batches] == [50, 50]
    steps = [c for c in store.history("lifecycle")]
    assert len(steps) == 50 and len({c.at_ns for c in steps}) == 2
    assert {s.document for s in store.load().lifecycle.values()} == {"MO-1"}
    assert {i.state for i in store.load().items.values()} == {ItemState.RETURNED}


def test_a_passage_batch_the_book_cannot_take_is_logged_and_the_next_still_written(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A full disk under records.sqlite: the batch is lost to the book (the rules judged each
    passage already, and its points went to the spool), said once, and the portal goes on."""
    import asyncio

    from daemon.book.desk import RecordsDesk
    from daemon.book.store import RecordsError
    from daemon.vocabulary.clock import SystemClock
    from rules.base import Fact
    from rules.depot import ItemState

    store = RecordsStore(tmp_path / "records.sqlite")
    epcs = ["E2000000000000000000C001", "E2000000000000000000C002"]
    store.write([Write("items", Item(e, "rifle", ItemKind.WEAPON, "L1", "SH1"), None)
                 for e in epcs], "Lt. Kay", NOW)
    desk = RecordsDesk(store, _config(tmp_path).depot(), SystemClock(), lambda *a: None)
    real_write, failures = store.write, [RecordsError("database or disk is full")]

    def write(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return real_write(*args, **kwargs)

    store.write = write  # type: ignore[method-assign]

    def through(epc: str) -> None:
        desk.heard(Fact("portal", {"portal": "P1", "direction": "out"},
                        {"epc": epc, "order": "MO-1"}, NOW + 1))

    async def play() -> None:
        through(epcs[0])
        await desk.portal_steps.settled()
        through(epcs[1])
        await desk.portal_steps.settled()

    asyncio.run(play())
    assert "portal P1: 1 passage(s) not on the book: database or disk is full" in caplog.text
    states = {e: i.state for e, i in store.load().items.items()}
    assert states == {epcs[0]: ItemState.ON_BOOK, epcs[1]: ItemState.ISSUED}


def test_a_clean_stop_writes_the_gathered_passages_and_does_not_wait_for_ever(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """At a stop the passages of the last quarter second are written (they are only in memory
    until then); a portal that goes on reading does not hold the stop past its bound."""
    import asyncio

    from daemon.book.desk import RecordsDesk
    from daemon.vocabulary.clock import SystemClock
    from rules.base import Fact
    from rules.depot import ItemState

    store = RecordsStore(tmp_path / "records.sqlite")
    epcs = [f"E2000000000000000000D{n:03d}" for n in range(3)]
    store.write([Write("items", Item(e, "rifle", ItemKind.WEAPON, "L1", "SH1"), None)
                 for e in epcs], "Lt. Kay", NOW)
    desk = RecordsDesk(store, _config(tmp_path).depot(), SystemClock(), lambda *a: None)

    def through(epc: str, direction: str, at_ns: int) -> None:
        desk.heard(Fact("portal", {"portal": "P1", "direction": direction},
                        {"epc": epc, "order": "MO-1"}, at_ns))

    async def reading_on() -> None:
        for n in range(100):  # the same rifle out and in, every 50 ms, for 5 s
            through(epcs[2], "out" if n % 2 == 0 else "in", NOW + 10 + n)
            await asyncio.sleep(0.05)

    async def play() -> float:
        through(epcs[0], "out", NOW + 1)
        await desk.portal_steps.settled(2.0)
        assert desk.records.items[epcs[0]].state is ItemState.ISSUED
        portal = asyncio.ensure_future(reading_on())
        await asyncio.sleep(0.1)  # the stop comes while the portal reads
        started = asyncio.get_running_loop().time()
        await desk.portal_steps.settled(0.5)
        took = asyncio.get_running_loop().time() - started
        portal.cancel()
        return took

    assert asyncio.run(play()) < 1.0
    assert "portal passage(s) not on the book after 0.5 s" in caplog.text


def test_the_book_in_memory_holds_each_items_newest_step_and_the_store_every_one(
        tmp_path: Path) -> None:
    """A pallet out and back in ten times: 250 steps in the store, the book in memory (and the
    book loaded at the next start) 5 steps, one per item; an older step is still there by key
    (the API's `GET /records/lifecycle/<id>`)."""
    import asyncio

    from daemon.book.desk import RecordsDesk
    from daemon.vocabulary.clock import SystemClock
    from rules.base import Fact
    from rules.depot import ItemState

    store = RecordsStore(tmp_path / "records.sqlite")
    epcs = [f"E2000000000000000000D{n:03d}" for n in range(5)]
    store.write([Write("items", Item(e, "rifle", ItemKind.WEAPON, "L1", "SH1"), None)
                 for e in epcs], "Lt. Kay", NOW)
    desk = RecordsDesk(store, _config(tmp_path).depot(), SystemClock(), lambda *a: None)

    async def play() -> None:
        for trip in range(10):
            for direction, order in (("out", "MO-1"), ("in", "")):
                for e in epcs:
                    desk.heard(Fact("portal", {"portal": "P1", "direction": direction},
                                    {"epc": e, "order": order}, NOW + trip * 10 + (order == "")))
                await desk.portal_steps.settled()

    asyncio.run(play())
    steps = store.history("lifecycle")
    assert len(steps) == 100
    for book in (desk.records, store.load()):
        assert sorted(s.epc for s in book.lifecycle.values()) == epcs
        assert {s.state for s in book.lifecycle.values()} == {ItemState.RETURNED}
    first = store.entry("lifecycle", steps[0].key)
    assert first is not None and first.state is ItemState.ISSUED
