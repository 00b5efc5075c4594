"""The trainee's report of one training attempt: a PDF to keep and to discuss (fpdf2).

Page 1 is the result: the case, the trainee, when, how long it took, the total score with
PASS or FAIL, one row per needle (errors against the reference, canal clearance and grade,
points, result), the reasons in words, and the rubric the score was made with. Then one page
per level: an oblique axial slice in the plane of the reference needles and a sagittal
slice (as a lateral fluoroscopy view), each with the trainee's needles drawn solid in the
colour of their check and the reference needles dashed white, orientation letters and a
scale bar, and the level's numbers beside each other for the left and right needle.

A trainee report is teaching material: it names the patient only when asked
(``show_patient``). The look (fonts, colours, disclaimer band, atomic write) is the plan
report's (`planning.report.pdf`, `planning.report.report_images`), imported, so both
reports read alike.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from fpdf import FPDF, FontFace
from fpdf.enums import XPos, YPos
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from planning.anatomy.model import Anatomy
from planning.checks import CheckResult, Status, grade_meaning
from planning.mask_reslice import reslice_labels
from planning.plan import Plan, Side, Trajectory, level_index
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
    fit_text,
    write_atomically,
)
from planning.report.report_images import (
    FIELD_OF_VIEW_MM,
    IMAGE_PX,
    SCALE_BAR_MM,
    SUPERSAMPLE,
    VIEW_MARGIN_MM,
    dejavu_font_path,
    oblique_axial_plane,
    window_to_grey,
)
from planning.reslice import SAGITTAL, SliceGeometry, ViewPlane, orientation_letters, reslice
from planning.training import (
    NeedleScore,
    Rubric,
    TrainingCase,
    TrainingScore,
    format_duration,
)
from planning.vocabulary import (
    BONE_WINDOW_HU,
    CANAL_COLOR,
    DISCLAIMER,
    STATUS_COLORS,
    STATUS_SYMBOLS,
    STATUS_WORDS,
    format_lps,
    format_number,
    format_person_name,
    rgb,
)
from planning.volume import FloatArray, Volume

TITLE = "Vertebroplasty training report"
PASS_COLOR = STATUS_COLORS[Status.SAFE]
FAIL_COLOR = STATUS_COLORS[Status.UNSAFE]
EXTRA_COLOR = STATUS_COLORS[None]
REFERENCE_RGB = (255, 255, 255)
REFERENCE_DASH_PX = (9, 6)  # dash and gap of the reference needle, in output pixels
LEGEND_YOU = "you"
LEGEND_REFERENCE = "reference"


# ---- images --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ComparisonImages:
    """One level's pictures with the trainee's and the reference needles (PNG bytes).

    ``*_geometry`` say where each pixel lies in the patient (LPS mm), so a test can find a
    needle's pixels; ``*_letters`` are the orientation letters at the image edges.
    """

    level: str
    axial_png: bytes
    sagittal_png: bytes
    axial_caption: str
    sagittal_caption: str
    axial_geometry: SliceGeometry
    sagittal_geometry: SliceGeometry
    axial_letters: Mapping[str, str] = field(default_factory=dict)
    sagittal_letters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NeedleLook:
    """How a trainee's needle is drawn: the colour of its check and its canal clearance."""

    status: Status | None
    clearance_mm: float | None = None

    @classmethod
    def of(cls, result: CheckResult | None) -> NeedleLook:
        if result is None:
            return cls(None)
        return cls(result.status, result.canal_clearance_mm)


def needle_looks(
    score: TrainingScore, results: Mapping[tuple[str, Side], CheckResult] | None = None
) -> dict[tuple[str, Side], NeedleLook]:
    """Each attempt needle's look: from ``results`` when given, else from what the score
    recorded of its check (the same numbers)."""
    looks = {n.attempt.key: NeedleLook(n.status, n.clearance_mm)
             for n in (*score.needles, *score.extra) if n.attempt is not None}
    for key, result in (results or {}).items():
        looks[key] = NeedleLook.of(result)
    return looks


