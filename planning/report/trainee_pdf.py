"""The trainee's report of one training attempt: a PDF to keep and to discuss (fpdf2).

Page 1 is the result: the case, the trainee, when, how long it took, the total score with
PASS or FAIL, one row per needle (errors against the reference, canal clearance and grade,
points, result), the reasons in words, and the rubric the score was made with. Then one page
per level: an oblique axial slice in the plane of the reference needles and a sagittal
slice (as a lateral fluoroscopy view), each with the trainee's needles drawn solid in the
colour of their check and the reference needles dashed white, orientation letters and a
scale bar, and the level's numbers beside each other for the left and right needle.

A trainee report is teaching material: it names the patient only when asked
(``show_patient``). The look (page chrome, blocks, slice renderer, atomic write) is the plan
report's (`planning.report.page`, `planning.report.pdf_blocks`,
`planning.report.report_images`), imported, so both reports read alike; the pictures are
drawn in `planning.report.trainee_images`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from planning.checks import Status, grade_meaning
from planning.plan import Trajectory, level_index
from planning.progress import Progress, no_progress
from planning.report.model import LevelImages, TraineeReport
from planning.report.page import (
    CONTENT_W,
    DARK,
    FONT,
    GREY,
    MARGIN,
    RULE,
    TEXT_ON_STATUS_RGB,
    ReportPage,
    created_text,
    describe_document,
    fit_text,
    write_atomically,
)
from planning.report.pdf_blocks import (
    chip,
    heading,
    heading_row_style,
    image_pair,
    level_title,
    merged_rows,
    needle_columns_table,
    table_style,
)
from planning.report.trainee_images import comparison_images, needle_looks
from planning.training import (
    NeedleScore,
    Rubric,
    TrainingCase,
    TrainingScore,
    format_duration,
)
from planning.vocabulary import (
    STATUS_COLORS,
    STATUS_SYMBOLS,
    STATUS_WORDS,
    format_lps,
    format_number,
    format_person_name,
    rgb,
)

TITLE = "Vertebroplasty training report"
PASS_COLOR = STATUS_COLORS[Status.SAFE]
FAIL_COLOR = STATUS_COLORS[Status.UNSAFE]
EXTRA_COLOR = STATUS_COLORS[None]


# ---- the PDF ---------------------------------------------------------------------------------
class _TraineePDF(ReportPage):
    """A4 portrait with the disclaimer band, the title and who/what/when on every page."""

    def __init__(self, pairs: Sequence[tuple[str, str]], software: str) -> None:
        super().__init__(TITLE, software, title_width_mm=120.0, rule_y_mm=29.5,
                         footer_note="Errors against the case's reference plan (patient LPS mm).")
        self.pairs = list(pairs)

    def header_lines(self) -> None:
        self.label_values(MARGIN, 22.5, self.pairs, MARGIN + CONTENT_W, gap_mm=5.0,
                          min_room_mm=5.0)


def write_trainee_report(path: str | Path, report: TraineeReport,
                         progress: Progress | None = None) -> Path:
    """Write the trainee's report of one attempt (`TraineeReport`) to ``path``
    (atomically; its folder is created if needed). ``progress`` reports one step per level
    picture and may raise `planning.errors.Cancelled`.

    Raises
    ------
    ReportFileError
        The file cannot be written or the font is missing.
    """
    progress = progress or no_progress()
    r = report
    target = Path(path)
    when_text = created_text(r.created)
    pairs = [("Trainee", r.trainee_name or "—"), ("Created", when_text)]
    if r.show_patient:
        patient = r.volume.patient
        pairs.append(("Patient", format_person_name(patient.name) or "—"))
        pairs.append(("ID", patient.patient_id or "—"))
    pairs.append(("Case", r.case.title))
    software = f"VertebroPlan {r.software_version}".strip()
    pdf = _TraineePDF(pairs, software)
    describe_document(pdf, f"{TITLE}: {r.case.title}", software, r.trainee_name, r.created)

    looks = needle_looks(r.score, r.results)
    levels = sorted({t.level for t in (*r.reference.trajectories, *r.attempt.trajectories)},
                    key=level_index)
    _result_page(pdf, r.case, r.score, r.trainee_name, when_text)
    for n, level in enumerate(levels):
        progress.report(n, len(levels), f"Report: {level}")
        images = comparison_images(r.volume, r.attempt, r.reference, looks, r.anatomy, level)
        _level_page(pdf, r.score, level, images)
    progress.report(len(levels), len(levels), "Writing the report")
    write_atomically(target, bytes(pdf.output()))
    return target


# ---- page 1 --------------------------------------------------------------------------------
SCORE_COLUMNS: tuple[tuple[str, float], ...] = (
    ("Level", 13.0),
    ("Side", 14.0),
    ("Entry error (mm)", 19.0),
    ("Tip error (mm)", 19.0),
    ("Angle error (°)", 19.0),
    ("Canal clearance (mm)", 21.0),
    ("Grade", 13.0),
    ("Check", 22.0),
    ("Points", 24.0),
    ("Result", 26.0),
)


def _paragraph(pdf: FPDF, text: str, size: float = 8.5, color: tuple[int, int, int] = DARK,
               indent: float = 0.0) -> None:
    pdf.set_x(MARGIN + indent)
    pdf.set_font(FONT, "", size)
    pdf.set_text_color(*color)
    pdf.multi_cell(CONTENT_W - indent, size * 0.48, text, align="L", new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)


def _result_page(pdf: _TraineePDF, case: TrainingCase, score: TrainingScore,
                 trainee_name: str, when_text: str) -> None:
    pdf.add_page()
    pdf.set_font(FONT, "B", 15)
    pdf.set_text_color(*DARK)
    pdf.set_x(MARGIN)
    pdf.multi_cell(CONTENT_W, 7, case.title, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if case.description:
        _paragraph(pdf, case.description, 8.5, GREY)
    mode = "fluoroscopy (DRR) only" if case.fluoro_only else "CT slices"
    facts = (f"Levels {', '.join(case.levels)}  ·  reference: {case.reference_kind}  ·  "
             f"planned on: {mode}  ·  gauge {case.gauge}  ·  CT: {case.ct_label}")
    pdf.ln(0.8)
    _paragraph(pdf, facts, 8.0)
    pdf.ln(3.0)
    _verdict_box(pdf, score, trainee_name, when_text)
    heading(pdf, "Needle by needle", 11.0, 3.0)
    _score_table(pdf, score)
    heading(pdf, "Why", 11.0, 3.0)
    for n in (*score.needles, *score.extra):
        _needle_reasons(pdf, n)
    heading(pdf, "How the score is made", 11.0, 3.0)
    for i, sentence in enumerate(score.rubric.describe(), start=1):
        pdf.set_x(MARGIN)
        pdf.set_font(FONT, "B", 8)
        pdf.set_text_color(*GREY)
        pdf.cell(5, 3.9, f"{i}.")
        pdf.set_font(FONT, "", 8)
        pdf.set_text_color(*DARK)
        pdf.multi_cell(CONTENT_W - 5, 3.9, sentence, align="L", new_x=XPos.LMARGIN,
                       new_y=YPos.NEXT)
        pdf.ln(0.5)


def _verdict_box(pdf: FPDF, score: TrainingScore, trainee_name: str, when_text: str
                 ) -> None:
    """The chip PASS/FAIL in its colour, the score, the time and who and when."""
    y = pdf.get_y()
    height = 22.0
    pdf.set_fill_color(245, 247, 250)
    pdf.set_draw_color(*RULE)
    pdf.rect(MARGIN, y, CONTENT_W, height, style="DF")
    color = rgb(PASS_COLOR if score.passed else FAIL_COLOR)
    verdict = ("✔ PASS" if score.passed else "✖ FAIL")
    pdf.set_fill_color(*color)
    pdf.set_text_color(*TEXT_ON_STATUS_RGB)
    pdf.set_font(FONT, "B", 20)
    pdf.set_xy(MARGIN + 3.0, y + 3.0)
    pdf.cell(44.0, height - 6.0, verdict, align="C", fill=True)
    x = MARGIN + 52.0
    pdf.set_xy(x, y + 3.0)
    pdf.set_text_color(*DARK)
    pdf.set_font(FONT, "B", 15)
    pdf.cell(0, 7.0, f"{format_number(score.percent)} %")
    pdf.set_xy(x + 32.0, y + 4.2)
    pdf.set_font(FONT, "", 9)
    pdf.cell(0, 5.0, f"{format_number(score.points)} of {format_number(score.max_points, 0)} "
                     f"points  ·  pass mark {score.rubric.pass_percent:g} % and no failed "
                     "needle")
    pdf.set_xy(x, y + 11.0)
    pdf.set_font(FONT, "", 8.5)
    who = trainee_name.strip() or "—"
    pdf.cell(0, 4.5, f"Trainee: {who}  ·  time taken: {format_duration(score.time_s)}  ·  "
                     f"{when_text}")
    pdf.set_xy(x, y + 15.5)
    failed = score.failed_needles
    if failed:
        pdf.set_text_color(*rgb(FAIL_COLOR))
        pdf.set_font(FONT, "B", 8.5)
        text = "Failed: " + "; ".join(f"{n.label} ({n.failure})" for n in failed)
    elif not score.passed:
        pdf.set_font(FONT, "B", 8.5)
        text = f"Below the pass mark of {score.rubric.pass_percent:g} %."
    else:
        pdf.set_font(FONT, "", 8.5)
        text = "Every needle safe and within the pass mark."
    pdf.cell(0, 4.5, fit_text(pdf, text, CONTENT_W - 55.0))
    pdf.set_text_color(*DARK)
    pdf.set_y(y + height + 1.0)


def _mm(value: float | None) -> str:
    return "—" if value is None else format_number(value)


def _result_style(n: NeedleScore) -> tuple[str, tuple[int, int, int]]:
    if n.failed:
        return f"{STATUS_SYMBOLS[Status.UNSAFE]} Failed", rgb(FAIL_COLOR)
    if n.is_extra:
        return "Extra", rgb(EXTRA_COLOR)
    return f"{STATUS_SYMBOLS[Status.SAFE]} Scored", rgb(PASS_COLOR)


def _score_table(pdf: FPDF, score: TrainingScore) -> None:
    table_style(pdf, 7.8)
    with pdf.table(col_widths=tuple(w for _, w in SCORE_COLUMNS), width=CONTENT_W,
                   text_align="CENTER", line_height=3.8, headings_style=heading_row_style(7),
                   padding=(1.0, 0.8), borders_layout="HORIZONTAL_LINES",
                   align="LEFT") as table:
        row = table.row()
        for name, _ in SCORE_COLUMNS:
            row.cell(name)
        for n in (*score.needles, *score.extra):
            row = table.row()
            row.cell(n.level, style=FontFace(emphasis="BOLD"))
            row.cell(n.side.value.capitalize())
            row.cell(_mm(n.entry_error_mm))
            row.cell(_mm(n.tip_error_mm))
            row.cell(_mm(n.angle_error_deg))
            row.cell(_mm(n.clearance_mm), style=FontFace(emphasis="BOLD"))
            row.cell(n.grade or "—")
            row.cell(f"{STATUS_SYMBOLS[n.status]} {STATUS_WORDS[n.status]}"
                     if n.attempt is not None else "—",
                     style=FontFace(color=rgb(STATUS_COLORS[n.status])
                                    if n.status is not None else GREY))
            points = ("—" if n.is_extra else
                      f"{format_number(n.points)} / {format_number(n.max_points, 0)}")
            row.cell(points, style=FontFace(emphasis="BOLD"))
            text, color = _result_style(n)
            row.cell(text, style=FontFace(emphasis="BOLD", color=TEXT_ON_STATUS_RGB,
                                          fill_color=color))
        row = table.row()
        row.cell("Total", colspan=8, align="RIGHT", style=FontFace(emphasis="BOLD"))
        row.cell(f"{format_number(score.points)} / {format_number(score.max_points, 0)}",
                 style=FontFace(emphasis="BOLD"))
        verdict, color = ("PASS", rgb(PASS_COLOR)) if score.passed else ("FAIL",
                                                                          rgb(FAIL_COLOR))
        row.cell(verdict, style=FontFace(emphasis="BOLD", color=TEXT_ON_STATUS_RGB,
                                         fill_color=color))


def _needle_reasons(pdf: FPDF, n: NeedleScore) -> None:
    """"✔ Left L1: 91.5 of 100 points" then its reasons as bullets."""
    _, color = _result_style(n)
    if n.is_extra:
        title = f"{n.label}: extra needle"
    else:
        title = f"{n.label}: {format_number(n.points)} of {format_number(n.max_points, 0)} points"
    if n.failed:
        title += f": FAILED ({n.failure})"
    symbol = STATUS_SYMBOLS[Status.UNSAFE] if n.failed else (
        "•" if n.is_extra else STATUS_SYMBOLS[Status.SAFE])
    pdf.set_x(MARGIN)
    pdf.set_font(FONT, "B", 8.5)
    pdf.set_text_color(*color)
    pdf.cell(5, 4.2, symbol)
    pdf.set_text_color(*DARK)
    pdf.multi_cell(CONTENT_W - 5, 4.2, title, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    for reason in n.reasons:
        pdf.set_x(MARGIN + 6.0)
        pdf.set_font(FONT, "", 8)
        pdf.set_text_color(*GREY)
        pdf.cell(4, 3.9, "•")
        pdf.set_text_color(*DARK)
        pdf.multi_cell(CONTENT_W - 10.0, 3.9, reason, align="L", new_x=XPos.LMARGIN,
                       new_y=YPos.NEXT)
    pdf.ln(0.8)


# ---- a page per level -----------------------------------------------------------------------
IMAGE_W = 93.0


def _level_page(pdf: _TraineePDF, score: TrainingScore, level: str,
                images: LevelImages) -> None:
    pdf.add_page()
    needles = [n for n in (*score.needles, *score.extra) if n.level == level]
    level_title(pdf, level, 5.0)
    for n in needles:
        text, color = _result_style(n)
        points = "" if n.is_extra else (f": {format_number(n.points)}/"
                                        f"{format_number(n.max_points, 0)}")
        chip(pdf, f" {n.side.value.capitalize()}{points}  {text} ", color)
    pdf.set_text_color(*DARK)
    pdf.ln(9.5)
    image_pair(pdf, ((images.axial_png, images.axial_caption),
                     (images.sagittal_png, images.sagittal_caption)), IMAGE_W, 8.0)
    _legend_line(pdf)
    pdf.ln(2.0)
    _level_table(pdf, needles, score.rubric)
    pdf.ln(2.0)
    for n in needles:
        _needle_reasons(pdf, n)


def _legend_line(pdf: FPDF) -> None:
    """The key of the pictures in words, with a sample of each line style."""
    y = pdf.get_y() + 2.0
    x = MARGIN
    pdf.set_fill_color(30, 33, 38)
    pdf.rect(x, y - 2.0, 12.0, 4.0, style="F")
    pdf.set_draw_color(*rgb(STATUS_COLORS[Status.SAFE]))
    pdf.set_line_width(0.8)
    pdf.line(x + 1.5, y, x + 10.5, y)
    pdf.set_xy(x + 13.5, y - 2.0)
    pdf.set_font(FONT, "", 7.5)
    pdf.set_text_color(*DARK)
    text = "Your needle, solid, in the colour of its check (green safe, amber caution, red unsafe)"
    pdf.cell(pdf.get_string_width(text) + 5.0, 4.0, text)
    x = pdf.get_x()
    pdf.rect(x, y - 2.0, 12.0, 4.0, style="F")
    pdf.set_draw_color(255, 255, 255)
    pdf.set_line_width(0.5)
    pdf.set_dash_pattern(dash=1.2, gap=0.8)
    pdf.line(x + 1.5, y, x + 10.5, y)
    pdf.set_dash_pattern()
    pdf.set_xy(x + 13.5, y - 2.0)
    pdf.cell(0, 4.0, "Reference, dashed white")
    pdf.set_xy(MARGIN, y + 2.5)
    pdf.set_font(FONT, "", 7)
    pdf.set_text_color(*GREY)
    pdf.cell(CONTENT_W, 3.5, "Ring = entry, dot = tip; the canal is outlined in blue; labels "
                             "give your needle's level, side and canal clearance.")
    pdf.set_y(y + 6.5)


def _of(points: float, most: float) -> str:
    """"29.4 / 40 points"."""
    return f"{format_number(points)} / {most:g} points"


def _level_rows(n: NeedleScore, rubric: Rubric) -> list[tuple[str, str]]:
    """(label, value) pairs of one needle on its level page."""
    rub = n.max_points
    if n.is_extra:
        rows = [("Points", "none: the reference has no needle here")]
    elif n.attempt is None:
        rows = [("Points", f"0 / {format_number(rub, 0)}: not placed")]
    else:
        def part(error: float | None, unit: str, points: float, most: float) -> str:
            text = f"{_mm(error)}{unit}"
            return f"{text} (no points: failed)" if n.failed else f"{text}: {_of(points, most)}"

        rows = [
            ("Tip error", part(n.tip_error_mm, " mm", n.tip_points, rubric.tip_points)),
            ("Entry error", part(n.entry_error_mm, " mm", n.entry_points, rubric.entry_points)),
            ("Angle error", part(n.angle_error_deg, "°", n.angle_points, rubric.angle_points)),
            ("Points", f"{format_number(n.points)} / {format_number(rub, 0)}"),
        ]
    if n.attempt is not None:
        grade = "—" if n.grade is None else f"{n.grade} ({grade_meaning(n.grade)})"
        rows += [
            ("Canal clearance", "—" if n.clearance_mm is None else f"{_mm(n.clearance_mm)} mm"),
            ("Breach grade", grade),
            ("Check", f"{STATUS_SYMBOLS[n.status]} {STATUS_WORDS[n.status]}"),
            ("Your entry (LPS mm)", format_lps(n.attempt.entry_lps)),
            ("Your tip (LPS mm)", format_lps(n.attempt.target_lps)),
        ]
    if n.reference is not None:
        rows += [
            ("Reference entry (LPS mm)", format_lps(n.reference.entry_lps)),
            ("Reference tip (LPS mm)", format_lps(n.reference.target_lps)),
        ]
    if n.attempt is not None and n.reference is not None:
        depth = _depth_difference_mm(n.reference, n.attempt)
        rows.append(("Your tip vs the reference's", depth))
    return rows


def _depth_difference_mm(reference: Trajectory, attempt: Trajectory) -> str:
    """Where the trainee's tip lies from the reference tip: deeper/shorter along the
    reference needle and off its line, which is how a trainee corrects it."""
    d = attempt.target - reference.target
    along = float(d @ reference.direction)
    across = math.sqrt(max(0.0, float(d @ d) - along * along))
    word = "deeper" if along >= 0 else "shorter"
    return f"{format_number(abs(along))} mm {word}, {format_number(across)} mm off the line"


def _level_table(pdf: FPDF, needles: Sequence[NeedleScore], rubric: Rubric) -> None:
    """Rows of numbers, one column per needle of the level (left, right)."""
    rows = merged_rows([_level_rows(n, rubric) for n in needles], ("Points", "Canal clearance"))
    needle_columns_table(pdf, [n.label + (" (extra)" if n.is_extra else "") for n in needles],
                         rows, x=MARGIN, width=CONTENT_W, label_w=42.0, size_pt=7.5,
                         line_height=3.6)
