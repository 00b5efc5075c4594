"""The page every printed report shares: A4 portrait, the disclaimer band, the title line,
the who/what/when under it, a rule, and a footer with a note and the page number.

Why one: the plan report and the trainee report had each drawn this chrome themselves,
line for line; a change to the disclaimer band or the footer now reaches both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from fpdf import FPDF

from planning.atomic_file import atomic_open
from planning.report.report_images import ReportFileError, dejavu_font_path
from planning.vocabulary import DISCLAIMER, TEXT_ON_STATUS, rgb

FONT = "DejaVu"
PAGE_W, MARGIN = 210.0, 10.0
CONTENT_W = PAGE_W - 2 * MARGIN
HEADER_END_Y = 35.0  # content starts here on every page
FOOTER_H = 14.0
TEXT_ON_STATUS_RGB = rgb(TEXT_ON_STATUS)
DARK = (25, 28, 33)
GREY = (105, 112, 122)
RULE = (190, 196, 204)
DISCLAIMER_FILL = (178, 34, 34)
HEADING_FILL = (228, 232, 238)


class ReportPage(FPDF):
    """A4 portrait with the shared chrome; a report says what goes under its title line
    (`header_lines`) and in its footer (``footer_note``)."""

    def __init__(self, title: str, software: str, *, title_width_mm: float,
                 rule_y_mm: float, footer_note: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.title_text, self.software = title, software
        self.title_width_mm, self.rule_y_mm = title_width_mm, rule_y_mm
        self.footer_note = footer_note
        self.add_font(FONT, "", str(dejavu_font_path(bold=False)))
        self.add_font(FONT, "B", str(dejavu_font_path(bold=True)))
        self.set_margins(MARGIN, HEADER_END_Y, MARGIN)
        self.set_auto_page_break(True, margin=FOOTER_H + 2.0)

    def header(self) -> None:
        # the disclaimer: a full-width band, first thing on every page
        self.set_fill_color(*DISCLAIMER_FILL)
        self.set_text_color(255, 255, 255)
        self.set_font(FONT, "B", 9.5)
        self.set_xy(MARGIN, 6.0)
        self.cell(CONTENT_W, 6.5, DISCLAIMER, align="C", fill=True)
        # title line
        self.set_text_color(*DARK)
        self.set_font(FONT, "B", 13)
        self.set_xy(MARGIN, 14.0)
        self.cell(self.title_width_mm, 6, self.title_text)
        self.set_font(FONT, "", 7.5)
        self.set_text_color(*GREY)
        self.set_xy(MARGIN + self.title_width_mm, 14.5)
        self.cell(CONTENT_W - self.title_width_mm, 5, self.software, align="R")
        self.header_lines()
        self.set_draw_color(*RULE)
        self.set_line_width(0.3)
        self.line(MARGIN, self.rule_y_mm, PAGE_W - MARGIN, self.rule_y_mm)
        self.set_text_color(*DARK)
        self.set_xy(MARGIN, HEADER_END_Y)

    def header_lines(self) -> None:
        """What stands between the title line and the rule (patient, study, trainee…)."""

    def label_values(self, x: float, y: float, pairs: Sequence[tuple[str, str]],
                     right: float, *, gap_mm: float = 4.0,
                     min_room_mm: float = -math.inf) -> None:
        """"Label value   Label value" on one line up to ``right``, the last value
        shortened to fit (at least ``min_room_mm`` is given to it)."""
        self.set_xy(x, y)
        for n, (label, value) in enumerate(pairs):
            self.set_font(FONT, "", 7)
            self.set_text_color(*GREY)
            self.cell(self.get_string_width(label) + 1.2, 4, label)
            self.set_font(FONT, "B", 8)
            self.set_text_color(*DARK)
            room = right - self.get_x() - (0 if n == len(pairs) - 1 else 3)
            text = fit_text(self, value, max(room, min_room_mm))
            self.cell(self.get_string_width(text) + gap_mm, 4, text)

    def footer(self) -> None:
        self.set_y(-FOOTER_H + 2.0)
        self.set_draw_color(*RULE)
        self.set_line_width(0.2)
        self.line(MARGIN, self.get_y(), PAGE_W - MARGIN, self.get_y())
        self.set_font(FONT, "", 6.8)
        self.set_text_color(*GREY)
        self.set_xy(MARGIN, self.get_y() + 1.0)
        self.cell(150, 4, self.footer_note + "  " + DISCLAIMER + ".")
        self.set_xy(PAGE_W - MARGIN - 30, self.get_y())
        self.cell(30, 4, f"Page {self.page_no()} of {{nb}}", align="R")


def created_text(when: datetime) -> str:
    """"2024-05-02 14:03 UTC+02:00": when a report was made, as its header prints it."""
    offset = when.strftime("%z")
    zone = f" UTC{offset[:3]}:{offset[3:]}" if offset else ""
    return when.strftime("%Y-%m-%d %H:%M") + zone


def describe_document(pdf: FPDF, title: str, software: str, author: str,
                      when: datetime) -> None:
    """The PDF's own properties (title, software, author if any, the disclaimer as its
    subject, creation time): what a file browser or a PACS shows of it."""
    pdf.set_title(title)
    pdf.set_creator(software)
    pdf.set_producer(software)
    if author:
        pdf.set_author(author)
    pdf.set_subject(DISCLAIMER)
    pdf.set_creation_date(when)


def fit_text(pdf: FPDF, text: str, width_mm: float) -> str:
    """``text`` shortened with "…" to fit ``width_mm`` in the current font."""
    if pdf.get_string_width(text) <= width_mm:
        return text
    while text and pdf.get_string_width(text + "…") > width_mm:
        text = text[:-1]
    return text.rstrip() + "…"


def write_atomically(target: Path, data: bytes) -> None:
    """The report whole or not at all (`planning.atomic_file`): a crash or a full disk
    never leaves a half-written report where the old one was."""
    try:
        with atomic_open(target) as fh:
            fh.write(data)
    except OSError as exc:
        raise ReportFileError(f"the report cannot be written to '{target}': "
                              f"{exc.strerror or exc}") from exc
