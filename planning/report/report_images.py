"""Still images of one planned level for the PDF report: an axial and a sagittal CT slice
with the level's needles drawn in their status colours (pure numpy and Pillow).

Why the axial slice is tilted: a vertebroplasty needle usually points a little caudally
(5–20°), so a true axial slice cuts it and shows only a stub. The axial image is therefore
the oblique axial plane that contains the needles' mean direction and the patient's
left–right axis: the plane a surgeon reformats to follow the pedicles. Its tilt is given in
the caption and the orientation letters are computed from the plane's LPS directions, so
they stay right on any scan. The sagittal slice is a true sagittal plane through the
needles' mean left–right position; both needles are projected onto it.

Screen conventions are those of `planning.reslice`: radiological (the patient's right on
the image's left in the axial view; anterior on the left and the head up in the sagittal
view). Every point is placed in LPS millimetres first, so the pictures are right for any
affine (flipped, oblique).

Images are drawn at twice their size and reduced, so lines and text are smooth.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from planning.anatomy.model import Anatomy
from planning.carm import PatientPosition
from planning.checks import CheckResult, Status
from planning.drr import AttenuationVolume, DrrGeometry, render_drr, to_display
from planning.errors import VertebroPlanError
from planning.fluoro_views import FluoroView, ProjectedNeedle, edge_letters, project_needles
from planning.mask_reslice import reslice_labels
from planning.plan import Plan, Side, Trajectory, validate_level
from planning.reslice import SAGITTAL, SliceGeometry, ViewPlane, orientation_letters, reslice
from planning.vocabulary import (
    BONE_WINDOW_HU,
    CANAL_COLOR,
    STATUS_COLORS,
    format_number,
    rgb,
)
from planning.volume import FloatArray, Volume

DRAW_ORDER: tuple[Status | None, ...] = (Status.SAFE, None, Status.CAUTION, Status.UNSAFE)

FIELD_OF_VIEW_MM = 90.0
IMAGE_PX = 500
SUPERSAMPLE = 2  # drawn at this multiple of IMAGE_PX, then reduced (smooth lines and text)
MAX_TILT_DEG = 40.0  # beyond this an "axial" slice would be closer to coronal
VIEW_MARGIN_MM = 8.0  # needle ends stay at least this far inside the image
SCALE_BAR_MM = (10.0, 20.0, 50.0)  # the longest of these that fits a quarter of the width
NEEDLE_BODY_ALPHA = 95  # on a slice the bone shows through the needle's body

_BUNDLE_DIR = getattr(sys, "_MEIPASS", None)  # set inside the PyInstaller bundle
FONT_DIRS = (
    *([Path(_BUNDLE_DIR) / "fonts"] if _BUNDLE_DIR else []),  # packaging/vertebroplan.spec
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu: fonts-dejavu-core
    Path("/usr/share/fonts/dejavu"),  # Fedora, Arch
    Path("/usr/share/fonts/TTF"),
    Path("/Library/Fonts"),
    Path("C:/Windows/Fonts"),
)


class ReportError(VertebroPlanError, ValueError):
    """The report cannot be made from what it was given (e.g. a level with nothing to show)."""


class ReportFileError(VertebroPlanError, OSError):
    """A file the report needs (a font) or writes (the PDF) cannot be read or written."""


def dejavu_font_path(bold: bool = False) -> Path:
    """DejaVu Sans (regular or bold): it has every symbol the report prints (— ° ≤ − ✔ ⚠).

    Raises `ReportFileError` naming the package to install when the font is missing.
    """
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    for folder in FONT_DIRS:
        if (folder / name).is_file():
            return folder / name
    raise ReportFileError(
        f"the font {name} was not found in {', '.join(str(d) for d in FONT_DIRS)}; "
        "install DejaVu Sans (Debian/Ubuntu: apt-get install fonts-dejavu-core)"
    )


def needle_label(trajectory: Trajectory, result: CheckResult | None) -> str:
    """"L1 L 3.2 mm": level, the patient's side and the canal clearance, as drawn."""
    text = f"{trajectory.level} {trajectory.side.letter}"
    if result is not None:
        text += f" {format_number(result.canal_clearance_mm)} mm"
    return text


