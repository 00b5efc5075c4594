"""The plan report's page for one level: the axial and sagittal images
(`planning.report.report_images`), the 3-D picture when the caller has one, the level's
numbers side by side for the left and right needle, and the reasons behind any verdict
that is not "safe".

The findings (a needle's verdict and its reasons in words) are here too: the summary page
lists every needle's, a level page its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from planning.checks import (
    CheckResult,
    Status,
    canal_wall_words,
    grade_meaning,
    reason_text,
)
from planning.plan import GAUGES, Plan, Side, Trajectory
from planning.report.model import LevelImages
from planning.report.page import CONTENT_W, DARK, FONT, GREY, MARGIN, TEXT_ON_STATUS_RGB
from planning.report.pdf_blocks import (
    Cell,
    chip,
    heading,
    image_pair,
    level_title,
    merged_rows,
    needle_columns_table,
)
from planning.vocabulary import (
    STATUS_COLORS,
    STATUS_SYMBOLS,
    STATUS_WORDS,
    format_deg,
    format_lps,
    format_mm,
    rgb,
)


def status_of(result: CheckResult | None) -> Status | None:
    """A needle's status; None: not checked."""
    return None if result is None else result.status


def status_text(status: Status | None) -> str:
    """"✔ Safe": the status's symbol and word, as the chips and tables print it."""
    return f"{STATUS_SYMBOLS[status]} {STATUS_WORDS[status]}"


def _worst(statuses: Iterable[Status | None]) -> Status | None:
    order = [Status.UNSAFE, None, Status.CAUTION, Status.SAFE]  # not checked is not "safe"
    found = list(statuses)
    return next((s for s in order if s in found), None)


def finding(pdf: FPDF, t: Trajectory, r: CheckResult | None) -> None:
    """One needle's verdict and reasons in words."""
    status = status_of(r)
    color = rgb(STATUS_COLORS[status])
    title = f"{t.level} {t.side.value} — {STATUS_WORDS[status]}"
    if r is None:
        body = ["Not checked against the anatomy."]
    elif not r.reasons:
        body = ["Every check is within its limits."]
    else:
        body = [reason_text(r, text) for text in r.reasons]
    if status is Status.SAFE and len(body) == 1:  # one line: "✔ L1 left — Safe: ..."
        bullet(pdf, STATUS_SYMBOLS[status], f"{title}: {body[0]}", color, 8.5, bold_prefix=title)
        return
    bullet(pdf, STATUS_SYMBOLS[status], title, color, 8.5, bold_prefix=title)
    for text in body:
        bullet(pdf, "•", text, DARK, 8.0, indent=6.0)


