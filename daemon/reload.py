"""SIGHUP: read the config file again and apply what can change while the daemon runs.

The new file is validated whole first; an invalid one changes nothing (one log line and a
`config_invalid` fault alert, cleared by the next good reload). A valid one swaps the depot
register (roster, items, orders, doors, sensors), the routes and the rules' settings (their
state carried over as across a restart), the alerting settings and the officers' tokens, without
touching the MQTT connection, the spool or console sessions. What
needs a new process (sockets, files, the broker) is named in one log line and stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers
from daemon.assembly import build_officers, rule_severities
from daemon.book.desk import RecordsDesk
from daemon.book.entries import Records
from daemon.book.judged import judged_depot
from daemon.book.losses import LossReports
from daemon.config.loading import load_config
from daemon.config.schema import Config
from daemon.heap import settle_heap
from daemon.ingest.pipeline import Pipeline
from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import ConfigError
from daemon.web.recent import RecentEvents
from rules.base import Fact
from rules.depot import Depot
from rules.item_state import LOSS_PREFIX
from rules.item_unseen import ItemUnseenRule
from rules.reconciliation import RECONCILE_PREFIX

__all__ = ["RESTART_ONLY", "Reloader", "needs_restart"]

log = logging.getLogger(__name__)

# Settings only a restart applies: they name sockets, files, devices or the MQTT session.
RESTART_ONLY = ("site", "state_dir", "mqtt", "serial", "modbus", "readers", "influxdb",
                "file_output", "spool", "deadletters", "commands", "notifiers", "tick_interval_s",
                "state_save_interval_s", "audit", "home_assistant", "api.listen_host",
                "api.listen_port", "api.max_connections", "api.idle_timeout_s",
                "api.guess_backoff_s", "api.metrics_token_required", "api.console")


def needs_restart(old: Config, new: Config) -> list[str]:
    """The settings in RESTART_ONLY that differ between two configs."""
    changed = []
    for name in RESTART_ONLY:
        section, _, key = name.partition(".")
        a, b = getattr(old, section), getattr(new, section)
        if key:
            a, b = getattr(a, key), getattr(b, key)
        if a != b:
            changed.append(name)
    return changed


@dataclass(slots=True)
class Reloader:
    """Applies a config file to the running daemon's parts."""

    path: Path | None
    config: Config
    pipeline: Pipeline
    desk: AlarmDesk
    recent: RecentEvents
    officers: Officers
    clock: Clock
    # Builds a pipeline for a config and depot (the running one adopts its parts).
    rebuild: Callable[[Config, Depot], Pipeline]
    # Told of each config applied.
    applied: Sequence[Callable[[Config], None]] = ()
    # The book: its roster, items and orders replace the config's (seed only) sections.
    book: RecordsDesk | None = None

    def __post_init__(self) -> None:
        if self.book is not None:
            self.book.applied.append(self.records_changed)
            self.book.counter = self.reconcile
            if isinstance(self.book.on_loss, LossReports):
                self.book.on_loss.last_read = self.last_read
                self.book.on_loss.raise_alarm = self.loss_alarm
            self.pipeline.fact_listeners.append(self.book.heard)

    def reconcile(self, storehouse: str, officer: str) -> list[Fact]:
        """Count a storehouse against the book now, through the running rules."""
        return self.pipeline.request(f"{RECONCILE_PREFIX}{storehouse}", {"by": officer},
                                     self.clock.now_ns())

    def last_read(self, epc: str) -> tuple[int, str] | None:
        """When and by which reader an item was last read, as the running rules know it."""
        rule = self.pipeline.engine.rule("item_unseen")
        return rule.last_read(epc) if isinstance(rule, ItemUnseenRule) else None

    def loss_alarm(self, epc: str, values: Mapping[str, str]) -> None:
        """A loss report made: its alarm through the rules (rule `item_state`)."""
        self.pipeline.request(f"{LOSS_PREFIX}{epc}", dict(values), self.clock.now_ns())

    async def reload(self) -> bool:
        """Read, validate and apply the config file; whether it was applied."""
        if self.path is None:
            log.warning("reload asked for, but this daemon was started without a config file")
            return False
        try:
            new = await asyncio.to_thread(load_config, self.path)
        except ConfigError as exc:
            self._refused(f"{len(exc.problems)} problem(s), first: {exc.problems[0]}"
                          if exc.problems else str(exc))
            return False
        except (OSError, UnicodeError) as exc:
            self._refused(f"cannot read it: {exc}")
            return False
        try:
            self.apply(new)
        except Exception as exc:  # a config valid alone that does not fit the running state
            self._refused(f"cannot apply it: {type(exc).__name__}: {exc}")
            return False
        return True

    def apply(self, new: Config) -> None:
        """Swap in what can change at run time; raises, before changing anything, if the new
        rules cannot take the running rules' state."""
        depot = new.depot()
        if self.book is not None:
            self.book.places = depot
            depot = judged_depot(depot, self.book.records)
        self.pipeline.adopt(self.rebuild(new, depot))
        self.desk.reconfigure(new.alerting, rule_severities=rule_severities(new))
        self.officers.replace(build_officers(new))
        self.recent.adopt(depot)
        for told in self.applied:
            told(new)
        later = needs_restart(self.config, new)
        self.config = new
        settle_heap()
        self.pipeline.fault("config_invalid", "config", False, "config reloaded",
                            self.clock.now_ns())
        log.info("config %s reloaded: %d storehouses, %d doors, %d sensors, %d officers%s",
                 self.path, len(depot.storehouses), len(depot.doors), len(depot.sensors),
                 len(new.api.officers),
                 f"; changed but only applied at the next restart: {', '.join(later)}"
                 if later else "")

    def records_changed(self, records: Records) -> None:
        """Judge with the book's new records from the next reading on (nothing dropped: the
        swap happens between two readings, the rules' state carried over)."""
        places = self.book.places if self.book is not None else self.config.depot()
        depot = judged_depot(places, records)
        self.pipeline.adopt(self.rebuild(self.config, depot))
        self.recent.adopt(depot)

    def _refused(self, why: str) -> None:
        log.error("config %s not reloaded, running on with the previous one: %s",
                  self.path, why)
        self.pipeline.fault("config_invalid", "config", True,
                            f"config file not reloaded: {why}", self.clock.now_ns())