@dataclass(frozen=True)
class LevelImages:
    """The report's pictures of one level: PNG bytes and what the PDF writes under them.

    ``*_geometry`` say where each pixel of the PNG lies in the patient (LPS mm) and
    ``*_letters`` the orientation letters drawn at the image edges (keys "left", "right",
    "top", "bottom"), so a caller or a test can find any point in the picture.
    """

    axial_png: bytes
    sagittal_png: bytes
    level: str = ""
    axial_caption: str = ""
    sagittal_caption: str = ""
    axial_geometry: SliceGeometry | None = None
    sagittal_geometry: SliceGeometry | None = None
    axial_letters: Mapping[str, str] = field(default_factory=dict)
    sagittal_letters: Mapping[str, str] = field(default_factory=dict)


def level_images(
    volume: Volume,
    plan: Plan,
    results: Mapping[tuple[str, Side], CheckResult],
    anatomy: Anatomy | None,
    level: str,
    *,
    size_px: int = IMAGE_PX,
    field_of_view_mm: float = FIELD_OF_VIEW_MM,
) -> LevelImages:
    """Axial (oblique, in the needles' plane) and sagittal slices of ``level`` with its needles.

    Parameters
    ----------
    volume
        The CT the plan was made on.
    plan, results
        The needles of ``level`` are drawn in the colour of their check result (grey when a
        needle has none) and labelled with level, side and canal clearance.
    anatomy
        When given, the spinal canal is outlined; without needles the slices go through
        its vertebra's centroid.
    level
        The vertebral level ("L1").
    size_px, field_of_view_mm
        Side of the square images in pixels and in mm; the field grows when the needles
        would not fit.

    Raises
    ------
    ReportError
        When the level has neither needles in the plan nor a vertebra in the anatomy.
    """
    level = validate_level(level)
    needles = [t for t in plan.trajectories if t.level == level]
    if not needles and (anatomy is None or level not in anatomy.levels):
        raise ReportError(f"{level} has no needle in the plan and no vertebra in the anatomy")
    if needles:
        ends = np.array([p for t in needles for p in (t.entry, t.target)])
        centre_lps = ends.mean(axis=0)
    else:
        assert anatomy is not None
        ends = np.zeros((0, 3))
        centre_lps = anatomy.levels[level].centroid_lps.astype(np.float64)

    axial, tilt_deg = oblique_axial_plane(needles)
    sag_centre = centre_lps.copy()
    images: dict[str, tuple[bytes, SliceGeometry, dict[str, str]]] = {}
    for name, plane, centre in (("axial", axial, centre_lps), ("sagittal", SAGITTAL, sag_centre)):
        fov = _field_of_view_mm(plane, centre, ends, field_of_view_mm)
        geometry = SliceGeometry(plane, centre, size_px, size_px, fov / size_px)
        letters = orientation_letters(plane)
        png = _render(volume, geometry, needles, results, anatomy, letters,
                      f"{level} {name}")
        images[name] = (png, geometry, letters)

    if not needles:
        axial_caption = "Axial, through the vertebra's centroid"
    elif tilt_deg < 0.5:
        axial_caption = "Axial, in the plane of the needles"
    else:
        axial_caption = (f"Oblique axial in the plane of the needles "
                         f"(tilted {tilt_deg:.0f}° from true axial)")
    axial_caption += "; seen from the feet: the patient's right on the left"
    if needles:
        sagittal_caption = ("Sagittal through the needles' mean left–right position; both "
                            "needles projected onto it, as on a lateral fluoroscopy view")
    else:
        sagittal_caption = "Sagittal, through the vertebra's centroid"
    return LevelImages(
        axial_png=images["axial"][0],
        sagittal_png=images["sagittal"][0],
        level=level,
        axial_caption=axial_caption,
        sagittal_caption=sagittal_caption,
        axial_geometry=images["axial"][1],
        sagittal_geometry=images["sagittal"][1],
        axial_letters=images["axial"][2],
        sagittal_letters=images["sagittal"][2],
    )