def comparison_images(
    volume: Volume,
    attempt: Plan,
    reference: Plan,
    looks: Mapping[tuple[str, Side], NeedleLook],
    anatomy: Anatomy | None,
    level: str,
    *,
    size_px: int = IMAGE_PX,
    field_of_view_mm: float = FIELD_OF_VIEW_MM,
) -> ComparisonImages:
    """The oblique axial and the sagittal slice of ``level`` with both sets of needles.

    The axial plane is the one the reference needles lie in (as in the plan report), so the
    reference shows at full length and a trainee's needle out of that plane shows shorter;
    both are projected onto it. Every point is placed in LPS mm, so the pictures are right
    for any scan orientation; the patient's right is on the image's left.
    """
    ref = [t for t in reference.trajectories if t.level == level]
    mine = [t for t in attempt.trajectories if t.level == level]
    if not ref and not mine:
        raise ValueError(f"{level}: neither the attempt nor the reference has a needle here")
    ends = np.array([p for t in (*ref, *mine) for p in (t.entry, t.target)])
    centre = ends.mean(axis=0)
    axial, tilt_deg = oblique_axial_plane(ref or mine)
    pictures: dict[str, tuple[bytes, SliceGeometry, dict[str, str]]] = {}
    for name, plane in (("axial", axial), ("sagittal", SAGITTAL)):
        fov = _field_of_view_mm(plane, centre, ends, field_of_view_mm)
        geometry = SliceGeometry(plane, centre, size_px, size_px, fov / size_px)
        letters = orientation_letters(plane)
        png = _render(volume, geometry, ref, mine, looks, anatomy, letters, f"{level} {name}")
        pictures[name] = (png, geometry, letters)
    axial_caption = ("Axial, in the plane of the reference needles" if tilt_deg < 0.5 else
                     f"Oblique axial in the plane of the reference needles (tilted "
                     f"{tilt_deg:.0f}° from true axial)")
    axial_caption += "; seen from the feet: the patient's right on the left"
    sagittal_caption = ("Sagittal through the needles' mean left–right position, every needle "
                        "projected onto it, as on a lateral fluoroscopy view")
    return ComparisonImages(
        level=level,
        axial_png=pictures["axial"][0],
        sagittal_png=pictures["sagittal"][0],
        axial_caption=axial_caption,
        sagittal_caption=sagittal_caption,
        axial_geometry=pictures["axial"][1],
        sagittal_geometry=pictures["sagittal"][1],
        axial_letters=pictures["axial"][2],
        sagittal_letters=pictures["sagittal"][2],
    )


def _field_of_view_mm(plane: ViewPlane, centre_lps: FloatArray, ends_lps: FloatArray,
                      minimum_mm: float) -> float:
    """The smallest square field ≥ ``minimum_mm`` that shows every needle end with a margin."""
    d = ends_lps - centre_lps
    reach = max(float(np.abs(d @ plane.right_lps).max()), float(np.abs(d @ plane.down_lps).max()))
    return max(minimum_mm, 2.0 * (reach + VIEW_MARGIN_MM))


def _font(px: int, bold: bool = True) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(dejavu_font_path(bold)), px)


