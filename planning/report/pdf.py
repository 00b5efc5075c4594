"""The PDF plan report a surgeon takes to the angio suite (fpdf2, DejaVu Sans).

Page 1 is the summary: one row per needle with its numbers and coloured status, the
reasons behind every verdict in words, the warnings, and the frame of reference the
coordinates belong to. Then one page per level: the axial and sagittal images
(`planning.report.report_images`), the 3-D picture when the caller has one, and the level's
numbers side by side for the left and right needle; each followed by the level's simulated
fluoroscopy page (unless ``fluoroscopy=False``): DRRs of the AP and lateral views and of each
needle's bull's-eye and progression views, with the needles' shadows and the C-arm angles
(`planning.fluoro_views`), because the needle is driven under the C-arm, not on CT slices.

Every page carries a header with the patient, the study, the planner, when and with which
version the report was made, and the disclaimer. ``deidentify`` leaves out everything that
names the patient or the study (name, ID, birth date, sex, accession number, study date,
descriptions, UIDs) and says "De-identified" instead.

Coordinates are DICOM patient LPS millimetres, printed with one decimal and a true minus
sign, exactly as `format_number` writes them.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from planning.carm import (
    CONVENTION_NAMES,
    CONVENTION_TAGS,
    REGISTRATION_CHOICES,
    REGISTRATION_QUESTION,
    CArmSetting,
    Convention,
    other_convention,
    working_views,
)
from planning.checks import (
    CheckResult,
    SafetyLimits,
    Status,
    canal_wall_words,
    grade_meaning,
    reason_text,
)
from planning.drr import AttenuationVolume
from planning.fluoro_views import WORKING_DETECTOR_MM, FluoroSetup, plan_views
from planning.plan import GAUGES, Plan, Side, Trajectory
from planning.progress import Progress, no_progress
from planning.report.page import (
    CONTENT_W,
    DARK,
    FONT,
    GREY,
    HEADING_FILL,
    MARGIN,
    RULE,
    TEXT_ON_STATUS_RGB,
    ReportPage,
    write_atomically,
)
from planning.report.pdf_assessment import level_card, levels_table
from planning.report.report_images import (
    FLUORO_DRR_PX,
    FluoroImage,
    LevelImages,
    fluoro_image,
)
from planning.vocabulary import (
    DISCLAIMER,
    STATUS_COLORS,
    STATUS_SYMBOLS,
    STATUS_WORDS,
    format_deg,
    format_dicom_date,
    format_lps,
    format_mm,
    format_number,
    format_person_name,
    rgb,
)
from planning.volume import PatientInfo, Volume

if TYPE_CHECKING:
    from planning.assessment.levels import LevelAssessment

TITLE = "Vertebroplasty plan"
DEIDENTIFIED = "De-identified"
LPS_NOTE = ("Coordinates are DICOM patient LPS millimetres: +x towards the patient's left, "
            "+y posterior, +z superior (head).")
ANGLE_NOTE = ("Angles, in the patient's frame: medial + = converging towards the midline; "
              "craniocaudal + = pointing caudally (towards the feet).")
STATUS_NOTE = ("Safe: every check within its limits. Caution: a margin is below its limit "
               "(see the reasons). Unsafe: the needle enters the canal, breaches the medial "
               "pedicle wall, leaves the vertebral body, crosses an endplate or disc, comes "
               f"within {SafetyLimits().vessel_min_mm:g} mm of a contrast-filled vessel, or "
               "the CT shows no bone around its "
               "tip (vessels and bone are read from the image itself, not the anatomy).")


@dataclass(frozen=True)
class _Header:
    """What the header of every page says (already formatted, de-identified if asked)."""

    patient: list[tuple[str, str]]
    study: list[tuple[str, str]]
    planner: str
    created: str
    software: str


def _status(result: CheckResult | None) -> Status | None:
    return None if result is None else result.status


def _status_text(status: Status | None) -> str:
    return f"{STATUS_SYMBOLS[status]} {STATUS_WORDS[status]}"


def _worst(statuses: Iterable[Status | None]) -> Status | None:
    order = [Status.UNSAFE, None, Status.CAUTION, Status.SAFE]  # not checked is not "safe"
    found = list(statuses)
    return next((s for s in order if s in found), None)


class _ReportPDF(ReportPage):
    """A4 portrait with the report's header (disclaimer, patient, study) and footer."""

    def __init__(self, header: _Header) -> None:
        super().__init__(TITLE, header.software, title_width_mm=100.0, rule_y_mm=31.0,
                         footer_note="Coordinates: DICOM patient LPS, mm (+x patient's left, "
                                     "+y posterior, +z head).")
        self.report_header = header

    def header_lines(self) -> None:
        h = self.report_header
        # patient and study (left), planner and creation (right)
        split = 126.0  # patient and study left of this, planner and time right of it
        self.label_values(MARGIN, 21.0, h.patient, MARGIN + split - 3.0)
        self.label_values(MARGIN, 25.5, h.study, MARGIN + split - 3.0)
        self.label_values(MARGIN + split, 21.0, [("Planner", h.planner or "—")],
                          MARGIN + CONTENT_W)
        self.label_values(MARGIN + split, 25.5, [("Created", h.created)], MARGIN + CONTENT_W)