# ---- simulated fluoroscopy ----------------------------------------------------------------
FLUORO_DRR_PX = 448
"""Side of a report DRR in pixels. At the default C-arm set-up the renderer then traces
every 2nd (AP, lateral) or 3rd (working views) ray, ~0.2–0.3 s a view on 2 cores; 384 px
traces every ray of the AP and lateral and costs three times as much (see `render_drr`)."""
FLUORO_TEXT_SCALE = 1.25
"""Text and marks are this much larger than on the slices: three DRRs share the page's width."""
FLUORO_NEEDLE_ALPHA = 255  # metal is opaque on a radiograph: the needle's shadow is solid
FLUORO_VIEW_NAMES: Mapping[str, str] = {
    "ap": "AP", "lateral": "Lateral", "bulls_eye": "Bull's-eye", "progression": "Progression",
}


@dataclass(frozen=True, eq=False)
class FluoroImage:
    """One simulated fluoroscopy view (DRR) with the needles, as the report prints it.

    The PNG's pixels are the DRR's: pixel ``(x, y)`` of the PNG is pixel ``(x, y)`` of
    ``view.geometry``, so ``needles`` (what `project_needles` gave, as drawn) and
    `planning.drr.project_points` locate anything in the picture. ``letters`` are the
    patient directions printed at the edges and ``isocentre_pixel_mm`` the size of a pixel
    at the isocentre (the scale bar's reference).
    """

    png: bytes
    view: FluoroView
    caption: str
    letters: Mapping[str, str]
    needles: tuple[ProjectedNeedle, ...]
    position: PatientPosition
    isocentre_pixel_mm: float


def fluoro_image(
    attenuation: AttenuationVolume,
    view: FluoroView,
    trajectories: Sequence[Trajectory],
    results: Mapping[tuple[str, Side], CheckResult],
    *,
    position: PatientPosition = "prone",
) -> FluoroImage:
    """The DRR of one view with the needles' shadows, letters, angles and a scale bar.

    Parameters
    ----------
    attenuation
        The CT as attenuation (`AttenuationVolume.from_volume`): built once, used for every
        view of the report.
    view
        The C-arm view (`planning.fluoro_views`); its geometry sets the image's size.
    trajectories, results
        The needles to draw, in the colour of their check result (grey without one) and
        labelled "L2 L"; a needle seen end-on (its bull's-eye view) is a ring round a dot.
    position
        How the patient lies, as the views were made for (stated in the picture and the
        caption: the C-arm angles mean nothing without it).
    """
    g = view.geometry
    s = float(SUPERSAMPLE)
    big_size = (g.width_px * SUPERSAMPLE, g.height_px * SUPERSAMPLE)
    drr = render_drr(attenuation, g)
    grey = to_display(drr, window=fluoro_window(drr))
    base = Image.fromarray(grey, mode="L").resize(big_size, Image.Resampling.BICUBIC)
    base = base.convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    t = s * FLUORO_TEXT_SCALE  # canvas pixels per nominal pixel, for text and marks
    letters = edge_letters(g)
    taken = _draw_letters(draw, letters, *big_size, t)
    pad = 8 * t
    taken += _draw_texts(draw, [
        ((pad, pad), FLUORO_VIEW_NAMES.get(view.kind, view.title), _font(14 * t), "lt"),
        *(((pad, pad + (19 + 16 * n) * t), line, _font(12 * t, bold=False), "lt")
          for n, line in enumerate(view.setting.tags(view.convention))),
        ((pad, big_size[1] - pad), f"Patient {position}", _font(12 * t, bold=False), "lb"),
    ], t, backing=True)
    iso_pixel_mm = g.pixel_mm / view.magnification
    taken.append(_draw_scale_bar(draw, iso_pixel_mm / s, *big_size, t, "at isocentre"))

    projected = project_needles(view, trajectories)
    def on_canvas(xy: tuple[float, float]) -> FloatArray:  # pixel centres at integers
        return (np.asarray(xy, dtype=np.float64) + 0.5) * s - 0.5

    # labelled "L2 L" only: a canal clearance means nothing on a projection
    drawn = [_PixelNeedle(p.trajectory, results.get(p.trajectory.key), on_canvas(p.entry_px),
                          on_canvas(p.tip_px), max(p.radius_px * s, 1.5 * s),
                          _depth_mm(g, p.trajectory), needle_label(p.trajectory, None))
             for p in projected]
    _draw_needles(draw, drawn, big_size, taken, t, FLUORO_NEEDLE_ALPHA)
    return FluoroImage(
        png=_png(base, overlay, (g.width_px, g.height_px)),
        view=view,
        caption="\n".join(view.caption_lines),
        letters=letters,
        needles=tuple(projected),
        position=position,
        isocentre_pixel_mm=iso_pixel_mm,
    )


