"""The blocks both PDF reports lay out alike under the shared page chrome
(`planning.report.page`): a heading, a table's plain style, a coloured chip, a level's
title, the pair of slice images with their captions, and a table of numbers with a column
per needle.

Why one: the trainee report was made from the plan report and had copied these line for
line; a change of type size or spacing now reaches both reports.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from planning.report.page import (
    CONTENT_W,
    DARK,
    FONT,
    GREY,
    HEADING_FILL,
    MARGIN,
    RULE,
    TEXT_ON_STATUS_RGB,
)

Cell = tuple[str, FontFace | None]  # a table cell's text and its style (None: the table's)


def heading(pdf: FPDF, text: str, size: float = 11.0, gap_mm: float = 3.0) -> None:
    """A bold heading over the full width, ``gap_mm`` below what came before."""
    pdf.ln(gap_mm)
    pdf.set_x(MARGIN)
    pdf.set_font(FONT, "B", size)
    pdf.set_text_color(*DARK)
    pdf.cell(CONTENT_W, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.0)


def table_style(pdf: FPDF, size_pt: float) -> None:
    """A table takes its cells' default style from the current state: set it plainly, with
    thin rules between the rows."""
    pdf.set_font(FONT, "", size_pt)
    pdf.set_text_color(*DARK)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)


def heading_row_style(size_pt: float) -> FontFace:
    """The grey-filled bold heading row of every table."""
    return FontFace(emphasis="BOLD", color=DARK, fill_color=HEADING_FILL, size_pt=size_pt)


def chip(pdf: FPDF, text: str, fill: tuple[int, int, int], *, height_mm: float = 6.5,
         color: tuple[int, int, int] = TEXT_ON_STATUS_RGB) -> None:
    """``text`` bold on a ``fill`` box in the line, then a small gap."""
    pdf.set_font(FONT, "B", 9)
    pdf.set_fill_color(*fill)
    pdf.set_text_color(*color)
    pdf.cell(pdf.get_string_width(text) + 2, height_mm, text, fill=True, align="C")
    pdf.cell(2, height_mm, "")


def level_title(pdf: FPDF, level: str, gap_mm: float) -> None:
    """The level's name, large, at the start of its page; its chips follow on the line."""
    pdf.set_font(FONT, "B", 18)
    pdf.set_text_color(*DARK)
    pdf.set_x(MARGIN)
    pdf.cell(pdf.get_string_width(level) + gap_mm, 8, level)


def image_pair(pdf: FPDF, pictures: Sequence[tuple[bytes, str]], width_mm: float,
               space_below_mm: float) -> None:
    """Two square PNGs (axial, sagittal) at either edge of the page, each with its caption
    under it; the text goes on ``space_below_mm`` under the images."""
    y = pdf.get_y()
    gap = CONTENT_W - 2 * width_mm
    for i, (png, caption) in enumerate(pictures):
        x = MARGIN + i * (width_mm + gap)
        pdf.image(io.BytesIO(png), x=x, y=y, w=width_mm, h=width_mm)
        pdf.set_xy(x, y + width_mm + 0.8)
        pdf.set_font(FONT, "", 7)
        pdf.set_text_color(*GREY)
        pdf.multi_cell(width_mm, 3.2, caption, align="L")
    pdf.set_y(y + width_mm + space_below_mm)


def merged_rows(per_needle: Sequence[Sequence[tuple[str, str]]], bold: Collection[str]
                ) -> list[tuple[str, list[Cell]]]:
    """The needles' (label, value) rows side by side: every label once, in the order it
    first comes, "—" where a needle has no such value; the labels in ``bold`` bold."""
    labels: list[str] = []
    for rows in per_needle:
        labels += [label for label, _ in rows if label not in labels]
    values = [dict(rows) for rows in per_needle]
    return [(label, [(v.get(label, "—"), FontFace(emphasis="BOLD") if label in bold else None)
                     for v in values])
            for label in labels]


def needle_columns_table(
    pdf: FPDF, headings: Sequence[str], rows: Sequence[tuple[str, Sequence[Cell]]], *,
    x: float, width: float, label_w: float, size_pt: float, line_height: float,
) -> None:
    """Rows of numbers under a grey label, one column per needle of a level (left, right)."""
    n = len(headings)
    col_w = (width - label_w) / max(1, n)
    table_style(pdf, size_pt)
    old_margin = pdf.l_margin
    pdf.set_left_margin(x)
    with pdf.table(col_widths=(label_w, *([col_w] * n)), width=width,
                   text_align=("LEFT", *(["CENTER"] * n)), line_height=line_height,
                   headings_style=heading_row_style(7.5), padding=(0.8, 1.0),
                   borders_layout="HORIZONTAL_LINES", align="LEFT") as table:
        row = table.row()
        row.cell("")
        for text in headings:
            row.cell(text)
        for label, cells in rows:
            row = table.row()
            row.cell(label, style=FontFace(color=GREY))
            for text, style in cells:
                row.cell(text, style=style)
    pdf.set_left_margin(old_margin)
