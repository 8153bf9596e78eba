"""What officers send to change the book (API bodies, console forms, CSV rows), checked by
pydantic, and the entries they make."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from daemon.book.entries import (
    Entry,
    EntryState,
    MovementOrderEntry,
    RosterEntry,
    WorkOrderEntry,
)
from rules.depot import Item, ItemKind

__all__ = ["FORMS", "ItemForm", "MovementOrderForm", "RecordForm", "RosterForm", "WorkOrderForm"]


def _ns(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000_000)


class RecordForm(BaseModel):
    """One record as sent: unknown fields refused; `version` is the one read (none: new)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    version: int | None = Field(default=None, ge=1)

    def entry(self, key: str, held: Any) -> Entry:
        """The entry this form makes for `key`, given what the book holds for it (or None)."""
        raise NotImplementedError


class RosterForm(RecordForm):
    """A roster entry; the badge may be left out to keep the one on the book."""

    badge: str | None = Field(default=None, min_length=1, max_length=64)
    zones: list[str] = Field(min_length=1)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    escort_only: bool = False
    duress_code: str | None = Field(default=None, max_length=64)

    def entry(self, key: str, held: Any) -> Entry:
        """The roster entry for the person named `key`."""
        badge = self.badge or (held.badge if isinstance(held, RosterEntry) else "")
        duress = (held.duress_code if isinstance(held, RosterEntry) else None) \
            if self.duress_code is None else (self.duress_code or None)
        return RosterEntry(key, badge, frozenset(self.zones), _ns(self.valid_from),
                           _ns(self.valid_until), self.escort_only, duress)


class ItemForm(RecordForm):
    """An item on the book, keyed by its EPC."""

    name: str = Field(min_length=1, max_length=200)
    kind: ItemKind = ItemKind.WEAPON
    lot: str = Field(default="", max_length=64)
    storehouse: str = Field(min_length=1)

    def entry(self, key: str, held: Any) -> Entry:
        """The item with EPC `key`."""
        return Item(key.upper(), self.name, self.kind, self.lot, self.storehouse)


class MovementOrderForm(RecordForm):
    """An issue voucher: items picked from the book, a portal and a window."""

    portal: str = Field(min_length=1)
    items: list[str] = Field(min_length=1, max_length=10_000)
    valid_from: AwareDatetime
    valid_until: AwareDatetime

    def entry(self, key: str, held: Any) -> Entry:
        """The order `key`, open."""
        return MovementOrderEntry(key, self.portal, frozenset(e.upper() for e in self.items),
                                  _ns(self.valid_from) or 0, _ns(self.valid_until) or 0,
                                  EntryState.ACTIVE)


class WorkOrderForm(RecordForm):
    """A work order: a door that may stand open in a window."""

    door: str = Field(min_length=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime

    def entry(self, key: str, held: Any) -> Entry:
        """The order `key`, open."""
        return WorkOrderEntry(key, self.door, _ns(self.valid_from) or 0,
                              _ns(self.valid_until) or 0, EntryState.ACTIVE)


FORMS: dict[str, type[RecordForm]] = {
    "roster": RosterForm, "items": ItemForm, "movement_orders": MovementOrderForm,
    "work_orders": WorkOrderForm}