def fluoro_images(
    attenuation: AttenuationVolume,
    trajectories: Sequence[Trajectory],
    results: Mapping[tuple[str, Side], CheckResult],
    views: Sequence[FluoroView],
    *,
    position: PatientPosition = "prone",
) -> list[FluoroImage]:
    """`fluoro_image` of each view, in order (e.g. `planning.fluoro_views.plan_views`)."""
    return [fluoro_image(attenuation, v, trajectories, results, position=position)
            for v in views]


def fluoro_window(drr: NDArray[np.float32]) -> tuple[float, float]:
    """The (white, black) line integrals the report shows a DRR with: the 1st and 99.5th
    percentiles of the rays through the patient.

    Why not `to_display`'s default (white = no attenuation): every ray of a 20 cm working
    view crosses the whole trunk, and bone adds only ~15 % to a ray's integral, so the
    picture came out uniformly dark with the vertebrae barely visible. Spreading the grey
    over the rays actually in the view does what a C-arm's automatic brightness and
    contrast do; where air is in the field the low end stays near 0 as before.
    """
    hit = drr[drr > 1e-6]
    if not hit.size:
        return (0.0, 1.0)
    low, high = (float(v) for v in np.percentile(hit, [1.0, 99.5]))
    return (low, high) if high > low else (0.0, max(high, 1e-6))


def _depth_mm(geometry: DrrGeometry, t: Trajectory) -> float:
    """How far the needle's middle is from the source along the beam: the needle nearer the
    detector (the viewer's side) is drawn on top of one further away."""
    return float(((t.entry + t.target) / 2 - geometry.source_lps) @ geometry.normal_lps)


def oblique_axial_plane(needles: Sequence[Trajectory]) -> tuple[ViewPlane, float]:
    """The axial view plane tilted about the left–right axis to contain the needles' mean
    direction, and its tilt from true axial in degrees (at most `MAX_TILT_DEG`).

    Screen-right stays the patient's left (+x), as in every axial view; screen-down is the
    needles' direction reversed (from the tip back towards the entry: posterior).
    """
    right = np.array([1.0, 0.0, 0.0])
    down = np.array([0.0, 1.0, 0.0])
    if needles:
        mean = np.mean([t.direction for t in needles], axis=0)
        back = -np.array([0.0, mean[1], mean[2]])  # the y–z part, pointing back (posterior)
        if back[1] > 1e-6:  # the needles point anteriorly, as they do from a posterior entry
            tilt = math.atan2(back[2], back[1])
            tilt = max(-math.radians(MAX_TILT_DEG), min(math.radians(MAX_TILT_DEG), tilt))
            down = np.array([0.0, math.cos(tilt), math.sin(tilt)])
    tilt_deg = math.degrees(math.acos(max(-1.0, min(1.0, float(down[1])))))
    return ViewPlane("Axial", right, down), tilt_deg


def _field_of_view_mm(
    plane: ViewPlane, centre_lps: FloatArray, ends_lps: FloatArray, minimum_mm: float
) -> float:
    """The smallest square field ≥ ``minimum_mm`` that shows every needle end with a margin."""
    if not len(ends_lps):
        return minimum_mm
    d = ends_lps - centre_lps
    reach = max(float(np.abs(d @ plane.right_lps).max()), float(np.abs(d @ plane.down_lps).max()))
    return max(minimum_mm, 2.0 * (reach + VIEW_MARGIN_MM))


def window_to_grey(hu: NDArray[np.float32], width: float, level: float) -> NDArray[np.uint8]:
    """HU → 0–255 grey for a window (width, level)."""
    lo = level - width / 2.0
    grey = (hu.astype(np.float32) - lo) * (255.0 / width)
    return np.asarray(np.clip(grey, 0.0, 255.0), dtype=np.uint8)


