"""The PDF plan report a surgeon takes to the angio suite (fpdf2, DejaVu Sans).

Page 1 is the summary: one row per needle with its numbers and coloured status, the
reasons behind every verdict in words, the warnings, and the frame of reference the
coordinates belong to. Then one page per level: the axial and sagittal images
(`planning.report.report_images`), the 3-D picture when the caller has one, and the level's
numbers side by side for the left and right needle; each followed by the level's simulated
fluoroscopy page (unless the report asks for none): DRRs of the AP and lateral views and of
each needle's bull's-eye and progression views, with the needles' shadows and the C-arm angles
(`planning.fluoro_views`), because the needle is driven under the C-arm, not on CT slices.

Every page carries a header with the patient, the study, the planner, when and with which
version the report was made, and the disclaimer. ``deidentify`` leaves out everything that
names the patient or the study (name, ID, birth date, sex, accession number, study date,
descriptions, UIDs) and says "De-identified" instead.

What is printed comes in one validated value, `planning.report.model.PlanReport`: this
module only draws it.

Coordinates are DICOM patient LPS millimetres, printed with one decimal and a true minus
sign, exactly as `format_number` writes them.

This module writes the summary and puts the report together; a level's page is drawn in
`planning.report.pdf_level_page`, the C-arm and fluoroscopy pages in
`planning.report.pdf_fluoro`, the assessment in `planning.report.pdf_assessment`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos

from planning.checks import CheckResult, SafetyLimits, Status, grade_meaning
from planning.fluoro_views import FluoroSetup
from planning.plan import Plan, Side
from planning.progress import Progress, no_progress
from planning.report.model import PlanReport
from planning.report.page import (
    CONTENT_W,
    DARK,
    FONT,
    GREY,
    MARGIN,
    TEXT_ON_STATUS_RGB,
    ReportPage,
    created_text,
    describe_document,
    write_atomically,
)
from planning.report.pdf_assessment import level_card, levels_table
from planning.report.pdf_blocks import chip, heading, heading_row_style, table_style
from planning.report.pdf_fluoro import carm_page, carm_summary, fluoro_page, level_fluoro_images
from planning.report.pdf_level_page import bullet, finding, level_page, status_of, status_text
from planning.report.report_fluoro import FLUORO_DRR_PX, FluoroImage
from planning.vocabulary import (
    STATUS_COLORS,
    STATUS_SYMBOLS,
    STATUS_WORDS,
    format_dicom_date,
    format_lps,
    format_number,
    format_person_name,
    rgb,
)
from planning.volume import PatientInfo

TITLE = "Vertebroplasty plan"
DEIDENTIFIED = "De-identified"
LPS_NOTE = ("Coordinates are DICOM patient LPS millimetres: +x towards the patient's left, "
            "+y posterior, +z superior (head).")
ANGLE_NOTE = ("Angles, in the patient's frame: medial + = converging towards the midline; "
              "craniocaudal + = pointing caudally (towards the feet).")
STATUS_NOTE = ("Safe: every check within its limits. Caution: a margin is below its limit "
               "(see the reasons). Unsafe: the needle enters the canal, breaches the medial "
               "pedicle wall, leaves the vertebral body, crosses an endplate or disc, comes "
               f"within {SafetyLimits().vessel_min_mm:g} mm of a contrast-filled vessel, runs "
               "into metal (a screw, rod or wire, on its way in too), or the CT shows no bone "
               "around its tip (vessels, metal and bone are read from the image itself, not "
               "the anatomy).")


@dataclass(frozen=True)
class _Header:
    """What the header of every page says (already formatted, de-identified if asked)."""

    patient: list[tuple[str, str]]
    study: list[tuple[str, str]]
    planner: str
    created: str
    software: str


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
    return _Header(
        patient=patient_pairs,
        study=study_pairs,
        planner=planner,
        created=created_text(created),
        software=f"VertebroPlan {software_version}".strip(),
    )


def write_pdf_report(path: str | Path, report: PlanReport,
                     progress: Progress | None = None) -> Path:
    """Write ``report`` to ``path`` (atomically: a temporary file, then a rename).

    Parameters
    ----------
    path
        Where to write the PDF; its folder is created if needed.
    report
        What the report prints, already validated (`PlanReport`).
    progress
        Told before each DRR (they are the slow part) and polled for Cancel; a cancelled
        report raises `Cancelled` and writes nothing.

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
    plan, results, volume = report.plan, report.results, report.volume
    setup = replace(report.carm, size_px=FLUORO_DRR_PX)
    fluoro: dict[str, list[FluoroImage]] = {}
    if report.fluoroscopy is not None and plan.trajectories:
        fluoro = level_fluoro_images(plan, results, volume, setup,
                                     report.fluoroscopy.attenuation, progress or no_progress())
    header = _header_values(volume.patient, report.planner, report.software_version,
                            report.deidentify, report.created)
    pdf = _ReportPDF(header)
    describe_document(pdf, f"{TITLE}: {', '.join(plan.levels) or 'no levels'}",
                      header.software, report.planner, report.created)

    _summary_page(pdf, report, [*report.warnings, *_plan_warnings(report)], setup)
    if plan.trajectories and not fluoro:  # else each fluoroscopy page has its level's table
        carm_page(pdf, plan, setup)
    assessment = report.assessment
    for level in plan.levels:
        level_page(pdf, plan, results, level, report.images[level],
                   report.snapshots.get(level))

        if level in fluoro:
            fluoro_page(pdf, level, fluoro[level], setup)
        if assessment is not None and level in assessment:  # under the DRRs: room there
            pdf.ln(2.0)
            level_card(pdf, assessment[level], MARGIN, CONTENT_W)
    write_atomically(target, bytes(pdf.output()))
    return target