def _header_values(
    patient: PatientInfo, planner: str, software_version: str, deidentify: bool,
    created: datetime,
) -> _Header:
    if deidentify:
        patient_pairs = [("Patient", DEIDENTIFIED)]
        study_pairs = [("Study", DEIDENTIFIED)]
    else:
        patient_pairs = [("Patient", format_person_name(patient.name) or "—"),
                         ("ID", patient.patient_id or "—"),
                         ("Born", format_dicom_date(patient.birth_date) or "—")]
        if patient.sex:
            patient_pairs.append(("Sex", patient.sex))
        study_pairs = [("Study", format_dicom_date(patient.study_date) or "—")]
        if patient.accession_number:
            study_pairs.append(("Accession", patient.accession_number))
        study_pairs.append(("", patient.study_description or patient.series_description or ""))
    offset = created.strftime("%z")
    zone = f" UTC{offset[:3]}:{offset[3:]}" if offset else ""
    return _Header(
        patient=patient_pairs,
        study=study_pairs,
        planner=planner,
        created=created.strftime("%Y-%m-%d %H:%M") + zone,
        software=f"VertebroPlan {software_version}".strip(),
    )


def write_pdf_report(
    path: str | Path,
    plan: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    volume: Volume,
    images: Mapping[str, LevelImages],
    *,
    snapshots: Mapping[str, bytes] | None = None,
    planner: str = "",
    software_version: str,
    deidentify: bool = False,
    warnings: Sequence[str] = (),
    created: datetime | None = None,
    limits: SafetyLimits | None = None,
    fluoroscopy: bool = True,
    fluoro_setup: FluoroSetup | None = None,
    attenuation: AttenuationVolume | None = None,
    progress: Progress | None = None,
    assessment: Mapping[str, LevelAssessment] | None = None,
) -> Path:
    """Write the plan report to ``path`` (atomically: a temporary file, then a rename).

    Parameters
    ----------
    path
        Where to write the PDF; its folder is created if needed.
    plan, results
        The plan and each trajectory's check, keyed by (level, Side); a trajectory without
        a result is reported as "Not checked".
    volume
        The CT: patient and study for the header, the frame of reference UID.
    images
        Per level name, the axial and sagittal images (`report_images.level_images`).
    snapshots
        Per level name, a PNG of the 3-D scene (e.g. ``widgets.snapshot3d``), optional.
    planner, software_version
        Printed in every page's header.
    deidentify
        Leave out the patient's and the study's identity (see the module docstring).
    warnings
        Sentences printed on the summary page (e.g. the anatomy's or the CT's warnings).
    created
        The creation time printed in the header (default: now, local time).
    limits
        The limits the checks used, quoted in the explanations (default: the defaults).
    fluoroscopy
        Add a simulated fluoroscopy page after each level's page (~2 s for 3 levels of the
        demo CT on 2 cores: one attenuation volume, then six DRRs a level).
    fluoro_setup
        The C-arm's distances and the patient's position for those pages (default
        `FluoroSetup`: 1200 / 800 mm, prone). Its image size is ignored: the report renders
        `FLUORO_DRR_PX` square DRRs, sized for the page and for time.
    attenuation
        The CT's `AttenuationVolume` when the caller already has one (the GUI keeps one for
        its own fluoroscopy view); otherwise it is built from ``volume``.
    progress
        Told before each DRR (they are the slow part) and polled for Cancel; a cancelled
        report raises `Cancelled` and writes nothing.
    assessment
        `planning.assessment.levels.assess_levels` of the CT and plan: a "Levels" table on
        the summary (fractured levels first) and an assessment card per level, under its
        simulated fluoroscopy (or after its page without fluoroscopy).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    ReportFileError
        When the file cannot be written or the font is missing.
    Cancelled
        When ``progress`` was cancelled.
    """
    target = Path(path)
    setup = replace(fluoro_setup or FluoroSetup(), size_px=FLUORO_DRR_PX)
    fluoro: dict[str, list[FluoroImage]] = {}
    if fluoroscopy and plan.trajectories:
        fluoro = _fluoro_images(plan, results, volume, setup, attenuation,
                                progress or no_progress())
    when = (created or datetime.now()).astimezone()
    header = _header_values(volume.patient, planner, software_version, deidentify, when)
    pdf = _ReportPDF(header)
    pdf.set_title(f"{TITLE}: {', '.join(plan.levels) or 'no levels'}")
    pdf.set_creator(header.software)
    pdf.set_producer(header.software)
    if planner:
        pdf.set_author(planner)
    pdf.set_subject(DISCLAIMER)
    pdf.set_creation_date(when)

    all_warnings = list(warnings) + _plan_warnings(plan, volume, results)
    _summary_page(pdf, plan, results, volume, all_warnings, deidentify, limits or SafetyLimits(),
                  assessment, setup)
    if plan.trajectories and not fluoro:  # else each fluoroscopy page has its level's table
        _carm_page(pdf, plan, setup)
    for level in plan.levels:
        _level_page(pdf, plan, results, level, images.get(level), (snapshots or {}).get(level))

        if level in fluoro:
            _fluoro_page(pdf, level, fluoro[level], setup)
        if assessment is not None and level in assessment:  # under the DRRs: room there
            pdf.ln(2.0)
            level_card(pdf, assessment[level], MARGIN, CONTENT_W)
    write_atomically(target, bytes(pdf.output()))
    return target