def _render(
    volume: Volume,
    geometry: SliceGeometry,
    reference: Sequence[Trajectory],
    attempt: Sequence[Trajectory],
    looks: Mapping[tuple[str, Side], NeedleLook],
    anatomy: Anatomy | None,
    letters: Mapping[str, str],
    title: str,
) -> bytes:
    """One slice: CT in the bone window, the canal's outline, the reference needles dashed
    white, the trainee's solid in their status colour on top; drawn at `SUPERSAMPLE` × and
    reduced, so thin lines and text stay smooth."""
    s = SUPERSAMPLE
    big = SliceGeometry(geometry.plane, geometry.center_lps, geometry.width_px * s,
                        geometry.height_px * s, geometry.pixel_mm / s)
    grey = window_to_grey(reslice(volume, big), *BONE_WINDOW_HU)
    base = Image.fromarray(grey, mode="L").convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    if anatomy is not None:
        mask = reslice_labels(anatomy.canal, anatomy.affine_lps, big).astype(bool)
        if mask.any():
            edge = mask & ~ndimage.binary_erosion(mask, iterations=2 * s, border_value=0)
            draw.bitmap((0, 0), Image.fromarray(edge.astype(np.uint8) * 255, mode="L"),
                        fill=(*rgb(CANAL_COLOR), 235))
    for t in attempt:
        _draw_attempt_needle(draw, t, looks.get(t.key, NeedleLook(None)), big)
    for t in reference:  # on top, as an outline: the trainee's needle shows through it
        _draw_reference_needle(draw, t, big)
    taken = _draw_frame(draw, big, letters, title)
    for t in attempt:
        _draw_label(draw, t, looks.get(t.key, NeedleLook(None)), big, taken)
    image = Image.alpha_composite(base, overlay).convert("RGB")
    image = image.resize((geometry.width_px, geometry.height_px), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _needle_outline(t: Trajectory, geometry: SliceGeometry
                    ) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    """Entry and tip pixels, the needle's half-width as a pixel vector normal to it, and
    its radius in pixels."""
    p0 = geometry.lps_to_pixel(t.entry)
    p1 = geometry.lps_to_pixel(t.target)
    r = t.radius_mm / geometry.pixel_mm
    axis = p1 - p0
    length = float(np.hypot(*axis))
    u = axis / length if length > 1.0 else np.array([0.0, 1.0])
    return p0, p1, np.array([-u[1], u[0]]) * r, r


def _draw_attempt_needle(draw: ImageDraw.ImageDraw, t: Trajectory, look: NeedleLook,
                         geometry: SliceGeometry) -> None:
    """The trainee's needle at its true width, solid, in its status colour: a translucent
    body, solid edges, a ring at the entry and a dot at the tip (as in the plan report)."""
    s = SUPERSAMPLE
    color = rgb(STATUS_COLORS[look.status])
    p0, p1, n, r = _needle_outline(t, geometry)
    width = max(2, round(1.2 * s))
    draw.polygon([tuple(p) for p in (p0 + n, p1 + n, p1 - n, p0 - n)], fill=(*color, 110))
    for a, b in ((p0 + n, p1 + n), (p0 - n, p1 - n)):
        draw.line([tuple(a), tuple(b)], fill=(*color, 255), width=width)
    ring = r + 3.0 * s
    box = [p0[0] - ring, p0[1] - ring, p0[0] + ring, p0[1] + ring]
    draw.ellipse(box, outline=(20, 22, 26, 255), width=width + 2)
    draw.ellipse(box, outline=(*color, 255), width=width)
    dot = max(r * 0.8, 3.0 * s)
    draw.ellipse([p1[0] - dot, p1[1] - dot, p1[0] + dot, p1[1] + dot],
                 fill=(*color, 255), outline=(20, 22, 26, 255), width=s)


def _dashed(draw: ImageDraw.ImageDraw, a: FloatArray, b: FloatArray,
            fill: tuple[int, int, int, int], width: int) -> None:
    """A dashed segment a→b (`REFERENCE_DASH_PX`, scaled to the supersampled image)."""
    dash, gap = (v * SUPERSAMPLE for v in REFERENCE_DASH_PX)
    length = float(np.hypot(*(b - a)))
    if length < 1.0:
        return
    u = (b - a) / length
    pos = 0.0
    while pos < length:
        end = min(pos + dash, length)
        draw.line([tuple(a + u * pos), tuple(a + u * end)], fill=fill, width=width)
        pos = end + gap


def _draw_reference_needle(draw: ImageDraw.ImageDraw, t: Trajectory,
                           geometry: SliceGeometry) -> None:
    """The reference needle as a dashed white outline of its true width with a dark rim
    (readable on bone and on soft tissue alike), a hollow ring at the entry and a hollow
    circle at the tip: it never hides the trainee's needle under it."""
    s = SUPERSAMPLE
    p0, p1, n, r = _needle_outline(t, geometry)
    for fill, width in (((0, 0, 0, 230), 4 * s), ((*REFERENCE_RGB, 255), 2 * s)):
        for a, b in ((p0 + n, p1 + n), (p0 - n, p1 - n)):
            _dashed(draw, a, b, fill, width)
    ring = r + 3.0 * s
    tip = max(r * 0.8, 3.0 * s) + 2.0 * s
    for centre, radius in ((p0, ring), (p1, tip)):
        box = [centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius]
        draw.ellipse(box, outline=(0, 0, 0, 230), width=4 * s)
        draw.ellipse(box, outline=(*REFERENCE_RGB, 255), width=2 * s)


Box = tuple[float, float, float, float]


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _draw_label(draw: ImageDraw.ImageDraw, t: Trajectory, look: NeedleLook,
                geometry: SliceGeometry, taken: list[Box]) -> None:
    """"L1 L 3.2 mm" (level, side, canal clearance) beyond the trainee's entry, on a dark
    backing, moved along the rows until it overlaps nothing already drawn."""
    s = SUPERSAMPLE
    text = f"{t.level} {t.side.letter}"
    if look.clearance_mm is not None:
        text += f" {format_number(look.clearance_mm)} mm"
    color = rgb(STATUS_COLORS[look.status])
    font = _font(14 * s)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    w, h = x1 - x0 + 10 * s, y1 - y0 + 8 * s
    p0, p1, _, r = _needle_outline(t, geometry)
    out = p0 - p1
    norm = float(np.hypot(*out))
    out = out / norm if norm > 1.0 else np.array([0.0, 1.0])
    anchor = p0 + out * (r + 10.0 * s + 0.5 * max(w * abs(out[0]), h * abs(out[1])))
    margin = 4.0 * s
    box: Box = (0.0, 0.0, 0.0, 0.0)
    for step in range(40):
        dy = (step + 1) // 2 * (h + 2 * s) * (1 if step % 2 else -1)
        cx = min(max(anchor[0], w / 2 + margin), geometry.width_px - w / 2 - margin)
        cy = min(max(anchor[1] + dy, h / 2 + margin), geometry.height_px - h / 2 - margin)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if not any(_overlaps(box, other) for other in taken):
            break
    taken.append(box)
    draw.rounded_rectangle(box, radius=4 * s, fill=(12, 14, 18, 205), outline=(*color, 255),
                           width=s)
    draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), text, font=font,
              fill=(*color, 255), anchor="mm")


