"""The trainee report's pictures of one level: an oblique axial and a sagittal slice with the
trainee's needles drawn solid in the colour of their check and the reference needles dashed
white on top, so the two can be compared at a glance (pure numpy and Pillow).

Why apart from `planning.report.trainee_pdf`: these are images, tested pixel by pixel; the
slice, the canal's outline and the marks (letters, scale bar, labels) are the plan report's
(`planning.report.report_images`), so both reports' pictures read alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw, ImageFont

from planning.anatomy.model import Anatomy
from planning.checks import CheckResult, Status
from planning.plan import Plan, Side, Trajectory
from planning.report.model import LevelImages
from planning.report.report_images import (
    FIELD_OF_VIEW_MM,
    IMAGE_PX,
    SUPERSAMPLE,
    Box,
    LabelStyle,
    PixelNeedle,
    axial_and_sagittal,
    draw_label,
    draw_letters,
    draw_needle,
    draw_scale_bar,
    draw_texts,
    font,
    level_pictures,
    needle_label,
    oblique_axial_plane,
    slice_canvas,
)
from planning.reslice import SliceGeometry
from planning.training import TrainingScore
from planning.vocabulary import STATUS_COLORS, rgb
from planning.volume import FloatArray, Volume

REFERENCE_RGB = (255, 255, 255)
REFERENCE_DASH_PX = (9, 6)  # dash and gap of the reference needle, in output pixels
LEGEND_YOU = "you"
LEGEND_REFERENCE = "reference"
WHITE = (255, 255, 255, 255)
ATTEMPT_BODY_ALPHA = 110
ATTEMPT_RING_RIM = (20, 22, 26, 255)  # dark: the reference's white ring goes over it
LABEL_STYLE = LabelStyle(font_px=14.0, gap_px=10.0, backing_alpha=205)


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
) -> LevelImages:
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

    def render(geometry: SliceGeometry, letters: Mapping[str, str], title: str) -> bytes:
        return _render(volume, geometry, ref, mine, looks, anatomy, letters, title)

    pictures = axial_and_sagittal(axial, centre, ends, level, render,
                                  size_px=size_px, field_of_view_mm=field_of_view_mm)
    axial_caption = ("Axial, in the plane of the reference needles" if tilt_deg < 0.5 else
                     f"Oblique axial in the plane of the reference needles (tilted "
                     f"{tilt_deg:.0f}° from true axial)")
    axial_caption += "; seen from the feet: the patient's right on the left"
    sagittal_caption = ("Sagittal through the needles' mean left–right position, every needle "
                        "projected onto it, as on a lateral fluoroscopy view")
    return level_pictures(level, pictures, axial_caption, sagittal_caption)


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
    canvas = slice_canvas(volume, geometry, anatomy)
    big, draw = canvas.geometry, canvas.draw
    mine = [_attempt_needle(t, looks.get(t.key, NeedleLook(None)), big) for t in attempt]
    for n in mine:
        draw_needle(draw, n.entry_px, n.tip_px, n.radius_px, rgb(STATUS_COLORS[n.status]), s,
                    ATTEMPT_BODY_ALPHA, axis_line=False, ring_rim=ATTEMPT_RING_RIM)
    for t in reference:  # on top, as an outline: the trainee's needle shows through it
        _draw_reference_needle(draw, t, big)
    taken = _draw_frame(draw, big, letters, title)
    for n in mine:
        draw_label(draw, n, (big.width_px, big.height_px), taken, s, LABEL_STYLE)
    return canvas.png()


def _attempt_needle(t: Trajectory, look: NeedleLook, geometry: SliceGeometry) -> PixelNeedle:
    """The trainee's needle on the canvas, labelled "L1 L 3.2 mm" (level, side, canal
    clearance)."""
    return PixelNeedle(t, look.status, geometry.lps_to_pixel(t.entry),
                       geometry.lps_to_pixel(t.target), t.radius_mm / geometry.pixel_mm, 0.0,
                       needle_label(t, look.clearance_mm))


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
    p0 = geometry.lps_to_pixel(t.entry)
    p1 = geometry.lps_to_pixel(t.target)
    r = t.radius_mm / geometry.pixel_mm
    axis = p1 - p0
    length = float(np.hypot(*axis))
    u = axis / length if length > 1.0 else np.array([0.0, 1.0])
    n = np.array([-u[1], u[0]]) * r
    for fill, width in (((0, 0, 0, 230), 4 * s), ((*REFERENCE_RGB, 255), 2 * s)):
        for a, b in ((p0 + n, p1 + n), (p0 - n, p1 - n)):
            _dashed(draw, a, b, fill, width)
    ring = r + 3.0 * s
    tip = max(r * 0.8, 3.0 * s) + 2.0 * s
    for centre, radius in ((p0, ring), (p1, tip)):
        box = [centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius]
        draw.ellipse(box, outline=(0, 0, 0, 230), width=4 * s)
        draw.ellipse(box, outline=(*REFERENCE_RGB, 255), width=2 * s)


def _draw_frame(draw: ImageDraw.ImageDraw, geometry: SliceGeometry,
                letters: Mapping[str, str], title: str) -> list[Box]:
    """Orientation letters at the edges, the title (top left), the legend (top right) and a
    millimetre scale bar (bottom right); returns the boxes they occupy."""
    s = SUPERSAMPLE
    width, height = geometry.width_px, geometry.height_px
    pad = 8 * s
    boxes = draw_letters(draw, letters, width, height, s, pad_px=8.0)
    boxes += draw_texts(draw, [((pad, pad), title, font(14 * s), "lt")], s, fill=WHITE)
    boxes.append(_draw_legend(draw, width - pad, pad, font(12 * s, bold=False)))
    boxes.append(draw_scale_bar(draw, geometry.pixel_mm, width, height, s, fill=WHITE))
    return boxes


def _draw_legend(draw: ImageDraw.ImageDraw, right: float, top: float,
                 legend_font: ImageFont.FreeTypeFont) -> Box:
    """A two-line key in the top right corner: solid = you, dashed white = reference."""
    s = SUPERSAMPLE
    sample = 26 * s
    line_h = 18 * s
    text_w = max(draw.textlength(t, font=legend_font) for t in (LEGEND_YOU, LEGEND_REFERENCE))
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
        draw.text((x + sample + 8 * s, y), text, font=legend_font, anchor="lm",
                  fill=(235, 238, 242, 255))
    return box
