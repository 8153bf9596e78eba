"""The finished monthly record: its tables, each storehouse's section and the whole report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from daemon.vocabulary.errors import DepotwatchError

__all__ = ["Cell", "ClimateSeries", "Format", "Report", "ReportError", "StorehouseReport",
           "Table"]

Cell = str | int | float | None
Format = Literal["pdf", "csv", "json"]


class ReportError(DepotwatchError):
    """The report cannot be built (no InfluxDB target, a failed query, a missing library)."""


@dataclass(slots=True)
class Table:
    """One table of the report; the PDF, CSV and JSON all carry exactly these."""

    name: str
    title: str
    storehouse: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form: rows as objects keyed by column."""
        return {"name": self.name, "title": self.title, "storehouse": self.storehouse,
                "columns": self.columns,
                "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows]}


@dataclass(slots=True)
class ClimateSeries:
    """One sensor's samples over the month, for the plot."""

    sensor: str
    times_ns: list[int] = field(default_factory=list)
    temperature_c: list[float | None] = field(default_factory=list)
    humidity_pct: list[float | None] = field(default_factory=list)


@dataclass(slots=True)
class StorehouseReport:
    """One storehouse's sections."""

    id: str
    name: str
    tables: list[Table]
    series: list[ClimateSeries]
    # (label, limit) of the temperature and humidity warning and alarm limits, for the plot bands.
    temperature_limits: tuple[float, float]
    humidity_limits: tuple[float, float]
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    """The whole monthly record."""

    site: str
    site_name: str
    month: str
    timezone: str
    start_ns: int
    end_ns: int
    generated: str
    storehouses: list[StorehouseReport]
    site_tables: list[Table]
    audit_status: str
    audit_head_hash: str
    # The first page's heading: the monthly record, or a consignment's custody record.
    title: str = "Monthly PSSM record"

    def tables(self) -> list[Table]:
        """Every table, storehouse sections first, then the site-wide ones."""
        return [t for s in self.storehouses for t in s.tables] + self.site_tables

    def as_dict(self) -> dict[str, Any]:
        """The JSON document."""
        return {"title": self.title, "site": self.site, "site_name": self.site_name,
                "month": self.month,
                "timezone": self.timezone, "generated": self.generated,
                "storehouses": [{"id": s.id, "name": s.name, "notes": s.notes}
                                for s in self.storehouses],
                "audit": {"status": self.audit_status, "head_hash": self.audit_head_hash},
                "tables": [t.as_dict() for t in self.tables()]}

