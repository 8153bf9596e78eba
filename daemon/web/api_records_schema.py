"""What the API's records calls answer, as pydantic models: the answers are built through them,
so the OpenAPI document, generated from the same models, says what is served."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ANSWERS", "Change", "ConsignmentReceived", "Empty", "ImportResult", "Parked",
           "ParkedAnswer", "Reconciliation", "Record", "RecordList", "WriteShown"]


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class Change(_Answer):
    """A change written to the book: its history row."""

    seq: int
    kind: str
    key: str
    version: int
    by: str = Field(description="the officer (or portal, key cabinet) who made it")
    approved_by: str = Field(description="the second officer, empty when none was needed")
    before: dict[str, Any] | None
    after: dict[str, Any] | None


class Parked(_Answer):
    """A change waiting for a second records officer (the two-person rule)."""

    id: int
    kind: str
    key: str
    by: str
    at_ns: int
    reason: str
    after: dict[str, Any]


class ParkedAnswer(_Answer):
    """202: the change waits for a second officer (`POST /records/parked/{id}/approve`)."""

    parked: Parked


class RecordList(_Answer):
    """The records of one kind (`total` of them on the book; `records` capped by `limit`)."""

    kind: str
    total: int
    records: list[dict[str, Any]]


class Record(_Answer):
    """One record, its fields as its kind has them, and the version to name when changing it."""

    model_config = ConfigDict(frozen=True, extra="allow")

    version: int | None


class WriteShown(_Answer):
    """One change an import makes (or would make, in a dry run)."""

    kind: str
    key: str
    action: str = Field(description="`add` or `change`")
    after: dict[str, Any]


class ImportResult(_Answer):
    """What an import changed (or, with dry_run, would change)."""

    dry_run: bool
    changes: list[WriteShown]


class Reconciliation(_Answer):
    """A count's result: on_book, seen, out_on_order, missing, unexpected,
    moved_without_order (numbers) and their `_epcs` lists, by whom."""

    model_config = ConfigDict(frozen=True, extra="allow")

    storehouse: str
    at_ns: int


class ConsignmentReceived(_Answer):
    """A consignment on the book: how many changes it took (itself, items, first steps)."""

    changes: int
    consignment: str


class Empty(_Answer):
    """Nothing to say."""


# Answer schema name -> model, for the OpenAPI document.
ANSWERS: dict[str, type[BaseModel]] = {m.__name__: m for m in (
    Change, Parked, ParkedAnswer, RecordList, Record, ImportResult, Reconciliation,
    ConsignmentReceived, Empty)}
