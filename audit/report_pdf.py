"""The period report as a PDF (reportlab: pure Python, no system libraries), from the same sections as the
page and the CSV (audit.report.sections)."""

from __future__ import annotations

import io
import re

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from audit.report import PeriodReport, _text, counts_line, sections

NUMERIC = re.compile(r"^-?[\d,]+(\.\d+)?$")  # counts and amounts: right-aligned, as on the page


def as_pdf(report: PeriodReport, *, generated_by: str, generated_at: str) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title="ITIRP period report",
        author=generated_by,
    )
    styles = getSampleStyleSheet()
    cell = styles["BodyText"].clone("cell", fontSize=8, leading=10)
    number = cell.clone("number", alignment=TA_RIGHT)
    story = [
        Paragraph("ITIRP period report", styles["Title"]),
        Paragraph(f"From {_text(report.since)} to {_text(report.until)} (end excluded)", styles["Normal"]),
        Paragraph(f"Generated {generated_at} by {generated_by}", styles["Normal"]),
        Spacer(1, 4 * mm),
        Paragraph(counts_line(report), styles["Normal"]),
    ]
    for title, columns, rows in sections(report):
        story += [Spacer(1, 5 * mm), Paragraph(title, styles["Heading3"])]
        if not rows:
            story.append(Paragraph("None in this period.", styles["Normal"]))
            continue
        data = [[Paragraph(f"<b>{c}</b>", cell) for c in columns]]
        data += [[Paragraph(_escape(value), number if NUMERIC.match(value) else cell) for value in row] for row in rows]
        table = Table(data, repeatRows=1, hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecef")),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        story.append(table)
    doc.build(story)
    return buffer.getvalue()


def _escape(text: str) -> str:
    # Paragraph reads a small markup language: text from events must not be taken for tags.
    # The standard PDF fonts have no arrow.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("→", "-&gt;")