def _draw_frame(draw: ImageDraw.ImageDraw, geometry: SliceGeometry,
                letters: Mapping[str, str], title: str) -> list[Box]:
    """Orientation letters at the edges, the title (top left), the legend (top right) and a
    millimetre scale bar (bottom right); returns the boxes they occupy."""
    s = SUPERSAMPLE
    width, height = geometry.width_px, geometry.height_px
    pad = 8 * s
    boxes: list[Box] = []
    white, black = (255, 255, 255, 255), (0, 0, 0, 255)
    letter_font = _font(22 * s)
    places = {"left": ((pad, height / 2), "lm"), "right": ((width - pad, height / 2), "rm"),
              "top": ((width / 2, pad), "mt"), "bottom": ((width / 2, height - pad), "mb")}
    for edge, (xy, anchor) in places.items():
        text = letters.get(edge, "")
        if text:
            b = draw.textbbox(xy, text, font=letter_font, anchor=anchor)
            draw.text(xy, text, font=letter_font, anchor=anchor, fill=white,
                      stroke_width=2 * s, stroke_fill=black)
            boxes.append((b[0] - pad, b[1] - pad, b[2] + pad, b[3] + pad))
    title_font, small = _font(14 * s), _font(12 * s, bold=False)
    b = draw.textbbox((pad, pad), title, font=title_font, anchor="lt")
    draw.text((pad, pad), title, font=title_font, anchor="lt", fill=white, stroke_width=s,
              stroke_fill=black)
    boxes.append((b[0] - s, b[1] - s, b[2] + s, b[3] + s))
    boxes.append(_draw_legend(draw, width - pad, pad, small))
    # scale bar: the longest of SCALE_BAR_MM that fits a quarter of the width
    bar_mm = max((v for v in SCALE_BAR_MM if v <= geometry.pixel_mm * width / 4),
                 default=SCALE_BAR_MM[0])
    x1, y = width - pad, height - pad - 2 * s
    x0 = x1 - bar_mm / geometry.pixel_mm
    tick = 5 * s
    for fill, w in ((black, 5 * s), (white, 2 * s)):
        draw.line([(x0, y), (x1, y)], fill=fill, width=w)
        draw.line([(x0, y - tick), (x0, y + w / 2)], fill=fill, width=w)
        draw.line([(x1, y - tick), (x1, y + w / 2)], fill=fill, width=w)
    label_xy = ((x0 + x1) / 2, y - tick - 2 * s)
    b = draw.textbbox(label_xy, f"{bar_mm:.0f} mm", font=small, anchor="mb")
    draw.text(label_xy, f"{bar_mm:.0f} mm", font=small, anchor="mb", fill=white,
              stroke_width=s, stroke_fill=black)
    boxes.append((min(x0, b[0]) - s, b[1] - s, x1 + s, height))
    return boxes