def _font(px: float, bold: bool = True) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(dejavu_font_path(bold)), max(1, round(px)))


def _render(
    volume: Volume,
    geometry: SliceGeometry,
    needles: Sequence[Trajectory],
    results: Mapping[tuple[str, Side], CheckResult],
    anatomy: Anatomy | None,
    letters: Mapping[str, str],
    title: str,
) -> bytes:
    """One slice with its overlays, drawn at `SUPERSAMPLE` × and reduced to a PNG."""
    s = SUPERSAMPLE
    big = SliceGeometry(geometry.plane, geometry.center_lps, geometry.width_px * s,
                        geometry.height_px * s, geometry.pixel_mm / s)
    grey = window_to_grey(reslice(volume, big), *BONE_WINDOW_HU)
    base = Image.fromarray(grey, mode="L").convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    if anatomy is not None:
        _draw_canal(draw, anatomy, big)
    taken: list[tuple[float, float, float, float]] = []  # label boxes, not to overlap
    taken += _draw_letters(draw, letters, big.width_px, big.height_px, s)
    taken += _draw_corner_text(draw, title, big, s)
    # the nearer one on top among needles of equal status (see _needle_order)
    drawn = [_PixelNeedle(t, results.get(t.key), big.lps_to_pixel(t.entry),
                          big.lps_to_pixel(t.target), t.radius_mm / big.pixel_mm,
                          -big.distance_to_plane_mm((t.entry + t.target) / 2),
                          needle_label(t, results.get(t.key)))
             for t in needles]
    _draw_needles(draw, drawn, (big.width_px, big.height_px), taken, s, NEEDLE_BODY_ALPHA)
    return _png(base, overlay, (geometry.width_px, geometry.height_px))


