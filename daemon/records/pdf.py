"""The monthly record as PDF: fpdf2 for pages and tables, matplotlib (Agg) for the climate plots.

Both come with the optional `report` extra; CSV and JSON reports need neither.
"""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

from daemon.records.document import Report, ReportError, StorehouseReport, Table

__all__ = ["check_libraries", "render_pdf"]

_MISSING = ("PDF reports need the 'report' extra (matplotlib, fpdf2): "
            "pip install 'depotwatch[report]'; --format csv or json work without it")


def _plot(section: StorehouseReport, zone: str) -> bytes:
    """Temperature and humidity over the month, one line per sensor, warning/alarm bands."""
    import matplotlib

    matplotlib.use("Agg")
    from zoneinfo import ZoneInfo

    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    tz = ZoneInfo(zone)
    fig = Figure(figsize=(11, 5.2), dpi=110)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, attr, unit, limits in ((axes[0], "temperature_c", "°C", section.temperature_limits),
                                   (axes[1], "humidity_pct", "% RH", section.humidity_limits)):
        top = limits[1]
        for s in section.series:
            points = [(dt.datetime.fromtimestamp(t / 1e9, tz=tz), v)
                      for t, v in zip(s.times_ns, getattr(s, attr), strict=True) if v is not None]
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], linewidth=0.8,
                        label=s.sensor)
                top = max(top, max(p[1] for p in points))
        warning, alarm = limits
        ax.axhspan(warning, alarm, color="#f5c542", alpha=0.25, label=f"warning > {warning:g}")
        ax.axhspan(alarm, top + (top - warning) * 0.1 + 1, color="#e0403a", alpha=0.2,
                   label=f"alarm > {alarm:g}")
        ax.axhline(warning, color="#c79100", linewidth=0.8)
        ax.axhline(alarm, color="#b71c1c", linewidth=0.8)
        ax.set_ylabel(unit)
        ax.grid(True, linewidth=0.3)
        ax.legend(loc="upper left", fontsize=7, ncol=4)
    axes[1].xaxis.set_major_formatter(
        mdates.DateFormatter("%d %b", tz=tz))  # type: ignore[no-untyped-call]
    axes[0].set_title(f"{section.name} ({section.id}): temperature and humidity", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# A month of a busy depot has thousands of access events: the paper record shows the first
# rows of a table, the CSV and JSON all of them.
PDF_MAX_ROWS = 300


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


class _Doc:
    def __init__(self, report: Report) -> None:
        import matplotlib
        from fpdf import FPDF

        fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
        self.report = report
        pdf = FPDF(orientation="L", unit="mm", format="A4")
        pdf.set_auto_page_break(auto=True, margin=12)
        pdf.add_font("DejaVu", "", str(fonts / "DejaVuSans.ttf"))
        pdf.add_font("DejaVu", "B", str(fonts / "DejaVuSans-Bold.ttf"))
        pdf.set_title(f"depotwatch monthly record {report.site} {report.month}")
        pdf.set_creator("depotwatch")
        self.pdf = pdf

    def heading(self, text: str, size: int = 13) -> None:
        self.pdf.set_font("DejaVu", "B", size)
        self.pdf.multi_cell(0, size * 0.55, text, new_x="LMARGIN", new_y="NEXT")
        self.pdf.ln(1)

    def text(self, text: str, size: int = 8) -> None:
        self.pdf.set_font("DejaVu", "", size)
        self.pdf.multi_cell(0, size * 0.5, text, new_x="LMARGIN", new_y="NEXT")

    def table(self, table: Table) -> None:
        self.heading(table.title, 10)
        if not table.rows:
            self.text("none")
            self.pdf.ln(2)
            return
        rows = table.rows[:PDF_MAX_ROWS]
        self.pdf.set_font("DejaVu", "", 6.5 if len(table.columns) > 8 else 7.5)
        # Columns as wide as their longest cell (capped), so keys and hashes rarely wrap.
        sizes = [max([8, min(len(c), 13), *(len(w) for w in c.split("_")),
                      *(min(len(_cell(r[i])), 66) for r in rows)])
                 for i, c in enumerate(table.columns)]
        width = min(277.0, sum(sizes) * 1.75)
        with self.pdf.table(first_row_as_headings=True, line_height=3.6, text_align="LEFT",
                            width=width, align="LEFT", col_widths=tuple(sizes)) as grid:
            header = grid.row()
            for column in table.columns:
                header.cell(column.replace("_", " "))
            for values in rows:
                row = grid.row()
                for value in values:
                    row.cell(_cell(value))
        if len(table.rows) > len(rows):
            self.text(f"... and {len(table.rows) - len(rows)} more rows: the CSV and JSON "
                      "formats of this report hold every row.", 8)
        self.pdf.ln(3)

    def section(self, section: StorehouseReport) -> None:
        pdf = self.pdf
        pdf.add_page()
        self.heading(f"{section.name} ({section.id})", 15)
        for note in section.notes:
            self.text(f"Note: {note}", 9)
        if any(s.times_ns for s in section.series):
            pdf.image(io.BytesIO(_plot(section, self.report.timezone)), w=265)
        pdf.ln(2)
        for table in section.tables:
            self.table(table)

    def render(self) -> bytes:
        r = self.report
        pdf = self.pdf
        pdf.add_page()
        self.heading(f"{r.title}: {r.site_name} ({r.site}), {r.month}", 16)
        self.text(f"Times in {r.timezone}. Generated {r.generated} by depotwatch.", 9)
        self.text("Storehouses: " + ", ".join(f"{s.name} ({s.id})" for s in r.storehouses), 9)
        pdf.ln(2)
        self.text(f"Audit trail: {r.audit_status}", 10)
        self.text(f"Hash of the last audit entry: {r.audit_head_hash or '(none)'}", 10)
        pdf.ln(3)
        for table in r.site_tables:
            self.table(table)
        for section in r.storehouses:
            self.section(section)
        return bytes(pdf.output())


def check_libraries() -> None:
    """Raise ReportError naming the extra when matplotlib or fpdf2 is not installed."""
    try:
        import fpdf  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ReportError(f"{_MISSING} ({exc})") from exc


def render_pdf(report: Report) -> bytes:
    """The report as PDF bytes."""
    check_libraries()
    return _Doc(report).render()
