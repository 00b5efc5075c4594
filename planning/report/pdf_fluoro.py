"""The plan report's C-arm pages: after each level's page its simulated fluoroscopy (DRRs of
the AP and lateral views and of each needle's bull's-eye and progression views, captioned
with their C-arm angles), or, without fluoroscopy, one page of every needle's C-arm working
views.

Why in the report: the needle is driven under the C-arm, not on CT slices; the angles are
printed in both conventions (`planning.carm`), the one the suite's C-arm is registered in
first, because a prone patient's LAO/RAO are mirrored on a C-arm registered supine.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

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
from planning.checks import CheckResult
from planning.drr import AttenuationVolume
from planning.fluoro_views import WORKING_DETECTOR_MM, FluoroSetup, plan_views
from planning.plan import Plan, Side
from planning.progress import Progress
from planning.report.page import CONTENT_W, DARK, FONT, MARGIN
from planning.report.pdf_blocks import heading, heading_row_style, level_title, table_style
from planning.report.report_fluoro import FluoroImage, fluoro_image
from planning.volume import Volume

FLUORO_COLUMNS = 3  # AP + lateral, then each needle's bull's-eye + progression, in columns
FLUORO_W = 52.0  # three across, with room under them for the angles table and the notes
FLUORO_GAP = (CONTENT_W - FLUORO_COLUMNS * FLUORO_W) / (FLUORO_COLUMNS - 1)
FLUORO_CAPTION_H = 4.5  # one line: the title (AP and lateral: where the detector is)


def carm_page(pdf: FPDF, plan: Plan, setup: FluoroSetup) -> None:
    """Every needle's C-arm working views on one page, for a report without fluoroscopy
    pages (which would give them level by level under the DRRs)."""
    pdf.add_page()
    heading(pdf, f"C-arm working views (patient {setup.position})", 14.0, 0.0)
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
    table_style(pdf, 6.8)
    with pdf.table(col_widths=(30, 28, 28, 104), width=CONTENT_W, line_height=2.9,
                   text_align=("LEFT", "CENTER", "CENTER", "LEFT"),
                   headings_style=heading_row_style(6.5), padding=(0.6, 1.0),
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


def level_fluoro_images(
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


def fluoro_page(
    pdf: FPDF, level: str, images: Sequence[FluoroImage], setup: FluoroSetup
) -> None:
    """The level's DRRs in columns (AP over lateral, then each needle's bull's-eye over its
    progression view), each captioned with its C-arm angles, then the geometry."""
    pdf.add_page()
    level_title(pdf, level, 4.0)
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