def _png(base: Image.Image, overlay: Image.Image, size_px: tuple[int, int]) -> bytes:
    """The overlay on the picture, reduced from the supersampled canvas, as PNG bytes."""
    image = Image.alpha_composite(base, overlay).convert("RGB")
    image = image.resize(size_px, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass(frozen=True)
class _PixelNeedle:
    """A needle as drawn on one canvas: its ends and radius in canvas pixels.

    ``depth`` breaks ties in the drawing order: the larger is drawn later, on top.
    """

    trajectory: Trajectory
    result: CheckResult | None
    entry_px: FloatArray
    tip_px: FloatArray
    radius_px: float
    depth: float
    label: str


def _draw_needles(
    draw: ImageDraw.ImageDraw, needles: Sequence[_PixelNeedle], size_px: tuple[int, int],
    taken: list[tuple[float, float, float, float]], s: float, body_alpha: int,
) -> None:
    """The needles, then their labels (so no needle hides a label).

    The worst status is drawn last, on top: where two needles project onto each other an
    unsafe one must not hide behind a safe one.
    """
    def order(n: _PixelNeedle) -> tuple[int, float]:
        return DRAW_ORDER.index(None if n.result is None else n.result.status), n.depth

    for n in sorted(needles, key=order):
        color = rgb(STATUS_COLORS[None if n.result is None else n.result.status])
        _draw_needle(draw, n.entry_px, n.tip_px, n.radius_px, color, s, body_alpha)
    for n in needles:
        _draw_label(draw, n.label, n, size_px, taken, s)


def _draw_canal(draw: ImageDraw.ImageDraw, anatomy: Anatomy, geometry: SliceGeometry) -> None:
    """The canal's cut edge, ~2 px wide after reduction."""
    mask = reslice_labels(anatomy.canal, anatomy.affine_lps, geometry).astype(bool)
    if not mask.any():
        return
    edge = mask & ~ndimage.binary_erosion(mask, iterations=2 * SUPERSAMPLE, border_value=0)
    draw.bitmap((0, 0), Image.fromarray(edge.astype(np.uint8) * 255, mode="L"),
                fill=(*rgb(CANAL_COLOR), 235))


def _draw_needle(
    draw: ImageDraw.ImageDraw, p0: FloatArray, p1: FloatArray, radius_px: float,
    color: tuple[int, int, int], s: float, body_alpha: int,
) -> None:
    """A needle from entry ``p0`` to tip ``p1`` (canvas pixels) at its true width: a body of
    opacity ``body_alpha`` (translucent on slices, so the bone shows through), solid edges,
    a ring at the entry and a dot at the tip. Seen end-on only the ring and the dot remain:
    a bull's-eye."""
    r = radius_px
    edge_w = max(2, round(1.2 * s))
    axis = p1 - p0
    length = float(np.hypot(*axis))
    if length > 1.0:
        u = axis / length
        n = np.array([-u[1], u[0]]) * r
        corners = [tuple(p) for p in (p0 + n, p1 + n, p1 - n, p0 - n)]
        draw.polygon(corners, fill=(*color, body_alpha))
        for a, b in ((p0 + n, p1 + n), (p0 - n, p1 - n)):
            draw.line([tuple(a), tuple(b)], fill=(*color, 255), width=edge_w)
        draw.line([tuple(p0), tuple(p1)], fill=(*color, 150), width=max(1, edge_w // 2))
    ring = r + 3.0 * s
    draw.ellipse([p0[0] - ring, p0[1] - ring, p0[0] + ring, p0[1] + ring],
                 outline=(255, 255, 255, 255), width=edge_w + 2)
    draw.ellipse([p0[0] - ring, p0[1] - ring, p0[0] + ring, p0[1] + ring],
                 outline=(*color, 255), width=edge_w)
    dot = max(r * 0.8, 3.0 * s)
    draw.ellipse([p1[0] - dot, p1[1] - dot, p1[0] + dot, p1[1] + dot],
                 fill=(*color, 255), outline=(20, 22, 26, 255), width=max(1, round(s)))


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _draw_label(
    draw: ImageDraw.ImageDraw, text: str, needle: _PixelNeedle, size_px: tuple[int, int],
    taken: list[tuple[float, float, float, float]], s: float,
) -> None:
    """``text`` beyond the entry (outside the bone), on a dark backing; moved along the
    image's rows until it overlaps no other label, letter or the image edge. A needle seen
    end-on is labelled below its dot."""
    color = rgb(STATUS_COLORS[None if needle.result is None else needle.result.status])
    font = _font(15 * s)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    w, h = x1 - x0 + 10 * s, y1 - y0 + 8 * s
    p0, p1 = needle.entry_px, needle.tip_px
    out = p0 - p1
    n = float(np.hypot(*out))
    out = out / n if n > 1.0 else np.array([0.0, 1.0])
    gap = needle.radius_px + 8.0 * s
    anchor = p0 + out * (gap + 0.5 * max(w * abs(out[0]), h * abs(out[1])))
    width, height = size_px
    margin = 4.0 * s
    best = None
    for step in range(40):
        dy = (step + 1) // 2 * (h + 2 * s) * (1 if step % 2 else -1)
        cx = min(max(anchor[0], w / 2 + margin), width - w / 2 - margin)
        cy = min(max(anchor[1] + dy, h / 2 + margin), height - h / 2 - margin)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if not any(_overlaps(box, other) for other in taken):
            best = box
            break
    if best is None:
        best = box
    taken.append(best)
    draw.rounded_rectangle(best, radius=4 * s, fill=(12, 14, 18, 200),
                           outline=(*color, 255), width=max(1, round(s)))
    draw.text(((best[0] + best[2]) / 2, (best[1] + best[3]) / 2), text, font=font,
              fill=(*color, 255), anchor="mm")


def _draw_letters(
    draw: ImageDraw.ImageDraw, letters: Mapping[str, str], width: int, height: int, s: float
) -> list[tuple[float, float, float, float]]:
    """Orientation letters at the middle of each edge; returns the boxes they occupy."""
    font = _font(22 * s)
    pad = 6 * s
    places = {
        "left": ((pad, height / 2), "lm"),
        "right": ((width - pad, height / 2), "rm"),
        "top": ((width / 2, pad), "mt"),
        "bottom": ((width / 2, height - pad), "mb"),
    }
    boxes = []
    for edge, (xy, anchor) in places.items():
        text = letters.get(edge, "")
        if not text:
            continue
        box = draw.textbbox(xy, text, font=font, anchor=anchor)
        draw.text(xy, text, font=font, anchor=anchor, fill=(255, 255, 255, 255),
                  stroke_width=2 * s, stroke_fill=(0, 0, 0, 255))
        boxes.append((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))
    return boxes


def _draw_corner_text(
    draw: ImageDraw.ImageDraw, title: str, geometry: SliceGeometry, s: float
) -> list[tuple[float, float, float, float]]:
    """Title (top left), window (bottom left) and a millimetre scale bar (bottom right)."""
    width, height = geometry.width_px, geometry.height_px
    pad = 8 * s
    boxes = _draw_texts(draw, [
        ((pad, pad), title, _font(14 * s), "lt"),
        ((pad, height - pad), f"W {BONE_WINDOW_HU[0]:.0f} / L {BONE_WINDOW_HU[1]:.0f}",
         _font(12 * s, bold=False), "lb"),
    ], s)
    boxes.append(_draw_scale_bar(draw, geometry.pixel_mm, width, height, s))
    return boxes


def _draw_texts(
    draw: ImageDraw.ImageDraw,
    items: Sequence[tuple[tuple[float, float], str, ImageFont.FreeTypeFont, str]], s: float,
    backing: bool = False,
) -> list[tuple[float, float, float, float]]:
    """Light text with a dark outline, each ``(xy, text, font, anchor)``; returns the boxes.

    ``backing`` puts each on a dark box: on a radiograph air is white, and outlined light
    text over white reads as hollow letters.
    """
    boxes = []
    for xy, text, font, anchor in items:
        box = draw.textbbox(xy, text, font=font, anchor=anchor)
        if backing:
            m = 3 * s
            draw.rounded_rectangle((box[0] - m, box[1] - m, box[2] + m, box[3] + m),
                                   radius=3 * s, fill=(15, 17, 20, 200))
        draw.text(xy, text, font=font, anchor=anchor, fill=(235, 238, 242, 255),
                  stroke_width=max(1, round(s)), stroke_fill=(0, 0, 0, 255))
        boxes.append((box[0] - s, box[1] - s, box[2] + s, box[3] + s))
    return boxes


def _draw_scale_bar(
    draw: ImageDraw.ImageDraw, pixel_mm: float, width: int, height: int, s: float,
    note: str = "",
) -> tuple[float, float, float, float]:
    """A millimetre bar at the bottom right, the longest of `SCALE_BAR_MM` that fits a
    quarter of the width, labelled "20 mm" (+ ``note``); returns the box it occupies."""
    pad = 8 * s
    small = _font(12 * s, bold=False)
    fov_mm = pixel_mm * width
    bar_mm = max((b for b in SCALE_BAR_MM if b <= fov_mm / 4), default=SCALE_BAR_MM[0])
    bar_px = bar_mm / pixel_mm
    x1, y = width - pad, height - pad - 2 * s
    x0 = x1 - bar_px
    tick = 5 * s
    for fill, w in (((0, 0, 0, 255), round(5 * s)), ((255, 255, 255, 255), round(2 * s))):
        draw.line([(x0, y), (x1, y)], fill=fill, width=w)
        draw.line([(x0, y - tick), (x0, y + w / 2)], fill=fill, width=w)
        draw.line([(x1, y - tick), (x1, y + w / 2)], fill=fill, width=w)
    label = f"{bar_mm:.0f} mm" + (f" {note}" if note else "")
    label_xy, anchor = ((x0 + x1) / 2, y - tick - 2 * s), "mb"
    box = draw.textbbox(label_xy, label, font=small, anchor=anchor)
    if box[2] > width - s:  # a long label: right-aligned with the bar instead of centred
        label_xy, anchor = (x1, y - tick - 2 * s), "rb"
        box = draw.textbbox(label_xy, label, font=small, anchor=anchor)
    draw.text(label_xy, label, font=small, anchor=anchor, fill=(235, 238, 242, 255),
              stroke_width=max(1, round(s)), stroke_fill=(0, 0, 0, 255))
    return (min(x0, box[0]) - s, box[1] - s, x1 + s, float(height))