def _plan_warnings(report: PlanReport) -> list[str]:
    """Warnings the report adds by itself: a plan knowingly applied to another CT's frame
    of reference (`PlanReport` refuses one applied without the user's override), and
    needles not checked (placed by hand where the spine was not found)."""
    plan, out = report.plan, []
    if plan.frame_override is not None:
        out.append(
            "This plan was made on a CT with another frame of reference "
            f"({plan.frame_override.plan_frame_uid}) and applied to this one "
            f"({plan.frame_override.ct_frame_uid}): {plan.frame_override.reason}.")
    if report.unchecked:
        out.append(f"Not checked against the anatomy: {', '.join(report.unchecked)}.")
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


def _summary_page(
    pdf: _ReportPDF, report: PlanReport, warnings: Sequence[str], setup: FluoroSetup
) -> None:
    plan, results, volume = report.plan, report.results, report.volume
    assessment, limits = report.assessment, report.limits
    pdf.add_page()
    statuses = [status_of(results.get(t.key)) for t in plan.trajectories]
    heading(pdf, "Summary", 14.0, 0.0)
    _verdict_line(pdf, plan, statuses)
    if plan.trajectories:
        _summary_table(pdf, plan, results)
    else:
        pdf.set_font(FONT, "", 9)
        pdf.multi_cell(CONTENT_W, 5, "The plan has no needles.", align="L", new_x=XPos.LMARGIN)
    if assessment:
        heading(pdf, "Levels")
        levels_table(pdf, assessment, CONTENT_W)

    heading(pdf, "Findings")
    for t in plan.trajectories:
        finding(pdf, t, results.get(t.key))
    if warnings:
        heading(pdf, "Warnings")
        for text in warnings:
            bullet(pdf, "⚠", text, rgb(STATUS_COLORS[Status.CAUTION]), 8.5)

    heading(pdf, "Reference")
    pdf.set_font(FONT, "", 7.5)
    pdf.set_text_color(*DARK)
    if report.deidentify:
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
        carm_summary(setup),
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
        if count:
            chip(pdf, text, rgb(STATUS_COLORS[status]), height_mm=6.0)
        else:
            chip(pdf, text, (240, 242, 245), height_mm=6.0, color=GREY)
    pdf.set_text_color(*DARK)
    pdf.ln(8)


def _summary_table(
    pdf: FPDF, plan: Plan, results: Mapping[tuple[str, Side], CheckResult]
) -> None:
    table_style(pdf, 7.5)
    widths = tuple(w for _, w, _ in SUMMARY_COLUMNS)
    with pdf.table(col_widths=widths, width=CONTENT_W, text_align="CENTER", line_height=3.6,
                   headings_style=heading_row_style(7), padding=(1.0, 0.8),
                   borders_layout="HORIZONTAL_LINES", align="LEFT") as table:
        row = table.row()
        for name, _, _ in SUMMARY_COLUMNS:
            row.cell(name)
        for t in plan.trajectories:
            r = results.get(t.key)
            status = status_of(r)
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
            row.cell(status_text(status), style=FontFace(
                emphasis="BOLD", color=TEXT_ON_STATUS_RGB, fill_color=rgb(STATUS_COLORS[status])))
