"""The report's clinical assessment: the "Levels" table of the summary page and a card per
level page (fracture, heights, cement, pedicles, leakage risks), from
`planning.assessment.levels.assess_levels`.

Why in the report: the surgeon signs off the levels treated and the cement volume with the
needles; the angio team reads the leakage risks before injecting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from planning.plan import Side

if TYPE_CHECKING:
    from planning.assessment.levels import LevelAssessment

FONT = "DejaVu"
DARK = (33, 37, 41)
GREY = (108, 117, 125)
RULE = (206, 212, 218)
HEADING_FILL = (233, 236, 239)
FRACTURE_FILL = {1: (255, 236, 179), 2: (255, 214, 170), 3: (248, 196, 196)}
LEVEL_COLUMNS = (("Level", 12.0), ("Fracture", 52.0), ("Body", 15.0),
                 ("Cement total / a side", 30.0), ("Pedicles L / R", 34.0),
                 ("Leakage risks", 43.0))
ASSESSMENT_NOTE = (
    "Fracture grade after Genant (semi-quantitative: 1 mild 20–25 %, 2 moderate 25–40 %, "
    "3 severe > 40 % height loss), heights measured in the vertebra's own frame. Cement: "
    "{lo:.0f}–{hi:.0f} % of the body volume (Molloy 2003; Nieuwenhuijse 2012), split "
    "between the needles. Pedicle fit = needle outer diameter / isthmus width (tight above "
    "0.8). Automatic measurements: confirm on the images."
)


def levels_table(pdf: FPDF, assessment: Mapping[str, LevelAssessment], width: float) -> None:
    """One row per level, fractured levels first (the assessment's order)."""
    pdf.set_font(FONT, "", 7.2)
    pdf.set_text_color(*DARK)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    scale = width / sum(w for _, w in LEVEL_COLUMNS)
    heading = FontFace(emphasis="BOLD", color=DARK, fill_color=HEADING_FILL, size_pt=7)
    with pdf.table(col_widths=tuple(w * scale for _, w in LEVEL_COLUMNS), width=width,
                   text_align="LEFT", line_height=3.4, headings_style=heading,
                   padding=(0.8, 0.8), borders_layout="HORIZONTAL_LINES",
                   align="LEFT") as table:
        row = table.row()
        for name, _ in LEVEL_COLUMNS:
            row.cell(name)
        for name, a in assessment.items():
            grade = a.genant_grade or 0
            fill = FRACTURE_FILL.get(grade)
            row = table.row()
            row.cell(name, style=FontFace(emphasis="BOLD"))
            row.cell(a.fracture_summary(),
                     style=FontFace(emphasis="BOLD", fill_color=fill) if fill else None)
            row.cell("—" if a.body_volume_ml is None else f"{a.body_volume_ml:.1f} ml")
            total, side = a.cement_ml_total, a.cement_ml_per_side
            row.cell("—" if total is None or side is None else
                     f"{total[0]:.1f}–{total[1]:.1f} ml / {side[0]:.1f}–{side[1]:.1f} ml")
            row.cell(" / ".join(_pedicle_short(a, s) for s in (Side.LEFT, Side.RIGHT)))
            flags = a.present_flags
            row.cell("none found" if not flags else
                     "; ".join(f.kind.replace("_", " ") for f in flags))
    if assessment:
        first = next(iter(assessment.values()))
        lo, hi = (100 * v for v in first.fill_range)
        pdf.set_font(FONT, "", 6.8)
        pdf.set_text_color(*GREY)
        pdf.multi_cell(width, 3.2, ASSESSMENT_NOTE.format(lo=lo, hi=hi), align="L",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*DARK)


def level_card(pdf: FPDF, a: LevelAssessment, x: float, width: float) -> None:
    """The level's assessment as label/value rows, each leakage risk with its reason."""
    rows: list[tuple[str, str]] = [("Fracture", a.fracture_summary())]
    f = a.fracture
    if f is not None:
        h = f.heights
        rows.append(("Heights A / M / P",
                     f"{h.anterior_mm:.1f} / {h.middle_mm:.1f} / {h.posterior_mm:.1f} mm"))
        r = f.retropulsion
        rows.append(("Posterior wall", f"retropulsed {r.displacement_mm:.1f} mm (relative "
                                       "contraindication)" if r.present else
                     f"in line ({r.displacement_mm:+.1f} mm against the neighbours)"))
        if f.cleft.present:
            rows.append(("Intravertebral cleft",
                         f"{f.cleft.kind}, {f.cleft.volume_ml:.2f} ml"))
    total, side = a.cement_ml_total, a.cement_ml_per_side
    if a.body_volume_ml is not None and total is not None and side is not None:
        lo, hi = (100 * v for v in a.fill_range)
        rows.append(("Body, cement", f"body {a.body_volume_ml:.1f} ml; at {lo:.0f}–{hi:.0f} %: "
                     f"{total[0]:.1f}–{total[1]:.1f} ml in all, "
                     f"{side[0]:.1f}–{side[1]:.1f} ml a needle"))
    if a.cement is not None and a.cement.spreads:
        spreads = a.cement.spreads
        who = " / ".join("?" if sp.side is None else sp.side.value[0].upper() for sp in spreads)
        wall = " / ".join(f"{sp.distance_to_posterior_wall_mm:.1f}" for sp in spreads)
        foramen = " / ".join(f"{sp.distance_to_basivertebral_foramen_mm:.1f}" for sp in spreads)
        rows.append((f"Cement reach {who}",
                     f"{wall} mm to the posterior wall, {foramen} mm to the basivertebral "
                     f"foramen (at {100 * a.cement.preview_fill:.0f} % fill)"))
    for s in (Side.LEFT, Side.RIGHT):
        p = a.pedicles.get(s)
        if p is None:
            continue
        text = (f"{p.width_mm:.1f} × {p.height_mm:.1f} mm, "
                f"{p.gauge.name} fit {p.fit_ratio:.2f} ({p.fit})")
        norm = next((c for q, c in p.norms.items() if q.value == "width_mm"), None)
        if norm is not None:
            text += f"; norm {norm.mean:.1f} ± {norm.sd:.1f} mm ({norm.category})"
        if p.fit != "ok":
            text += f". {p.suggestion}"
        rows.append((f"{s.value.capitalize()} pedicle", text))
    flags = a.present_flags
    if not flags:
        rows.append(("Leakage risks", f"none found ({len(a.flags)} checks)"))
    for flag in flags:
        rows.append(("Leakage risk", f"{flag.why} ({flag.confidence} confidence)"))

    if pdf.will_page_break(6.0 + 7.5 * ((len(rows) + 1) // 2)):
        pdf.add_page()  # the two columns must start on one page
    pdf.set_x(x)
    pdf.set_font(FONT, "B", 10)
    pdf.set_text_color(*DARK)
    pdf.cell(width, 5.5, f"{a.level} assessment", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    # two columns: the card must fit under the level's table on the same page
    gap = 4.0
    column_w = (width - gap) / 2
    half = (len(rows) + 1) // 2
    top = pdf.get_y()
    old_margin = pdf.l_margin
    bottom = top
    for n, part in enumerate((rows[:half], rows[half:])):
        pdf.set_left_margin(x + n * (column_w + gap))
        pdf.set_xy(x + n * (column_w + gap), top)
        _rows_table(pdf, part, column_w)
        bottom = max(bottom, pdf.get_y())
    pdf.set_left_margin(old_margin)
    pdf.set_xy(old_margin, bottom)


def _rows_table(pdf: FPDF, rows: list[tuple[str, str]], width: float) -> None:
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    pdf.set_font(FONT, "", 7.0)
    pdf.set_text_color(*DARK)
    label = FontFace(color=GREY)
    with pdf.table(col_widths=(0.3 * width, 0.7 * width), width=width, text_align="LEFT",
                   line_height=3.2, first_row_as_headings=False, padding=(0.5, 0.8),
                   borders_layout="HORIZONTAL_LINES", align="LEFT") as table:
        for name, value in rows:
            row = table.row()
            row.cell(name, style=label)
            row.cell(value)


def _pedicle_short(a: LevelAssessment, side: Side) -> str:
    p = a.pedicles.get(side)
    if p is None:
        return "—"
    return f"{p.width_mm:.1f} mm {p.fit}"