def bullet(
    pdf: FPDF, symbol: str, text: str, color: tuple[int, int, int], size: float,
    *, indent: float = 0.0, bold_prefix: str = "",
) -> None:
    """A symbol in ``color`` and wrapped text beside it."""
    x = MARGIN + indent
    pdf.set_x(x)
    pdf.set_font(FONT, "B", size)
    pdf.set_text_color(*color)
    pdf.cell(5, size * 0.48, symbol)
    pdf.set_text_color(*DARK)
    if bold_prefix and text.startswith(bold_prefix):
        pdf.set_font(FONT, "B", size)
        pdf.cell(pdf.get_string_width(bold_prefix), size * 0.48, bold_prefix)
        text = text[len(bold_prefix):]
        pdf.set_font(FONT, "", size)
        pdf.multi_cell(CONTENT_W - indent - 5 - pdf.get_string_width(bold_prefix) - 0.1,
                       size * 0.48, text, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    else:
        pdf.set_font(FONT, "", size)
        pdf.multi_cell(CONTENT_W - indent - 5, size * 0.48, text, align="L",
                       new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(0.6)


# ---- the page ------------------------------------------------------------------------------
IMAGE_W = 80.0
SNAPSHOT_W = 86.0
TABLE_GAP = 4.0


def level_page(
    pdf: FPDF,
    plan: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    level: str,
    images: LevelImages | None,
    snapshot: bytes | None,
) -> None:
    """A level's CT images, 3-D picture, numbers and reasons."""
    pdf.add_page()
    needles = [t for t in plan.trajectories if t.level == level]
    statuses = [status_of(results.get(t.key)) for t in needles]
    worst = _worst(statuses)
    # title: the level and a chip per needle
    level_title(pdf, level, 4.0)
    pdf.set_font(FONT, "", 9)
    approach = "bipedicular" if len(needles) == 2 else "unipedicular" if needles else ""
    pdf.cell(pdf.get_string_width(approach) + 4, 8, approach)
    for t, status in zip(needles, statuses, strict=True):
        chip(pdf, f" {t.side.value.capitalize()}: {status_text(status)} ",
             rgb(STATUS_COLORS[status]))
    pdf.set_text_color(*DARK)
    pdf.ln(9.5)

    # the two slices, side by side
    if images is not None:
        image_pair(pdf, ((images.axial_png, images.axial_caption),
                         (images.sagittal_png, images.sagittal_caption)), IMAGE_W, 8.5)
    else:
        pdf.set_font(FONT, "", 9)
        pdf.set_text_color(*GREY)
        pdf.cell(CONTENT_W, 6, "No images of this level.", new_x=XPos.LMARGIN,
                 new_y=YPos.NEXT)
    pdf.set_text_color(*DARK)

    # the 3-D picture and the numbers beside it
    y = pdf.get_y()
    table_x, table_w = MARGIN, CONTENT_W
    bottom = y
    if snapshot is not None:
        info = pdf.image(io.BytesIO(snapshot), x=MARGIN, y=y, w=SNAPSHOT_W)
        snap_h = float(info.rendered_height)
        pdf.set_xy(MARGIN, y + snap_h + 0.8)
        pdf.set_font(FONT, "", 7)
        pdf.set_text_color(*GREY)
        pdf.multi_cell(SNAPSHOT_W, 3.2, "3-D: bone, spinal canal (blue, seen through the "
                                        "bone) and needles in their status colours.",
                       align="L")
        bottom = pdf.get_y()
        table_x, table_w = MARGIN + SNAPSHOT_W + TABLE_GAP, CONTENT_W - SNAPSHOT_W - TABLE_GAP
    pdf.set_xy(table_x, y)
    _level_table(pdf, needles, results, table_x, table_w)
    pdf.set_y(max(bottom, pdf.get_y()) + 1.0)
    if worst is not Status.SAFE or any(r.reasons for t in needles
                                       if (r := results.get(t.key)) is not None):
        heading(pdf, "Reasons", 10.0, 2.0)
        for t in needles:
            finding(pdf, t, results.get(t.key))


def _level_rows(t: Trajectory, r: CheckResult | None) -> list[tuple[str, str]]:
    """(label, value) pairs of one needle, in the level table's order."""
    rows = [
        ("Gauge", f"{t.gauge} ({GAUGES[t.gauge].outer_diameter_mm:.2f} mm)"),
        ("Entry (LPS mm)", format_lps(t.entry_lps)),
        ("Target (LPS mm)", format_lps(t.target_lps)),
        ("Length entry–tip", format_mm(t.length_mm)),
    ]
    if r is None:
        return rows
    if r.wall_breaches:
        walls = "; ".join(f"{b.wall} {format_mm(b.depth_mm)}" for b in r.wall_breaches)
    else:
        walls = "none"
    if r.tip_in_body:
        tip = f"in the body of {r.tip_level}"
    elif r.tip_level:
        tip = f"in {r.tip_level}, not in the body"
    else:
        tip = "outside the vertebra"
    if r.tip_walled_directions is not None:
        tip += ("; CT: bone all round" if r.tip_walled_directions == r.tip_rays else
                f"; CT: bone on {r.tip_walled_directions} of {r.tip_rays} sides")
    vessel = ("none in the CT" if r.vessel_clearance_mm is None
              else format_mm(r.vessel_clearance_mm))
    depth = "—" if r.tip_depth_fraction is None else f"{r.tip_depth_fraction:.0%}"
    rows += [
        ("Skin to tip", format_mm(r.skin_to_tip_mm)),
        ("Medial angle", f"{format_deg(r.medial_angle_deg)} "
                         f"(vertebra {format_deg(r.medial_angle_vertebra_deg)})"),
        ("Craniocaudal angle", f"{format_deg(r.craniocaudal_angle_deg)} "
                               f"(vertebra {format_deg(r.craniocaudal_angle_vertebra_deg)})"),
        ("Canal clearance", format_mm(r.canal_clearance_mm)),
        ("Breach grade", f"{r.breach_grade}: {grade_meaning(r.breach_grade)}"),
        *([("Canal wall", wall)] if (wall := canal_wall_words(r)) else []),
        ("Approach", f"{r.approach}; wall breach {walls}" if r.wall_breaches
         else f"{r.approach}; no wall breach"),
        ("Nearest vessel", vessel),
        ("Tip", tip),
        ("Tip depth in body", depth.replace("-", "\u2212")),
        ("Tip to anterior cortex", format_mm(r.tip_to_anterior_cortex_mm)),
        ("Tip to midline", format_mm(r.tip_to_midline_mm)),
        ("Gap to other needle", format_mm(r.pair_distance_mm)),
    ]
    if r.crossings:
        rows.append(("Crosses", ", ".join(r.crossings)))
    return rows


def _level_table(
    pdf: FPDF, needles: Sequence[Trajectory], results: Mapping[tuple[str, Side], CheckResult],
    x: float, width: float,
) -> None:
    """Parameters as rows, one column per needle (left, right)."""
    if not needles:
        pdf.set_font(FONT, "", 9)
        pdf.cell(width, 6, "No needle at this level.")
        return
    status_row: list[Cell] = []
    for t in needles:
        status = status_of(results.get(t.key))
        status_row.append((status_text(status), FontFace(
            emphasis="BOLD", color=TEXT_ON_STATUS_RGB, fill_color=rgb(STATUS_COLORS[status]))))
    rows = [("Status", status_row),
            *merged_rows([_level_rows(t, results.get(t.key)) for t in needles],
                         ("Canal clearance",))]
    notes = [t.note for t in needles]
    if any(notes):
        rows.append(("Note", [(note or "—", None) for note in notes]))
    needle_columns_table(pdf, [f"{t.level} {t.side.value}" for t in needles], rows, x=x,
                         width=width, label_w=30.0, size_pt=7.2, line_height=3.4)