def _plan_warnings(
    plan: Plan, volume: Volume, results: Mapping[tuple[str, Side], CheckResult]
) -> list[str]:
    """Warnings the report adds by itself: another CT's frame, needles not checked."""
    out = []
    if plan.frame_override is not None:
        out.append(
            "This plan was made on a CT with another frame of reference "
            f"({plan.frame_override.plan_frame_uid}) and applied to this one "
            f"({plan.frame_override.ct_frame_uid}): {plan.frame_override.reason}."
        )
    elif (plan.frame_of_reference_uid and volume.frame_of_reference_uid
          and plan.frame_of_reference_uid != volume.frame_of_reference_uid):
        out.append("The plan's frame of reference is not this CT's: the coordinates may "
                   "not match the patient.")
    unchecked = [t.label for t in plan.trajectories if t.key not in results]
    if unchecked:
        out.append(f"Not checked against the anatomy: {', '.join(unchecked)}.")
    return out


# ---- page 1 ------------------------------------------------------------------------------
SUMMARY_COLUMNS: tuple[tuple[str, float, str], ...] = (
    ("Level", 10.5, "C"),
    ("Side", 10.5, "C"),
    ("Gauge", 11.5, "C"),
    ("Entry x, y, z (LPS mm)", 34.5, "C"),
    ("Target x, y, z (LPS mm)", 34.5, "C"),
    ("Length (mm)", 14.0, "C"),
    ("Medial (°)", 14.0, "C"),
    ("Cranio-\ncaudal (°)", 14.5, "C"),
    ("Canal clearance (mm)", 16.5, "C"),
    ("Grade", 11.0, "C"),
    ("Status", 18.5, "C"),
)