def _draw_legend(draw: ImageDraw.ImageDraw, right: float, top: float,
                 font: ImageFont.FreeTypeFont) -> Box:
    """A two-line key in the top right corner: solid = you, dashed white = reference."""
    s = SUPERSAMPLE
    sample = 26 * s
    line_h = 18 * s
    text_w = max(draw.textlength(t, font=font) for t in (LEGEND_YOU, LEGEND_REFERENCE))
    w = sample + 8 * s + text_w + 12 * s
    box = (right - w, top, right, top + 2 * line_h + 8 * s)
    draw.rounded_rectangle(box, radius=4 * s, fill=(12, 14, 18, 200))
    x = box[0] + 6 * s
    y_you = top + 4 * s + line_h / 2
    y_ref = y_you + line_h
    you = rgb(STATUS_COLORS[Status.SAFE])
    draw.line([(x, y_you), (x + sample, y_you)], fill=(*you, 255), width=4 * s)
    _dashed(draw, np.array([x, y_ref]), np.array([x + sample, y_ref]), (0, 0, 0, 230), 4 * s)
    _dashed(draw, np.array([x, y_ref]), np.array([x + sample, y_ref]),
            (*REFERENCE_RGB, 255), 2 * s)
    for y, text in ((y_you, LEGEND_YOU), (y_ref, LEGEND_REFERENCE)):
        draw.text((x + sample + 8 * s, y), text, font=font, anchor="lm",
                  fill=(235, 238, 242, 255))
    return box


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


def write_trainee_report(
    path: str | Path,
    *,
    case: TrainingCase,
    score: TrainingScore,
    volume: Volume,
    anatomy: Anatomy | None,
    trainee_name: str = "",
    attempt: Plan,
    reference: Plan,
    results: Mapping[tuple[str, Side], CheckResult] | None = None,
    progress: Progress | None = None,
    show_patient: bool = False,
    software_version: str = "",
    created: datetime | None = None,
) -> Path:
    """Write the trainee's report of one attempt to ``path`` (atomically).

    Parameters
    ----------
    path
        The PDF to write; its folder is created if needed.
    case, score
        The case attempted and the attempt's score (`planning.training.score_attempt`).
    volume, anatomy
        The case's CT (the images) and the anatomy the needles were checked on (the canal's
        outline; None leaves it out).
    trainee_name
        Printed in every page's header ("—" when empty).
    attempt, reference
        The trainee's plan and the case's reference plan (LPS mm).
    results
        The check of each attempt needle, which colours and labels the trainee's needles;
        default: what the score recorded of those checks.
    progress
        Reports one step per level picture; may raise `planning.errors.Cancelled`.
    show_patient
        Print the CT's patient name and ID in the header. Off by default: a trainee report
        is teaching material and should name nobody.
    software_version
        "VertebroPlan 0.1.0" in the header.
    created
        The time printed in the header (default: now, local time).

    Raises
    ------
    ReportFileError
        The file cannot be written or the font is missing.
    """
    progress = progress or no_progress()
    target = Path(path)
    when = (created or datetime.now()).astimezone()
    offset = when.strftime("%z")
    zone = f" UTC{offset[:3]}:{offset[3:]}" if offset else ""
    created_text = when.strftime("%Y-%m-%d %H:%M") + zone
    pairs = [("Trainee", trainee_name.strip() or "—"), ("Created", created_text)]
    if show_patient:
        patient = volume.patient
        pairs.append(("Patient", format_person_name(patient.name) or "—"))
        pairs.append(("ID", patient.patient_id or "—"))
    pairs.append(("Case", case.title))
    software = f"VertebroPlan {software_version}".strip()
    pdf = _TraineePDF(pairs, software)
    pdf.set_title(f"{TITLE}: {case.title}")
    pdf.set_creator(software)
    pdf.set_producer(software)
    if trainee_name.strip():
        pdf.set_author(trainee_name.strip())
    pdf.set_subject(DISCLAIMER)
    pdf.set_creation_date(when)

    looks = needle_looks(score, results)
    levels = sorted({t.level for t in (*reference.trajectories, *attempt.trajectories)},
                    key=level_index)
    _result_page(pdf, case, score, trainee_name, created_text)
    for n, level in enumerate(levels):
        progress.report(n, len(levels), f"Report: {level}")
        images = comparison_images(volume, attempt, reference, looks, anatomy, level)
        _level_page(pdf, score, level, images)
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


