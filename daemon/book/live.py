"""The book as the running daemon holds it: opened from the state dir, seeded from the config
on the first start."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from daemon.alerts.audit import AuditLine
from daemon.book.desk import Audit, RecordsDesk
from daemon.book.exports import influx_passages
from daemon.book.judged import judged_depot
from daemon.book.losses import LossReports
from daemon.book.seed import RecordSections, differences, seed_entries
from daemon.book.store import RECORDS_FILE, RecordsStore
from daemon.config.schema import Config
from daemon.vocabulary.clock import Clock
from rules.depot import Depot

__all__ = ["open_book", "seed_store"]

log = logging.getLogger(__name__)


def seed_store(store: RecordsStore, sections: RecordSections, actor: str, at_ns: int) -> int:
    """Import the config's record sections into the store (new and changed records); how many
    records it wrote."""
    incoming = seed_entries(sections)
    records = store.load()
    writes = differences(records, incoming, {kind: store.versions(kind) for kind in incoming})
    store.write(writes, actor, at_ns, seed=True)
    return len(writes)


def open_book(config: Config, clock: Clock, audit: Audit,
              audit_all: Callable[[Sequence[AuditLine]], None] | None = None,
              ) -> tuple[RecordsDesk, Depot]:
    """The records desk over `state_dir/records.sqlite` (the config's sections imported into
    it when it was never seeded: the first start), and the depot the rules judge with (roster,
    items, orders); `audit_all` audits a batch with one fsync."""
    store = RecordsStore(config.state_dir / RECORDS_FILE)
    if not store.seeded:
        now = clock.now_ns()
        written = seed_store(store, config, "config", now)
        audit("config", "records.import", "seed",
              {"records": written, "source": "config"}, now)
        log.info("records store %s seeded from the config: %d records", store.path, written)
    desk = RecordsDesk(store, config.depot(), clock, audit)
    desk.audit_all = audit_all
    desk.passages = influx_passages(config)
    desk.on_loss = LossReports(config, desk)
    return desk, judged_depot(desk.places, desk.records)