def _heading(pdf: FPDF, text: str, size: float = 11.0, gap_mm: float = 3.0) -> None:
    pdf.ln(gap_mm)
    pdf.set_x(MARGIN)
    pdf.set_font(FONT, "B", size)
    pdf.set_text_color(*DARK)
    pdf.cell(CONTENT_W, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.0)


def _summary_page(
    pdf: _ReportPDF,
    plan: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    volume: Volume,
    warnings: Sequence[str],
    deidentify: bool,
    limits: SafetyLimits,
    assessment: Mapping[str, LevelAssessment] | None = None,
    setup: FluoroSetup | None = None,
) -> None:
    pdf.add_page()
    statuses = [_status(results.get(t.key)) for t in plan.trajectories]
    _heading(pdf, "Summary", 14.0, 0.0)
    _verdict_line(pdf, plan, statuses)
    if plan.trajectories:
        _summary_table(pdf, plan, results)
    else:
        pdf.set_font(FONT, "", 9)
        pdf.multi_cell(CONTENT_W, 5, "The plan has no needles.", align="L", new_x=XPos.LMARGIN)
    if assessment:
        _heading(pdf, "Levels")
        levels_table(pdf, assessment, CONTENT_W)

    _heading(pdf, "Findings")
    for t in plan.trajectories:
        _finding(pdf, t, results.get(t.key))
    if warnings:
        _heading(pdf, "Warnings")
        for text in warnings:
            _bullet(pdf, "⚠", text, rgb(STATUS_COLORS[Status.CAUTION]), 8.5)

    _heading(pdf, "Reference")
    pdf.set_font(FONT, "", 7.5)
    pdf.set_text_color(*DARK)
    if deidentify:
        uid_lines = [f"Frame of reference UID: {DEIDENTIFIED.lower()}"]
    else:
        frame = plan.frame_of_reference_uid or volume.frame_of_reference_uid or "—"
        uid_lines = [f"Frame of reference UID: {frame}",
                     f"Study instance UID: {plan.study_uid or volume.study_uid or '—'}",
                     f"Series instance UID: {plan.series_uid or volume.series_uid or '—'}"]
    grades = ", ".join(f"{g} {grade_meaning(g)}" for g in ("A", "B", "C", "D", "E"))
    notes = [
        *uid_lines,
        LPS_NOTE,
        ANGLE_NOTE,
        carm_summary(setup or FluoroSetup()),
        "Canal clearance: from the needle's outer surface to the spinal canal; negative = "
        f"inside the canal by that depth. Caution below {limits.canal_caution_mm:g} mm.",
        f"Breach grade (Gertzbein–Robbins style): {grades}.",
        STATUS_NOTE,
    ]
    for line in notes:
        pdf.set_x(MARGIN)
        pdf.multi_cell(CONTENT_W, 3.7, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _verdict_line(pdf: FPDF, plan: Plan, statuses: Sequence[Status | None]) -> None:
    """"3 levels, 6 needles:" then a coloured chip per status present."""
    pdf.set_font(FONT, "", 9.5)
    pdf.set_text_color(*DARK)
    n_levels = len(plan.levels)
    n = len(plan.trajectories)
    head = (f"{n_levels} level{'s' if n_levels != 1 else ''} "
            f"({', '.join(plan.levels) or 'none'}), {n} needle{'s' if n != 1 else ''}:  ")
    pdf.set_x(MARGIN)
    pdf.cell(pdf.get_string_width(head), 6, head)
    for status in (Status.SAFE, Status.CAUTION, Status.UNSAFE, None):
        count = sum(1 for s in statuses if s is status)
        if not count and status is None:
            continue
        text = f" {STATUS_SYMBOLS[status]} {count} {STATUS_WORDS[status].lower()} "
        pdf.set_font(FONT, "B", 9)
        if count:
            pdf.set_fill_color(*rgb(STATUS_COLORS[status]))
            pdf.set_text_color(*TEXT_ON_STATUS_RGB)
        else:
            pdf.set_fill_color(240, 242, 245)
            pdf.set_text_color(*GREY)
        pdf.cell(pdf.get_string_width(text) + 2, 6, text, fill=True, align="C")
        pdf.cell(2, 6, "")
    pdf.set_text_color(*DARK)
    pdf.ln(8)


def _table_defaults(pdf: FPDF, size_pt: float) -> None:
    """A table takes its cells' default style from the current state: set it plainly."""
    pdf.set_font(FONT, "", size_pt)
    pdf.set_text_color(*DARK)
    pdf.set_fill_color(255, 255, 255)


def _summary_table(
    pdf: FPDF, plan: Plan, results: Mapping[tuple[str, Side], CheckResult]
) -> None:
    _table_defaults(pdf, 7.5)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    widths = tuple(w for _, w, _ in SUMMARY_COLUMNS)
    heading_style = FontFace(emphasis="BOLD", color=DARK, fill_color=HEADING_FILL, size_pt=7)
    with pdf.table(col_widths=widths, width=CONTENT_W, text_align="CENTER", line_height=3.6,
                   headings_style=heading_style, padding=(1.0, 0.8),
                   borders_layout="HORIZONTAL_LINES", align="LEFT") as table:
        row = table.row()
        for name, _, _ in SUMMARY_COLUMNS:
            row.cell(name)
        for t in plan.trajectories:
            r = results.get(t.key)
            status = _status(r)
            row = table.row()
            row.cell(t.level, style=FontFace(emphasis="BOLD"))
            row.cell(t.side.value.capitalize())
            row.cell(t.gauge)
            row.cell(format_lps(t.entry_lps))
            row.cell(format_lps(t.target_lps))
            row.cell(format_number(t.length_mm))
            row.cell("—" if r is None else format_number(r.medial_angle_deg))
            row.cell("—" if r is None else format_number(r.craniocaudal_angle_deg))
            row.cell("—" if r is None else format_number(r.canal_clearance_mm),
                     style=FontFace(emphasis="BOLD"))
            row.cell("—" if r is None else r.breach_grade)
            row.cell(_status_text(status), style=FontFace(
                emphasis="BOLD", color=TEXT_ON_STATUS_RGB, fill_color=rgb(STATUS_COLORS[status])))


def _finding(pdf: FPDF, t: Trajectory, r: CheckResult | None) -> None:
    """One needle's verdict and reasons in words."""
    status = _status(r)
    color = rgb(STATUS_COLORS[status])
    title = f"{t.level} {t.side.value} — {STATUS_WORDS[status]}"
    if r is None:
        body = ["Not checked against the anatomy."]
    elif not r.reasons:
        body = ["Every check is within its limits."]
    else:
        body = [reason_text(r, text) for text in r.reasons]
    if status is Status.SAFE and len(body) == 1:  # one line: "✔ L1 left — Safe: ..."
        _bullet(pdf, STATUS_SYMBOLS[status], f"{title}: {body[0]}", color, 8.5, bold_prefix=title)
        return
    _bullet(pdf, STATUS_SYMBOLS[status], title, color, 8.5, bold_prefix=title)
    for text in body:
        _bullet(pdf, "•", text, DARK, 8.0, indent=6.0)


def _bullet(
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


# ---- one page per level ----------------------------------------------------------------
IMAGE_W = 80.0
IMAGE_GAP = CONTENT_W - 2 * IMAGE_W
SNAPSHOT_W = 86.0
TABLE_GAP = 4.0


def _level_page(
    pdf: _ReportPDF,
    plan: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    level: str,
    images: LevelImages | None,
    snapshot: bytes | None,
) -> None:
    """A level's CT images, 3-D picture, numbers and reasons."""
    pdf.add_page()
    needles = [t for t in plan.trajectories if t.level == level]
    statuses = [_status(results.get(t.key)) for t in needles]
    worst = _worst(statuses)
    # title: the level and a chip per needle
    pdf.set_font(FONT, "B", 18)
    pdf.set_text_color(*DARK)
    pdf.set_x(MARGIN)
    pdf.cell(pdf.get_string_width(level) + 4, 8, level)
    pdf.set_font(FONT, "", 9)
    approach = "bipedicular" if len(needles) == 2 else "unipedicular" if needles else ""
    pdf.cell(pdf.get_string_width(approach) + 4, 8, approach)
    for t, status in zip(needles, statuses, strict=True):
        text = f" {t.side.value.capitalize()}: {_status_text(status)} "
        pdf.set_font(FONT, "B", 9)
        pdf.set_fill_color(*rgb(STATUS_COLORS[status]))
        pdf.set_text_color(*TEXT_ON_STATUS_RGB)
        pdf.cell(pdf.get_string_width(text) + 2, 6.5, text, fill=True, align="C")
        pdf.cell(2, 6.5, "")
    pdf.set_text_color(*DARK)
    pdf.ln(9.5)

    # the two slices, side by side
    y = pdf.get_y()
    if images is not None:
        for i, (png, caption) in enumerate(((images.axial_png, images.axial_caption),
                                            (images.sagittal_png, images.sagittal_caption))):
            x = MARGIN + i * (IMAGE_W + IMAGE_GAP)
            pdf.image(io.BytesIO(png), x=x, y=y, w=IMAGE_W, h=IMAGE_W)
            pdf.set_xy(x, y + IMAGE_W + 0.8)
            pdf.set_font(FONT, "", 7)
            pdf.set_text_color(*GREY)
            pdf.multi_cell(IMAGE_W, 3.2, caption, align="L")
        pdf.set_y(y + IMAGE_W + 8.5)
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
        _heading(pdf, "Reasons", 10.0, 2.0)
        for t in needles:
            _finding(pdf, t, results.get(t.key))


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
    per_needle = [_level_rows(t, results.get(t.key)) for t in needles]
    labels: list[str] = []
    for rows in per_needle:
        labels += [label for label, _ in rows if label not in labels]
    values = [dict(rows) for rows in per_needle]
    label_w = 30.0
    col_w = (width - label_w) / len(needles)
    _table_defaults(pdf, 7.2)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    heading_style = FontFace(emphasis="BOLD", color=DARK, fill_color=HEADING_FILL, size_pt=7.5)
    old_margin = pdf.l_margin
    pdf.set_left_margin(x)
    with pdf.table(col_widths=(label_w, *([col_w] * len(needles))), width=width,
                   text_align=("LEFT", *(["CENTER"] * len(needles))), line_height=3.4,
                   headings_style=heading_style, padding=(0.8, 1.0),
                   borders_layout="HORIZONTAL_LINES", align="LEFT") as table:
        row = table.row()
        row.cell("")
        for t in needles:
            row.cell(f"{t.level} {t.side.value}")
        row = table.row()
        row.cell("Status", style=FontFace(color=GREY))
        for t in needles:
            status = _status(results.get(t.key))
            row.cell(_status_text(status), style=FontFace(
                emphasis="BOLD", color=TEXT_ON_STATUS_RGB, fill_color=rgb(STATUS_COLORS[status])))
        for label in labels:
            row = table.row()
            row.cell(label, style=FontFace(color=GREY))
            for v in values:
                bold = label == "Canal clearance"
                row.cell(v.get(label, "—"), style=FontFace(emphasis="BOLD") if bold else None)
        notes = [t.note for t in needles]
        if any(notes):
            row = table.row()
            row.cell("Note", style=FontFace(color=GREY))
            for note in notes:
                row.cell(note or "—")
    pdf.set_left_margin(old_margin)


def _carm_page(pdf: _ReportPDF, plan: Plan, setup: FluoroSetup) -> None:
    """Every needle's C-arm working views on one page, for a report without fluoroscopy
    pages (which would give them level by level under the DRRs)."""
    pdf.add_page()
    _heading(pdf, f"C-arm working views (patient {setup.position})", 14.0, 0.0)
    views = [(f"{t.level} {t.side.value} {name}", v) for t in plan.trajectories
             for name, v in zip(("bull's-eye", "progression"),
                                working_views(t, setup.position).values(), strict=True)]
    _carm_table(pdf, views, setup)
    pdf.ln(1.5)
    pdf.set_font(FONT, "", 7.5)
    pdf.set_text_color(*DARK)
    for line in (carm_note(setup), VIEWS_NOTE):
        pdf.set_x(MARGIN)
        pdf.multi_cell(CONTENT_W, 3.5, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(0.8)


def _carm_table(pdf: FPDF, views: Sequence[tuple[str, CArmSetting]],
                setup: FluoroSetup) -> None:
    """C-arm views as rows: both conventions, each named in its column's heading (the one
    the suite's C-arm is registered in first), and the detector's position in words."""
    lead: Convention = setup.convention
    other = other_convention(lead)
    _table_defaults(pdf, 6.8)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    heading_style = FontFace(emphasis="BOLD", color=DARK, fill_color=HEADING_FILL, size_pt=6.5)
    with pdf.table(col_widths=(30, 28, 28, 104), width=CONTENT_W, line_height=2.9,
                   text_align=("LEFT", "CENTER", "CENTER", "LEFT"),
                   headings_style=heading_style, padding=(0.6, 1.0),
                   borders_layout="HORIZONTAL_LINES", align="LEFT") as table:
        row = table.row()
        for text in ("View", CONVENTION_NAMES[lead], CONVENTION_NAMES[other],
                     "Detector position (no convention needed)"):
            row.cell(text)
        for name, view in views:
            row = table.row()
            row.cell(name, style=FontFace(emphasis="BOLD"))
            row.cell(view.angles(lead).label(), style=FontFace(emphasis="BOLD"))
            row.cell(view.angles(other).label())
            row.cell(view.words)
    pdf.set_text_color(*DARK)


# ---- simulated fluoroscopy, one page per level ----------------------------------------
FLUORO_COLUMNS = 3  # AP + lateral, then each needle's bull's-eye + progression, in columns
FLUORO_W = 52.0  # three across, with room under them for the angles table and the notes
FLUORO_GAP = (CONTENT_W - FLUORO_COLUMNS * FLUORO_W) / (FLUORO_COLUMNS - 1)
FLUORO_CAPTION_H = 4.5  # one line: the title (AP and lateral: where the detector is)


def carm_summary(setup: FluoroSetup) -> str:
    """Two lines on what the angles mean and which convention leads (summary, level page)."""
    return (f"C-arm angles: patient {setup.position}, head first. {REGISTRATION_QUESTION} "
            f"{REGISTRATION_CHOICES[setup.convention]} (so these come first). DICOM, "
            "patient-referenced = PS3.3 C.8.7.5 Positioner Primary/Secondary Angles (0° = "
            "detector in front of the chest, +90° at the patient's left, ±180° behind the "
            "back, + secondary towards the head); on a C-arm registered head-first supine a "
            "prone patient's LAO/RAO are mirrored.")


def carm_note(setup: FluoroSetup) -> str:
    """What the C-arm angles of this report mean, and which convention leads (the user's
    answer to `REGISTRATION_QUESTION`), printed under every table of C-arm angles."""
    lead = setup.convention
    return (
        f"{REGISTRATION_QUESTION} {REGISTRATION_CHOICES[lead]} (so these come first). "
        "LAO/RAO: the patient's side the detector turns to; CRAN/CAUD: towards the head/feet. "
        f"{CONVENTION_NAMES['patient']} (\u201c{CONVENTION_TAGS['patient']}\u201d under the "
        "images): DICOM PS3.3 C.8.7.5 Positioner Primary/Secondary Angles, 0° = detector in "
        "front of the chest, +90° at the patient's left, ±180° behind the back. "
        f"{CONVENTION_NAMES['table']} (\u201c{CONVENTION_TAGS['table']}\u201d): for a prone "
        "patient its LAO/RAO are mirrored; for a supine patient both are the same."
    )


VIEWS_NOTE = ("Bull's-eye: the beam runs along the needle (a ring round a dot). Progression: "
              "the beam is perpendicular to the needle, nearest to lateral, to watch the tip "
              "advance.")
FLUORO_NOTES = (
    f"{VIEWS_NOTE} Seen from the detector, as on the C-arm monitor; edge letters: L left, "
    "R right, A anterior, P posterior, S head, I feet. Scale bars are true at the isocentre "
    "(the level) only. "
    "Needle shadows in their status colours. Simulated from the CT at about 2 mm: an aid to "
    "check the plan on the C-arm, not a substitute for live fluoroscopy.",
)


def _fluoro_images(
    plan: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    volume: Volume,
    setup: FluoroSetup,
    attenuation: AttenuationVolume | None,
    progress: Progress,
) -> dict[str, list[FluoroImage]]:
    """Per level, the DRRs of `plan_views` of its needles (AP and lateral centred on them)."""
    views = {level: plan_views([t for t in plan.trajectories if t.level == level],
                               setup=setup)
             for level in plan.levels}
    total = 1 + sum(len(v) for v in views.values())
    progress.report(0, total, "Simulated fluoroscopy: preparing the CT")
    att = attenuation or AttenuationVolume.from_volume(volume)
    done = 1
    out: dict[str, list[FluoroImage]] = {}
    for level, level_views in views.items():
        needles = [t for t in plan.trajectories if t.level == level]
        out[level] = []
        for view in level_views:
            progress.report(done, total, f"Simulated fluoroscopy of {level}: {view.title}")
            out[level].append(fluoro_image(att, view, needles, results,
                                           position=setup.position))
            done += 1
    progress.report(total, total, "Simulated fluoroscopy done")
    return out


def _fluoro_page(
    pdf: _ReportPDF, level: str, images: Sequence[FluoroImage], setup: FluoroSetup
) -> None:
    """The level's DRRs in columns (AP over lateral, then each needle's bull's-eye over its
    progression view), each captioned with its C-arm angles, then the geometry."""
    pdf.add_page()
    pdf.set_font(FONT, "B", 18)
    pdf.set_text_color(*DARK)
    pdf.set_x(MARGIN)
    pdf.cell(pdf.get_string_width(level) + 4, 8, level)
    pdf.set_font(FONT, "B", 12)
    pdf.cell(CONTENT_W - pdf.get_string_width(level) - 4, 8, "Simulated fluoroscopy (DRR)",
             new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    magnification = setup.source_to_detector_mm / setup.source_to_patient_mm
    geometry = (
        f"Cone-beam projection of the CT (bone-weighted attenuation). Source–detector "
        f"{setup.source_to_detector_mm:.0f} mm, source–isocentre "
        f"{setup.source_to_patient_mm:.0f} mm (magnification ×{magnification:.2f}); field "
        f"{setup.detector_mm:.0f} mm at the detector for AP and lateral, "
        f"{WORKING_DETECTOR_MM:.0f} mm for the working views. Patient {setup.position}, "
        "head first; AP and lateral centred on the level's needles, working views on the "
        "needle."
    )
    pdf.set_font(FONT, "", 7.8)
    pdf.set_x(MARGIN)
    pdf.multi_cell(CONTENT_W, 3.6, geometry, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(2.0)

    columns = [images[i:i + 2] for i in range(0, len(images), 2)]
    for band in range(0, len(columns), FLUORO_COLUMNS):
        top = pdf.get_y()
        for c, column in enumerate(columns[band:band + FLUORO_COLUMNS]):
            x = MARGIN + c * (FLUORO_W + FLUORO_GAP)
            for r, image in enumerate(column):
                y = top + r * (FLUORO_W + FLUORO_CAPTION_H)
                pdf.image(io.BytesIO(image.png), x=x, y=y, w=FLUORO_W, h=FLUORO_W)
                pdf.set_xy(x, y + FLUORO_W + 0.8)
                pdf.set_font(FONT, "", 6.6)
                pdf.set_text_color(*DARK)
                v = image.view
                caption = v.caption_lines[0]
                if v.trajectory is None:  # AP and lateral: not in the table, words here
                    caption = f"{v.title}: {v.setting.words}"
                pdf.multi_cell(FLUORO_W, 2.8, caption, align="L")
        pdf.set_y(top + 2 * (FLUORO_W + FLUORO_CAPTION_H))

    views = [(image.view.title.replace(f"{level} — ", ""), image.view.setting)
             for image in images if image.view.trajectory is not None]
    _carm_table(pdf, views, setup)
    pdf.ln(1.0)
    pdf.set_text_color(*DARK)
    pdf.set_font(FONT, "", 7)
    for line in (carm_note(setup), *FLUORO_NOTES):
        pdf.set_x(MARGIN)
        pdf.multi_cell(CONTENT_W, 3.2, line, align="L", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(0.6)