def _heading(pdf: FPDF, text: str, size: float = 11.0, gap_mm: float = 3.0) -> None:
    pdf.ln(gap_mm)
    pdf.set_x(MARGIN)
    pdf.set_font(FONT, "B", size)
    pdf.set_text_color(*DARK)
    pdf.cell(CONTENT_W, size * 0.55, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(1.0)


def _paragraph(pdf: FPDF, text: str, size: float = 8.5, color: tuple[int, int, int] = DARK,
               indent: float = 0.0) -> None:
    pdf.set_x(MARGIN + indent)
    pdf.set_font(FONT, "", size)
    pdf.set_text_color(*color)
    pdf.multi_cell(CONTENT_W - indent, size * 0.48, text, align="L", new_x=XPos.LMARGIN,
                   new_y=YPos.NEXT)


def _result_page(pdf: _TraineePDF, case: TrainingCase, score: TrainingScore,
                 trainee_name: str, created_text: str) -> None:
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
    _verdict_box(pdf, score, trainee_name, created_text)
    _heading(pdf, "Needle by needle", 11.0, 3.0)
    _score_table(pdf, score)
    _heading(pdf, "Why", 11.0, 3.0)
    for n in (*score.needles, *score.extra):
        _needle_reasons(pdf, n)
    _heading(pdf, "How the score is made", 11.0, 3.0)
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


def _verdict_box(pdf: FPDF, score: TrainingScore, trainee_name: str, created_text: str
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
                     f"{created_text}")
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
    pdf.set_font(FONT, "", 7.8)
    pdf.set_text_color(*DARK)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    heading = FontFace(emphasis="BOLD", color=DARK, fill_color=HEADING_FILL, size_pt=7)
    with pdf.table(col_widths=tuple(w for _, w in SCORE_COLUMNS), width=CONTENT_W,
                   text_align="CENTER", line_height=3.8, headings_style=heading,
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
IMAGE_GAP = CONTENT_W - 2 * IMAGE_W


def _level_page(pdf: _TraineePDF, score: TrainingScore, level: str,
                images: ComparisonImages) -> None:
    pdf.add_page()
    needles = [n for n in (*score.needles, *score.extra) if n.level == level]
    pdf.set_font(FONT, "B", 18)
    pdf.set_text_color(*DARK)
    pdf.set_x(MARGIN)
    pdf.cell(pdf.get_string_width(level) + 5, 8, level)
    for n in needles:
        text, color = _result_style(n)
        points = "" if n.is_extra else (f": {format_number(n.points)}/"
                                        f"{format_number(n.max_points, 0)}")
        chip = f" {n.side.value.capitalize()}{points}  {text} "
        pdf.set_font(FONT, "B", 9)
        pdf.set_fill_color(*color)
        pdf.set_text_color(*TEXT_ON_STATUS_RGB)
        pdf.cell(pdf.get_string_width(chip) + 2, 6.5, chip, fill=True, align="C")
        pdf.cell(2, 6.5, "")
    pdf.set_text_color(*DARK)
    pdf.ln(9.5)

    y = pdf.get_y()
    for i, (png, caption) in enumerate(((images.axial_png, images.axial_caption),
                                        (images.sagittal_png, images.sagittal_caption))):
        x = MARGIN + i * (IMAGE_W + IMAGE_GAP)
        pdf.image(io.BytesIO(png), x=x, y=y, w=IMAGE_W, h=IMAGE_W)
        pdf.set_xy(x, y + IMAGE_W + 0.8)
        pdf.set_font(FONT, "", 7)
        pdf.set_text_color(*GREY)
        pdf.multi_cell(IMAGE_W, 3.2, caption, align="L")
    pdf.set_y(y + IMAGE_W + 8.0)
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
    per_needle = [_level_rows(n, rubric) for n in needles]
    labels: list[str] = []
    for rows in per_needle:
        labels += [label for label, _ in rows if label not in labels]
    values = [dict(rows) for rows in per_needle]
    label_w = 42.0
    col_w = (CONTENT_W - label_w) / max(1, len(needles))
    pdf.set_font(FONT, "", 7.5)
    pdf.set_text_color(*DARK)
    pdf.set_fill_color(255, 255, 255)
    pdf.set_draw_color(*RULE)
    pdf.set_line_width(0.2)
    heading = FontFace(emphasis="BOLD", color=DARK, fill_color=HEADING_FILL, size_pt=7.5)
    with pdf.table(col_widths=(label_w, *([col_w] * len(needles))), width=CONTENT_W,
                   text_align=("LEFT", *(["CENTER"] * len(needles))), line_height=3.6,
                   headings_style=heading, padding=(0.8, 1.0),
                   borders_layout="HORIZONTAL_LINES", align="LEFT") as table:
        row = table.row()
        row.cell("")
        for n in needles:
            row.cell(n.label + (" (extra)" if n.is_extra else ""))
        for label in labels:
            row = table.row()
            row.cell(label, style=FontFace(color=GREY))
            for v in values:
                bold = label in ("Points", "Canal clearance")
                row.cell(v.get(label, "—"), style=FontFace(emphasis="BOLD") if bold else None)
