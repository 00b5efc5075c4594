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

The slice renderer (`slice_canvas`) and the marks drawn on it (needles, labels, orientation
letters, scale bar) are here once for every picture the reports print: these slices, the
simulated fluoroscopy (`planning.report.report_fluoro`) and the trainee's slices
(`planning.report.trainee_images`), so all of them read alike.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from planning.anatomy.model import Anatomy
from planning.checks import CheckResult, Status
from planning.errors import VertebroPlanError
from planning.mask_reslice import reslice_labels
from planning.plan import Plan, Side, Trajectory, validate_level
from planning.report.model import LevelImages
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


def needle_label(trajectory: Trajectory, clearance_mm: float | None) -> str:
    """"L1 L 3.2 mm": level, the patient's side and the canal clearance (when known), as
    drawn."""
    text = f"{trajectory.level} {trajectory.side.letter}"
    if clearance_mm is not None:
        text += f" {format_number(clearance_mm)} mm"
    return text


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

    def render(geometry: SliceGeometry, letters: Mapping[str, str], title: str) -> bytes:
        return _render(volume, geometry, needles, results, anatomy, letters, title)

    images = axial_and_sagittal(axial, centre_lps, ends, level, render,
                                size_px=size_px, field_of_view_mm=field_of_view_mm)

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
    return level_pictures(level, images, axial_caption, sagittal_caption)


@dataclass(frozen=True)
class SlicePicture:
    """One drawn slice: PNG bytes, where each of its pixels lies in the patient (LPS mm)
    and the orientation letters at its edges."""

    png: bytes
    geometry: SliceGeometry
    letters: dict[str, str]


SliceRenderer = Callable[[SliceGeometry, Mapping[str, str], str], bytes]
"""Draws one slice as PNG bytes, given its geometry, its edge letters and its title."""


def axial_and_sagittal(axial: ViewPlane, centre_lps: FloatArray, ends_lps: FloatArray,
                       level: str, render: SliceRenderer, *, size_px: int,
                       field_of_view_mm: float) -> dict[str, SlicePicture]:
    """The two pictures every report prints of a level, keyed "axial" and "sagittal": the
    slices of ``axial`` and of the true sagittal plane through ``centre_lps``, each wide
    enough to show every needle end (`fitted_slice`), titled "L1 axial" / "L1 sagittal"."""
    pictures: dict[str, SlicePicture] = {}
    for name, plane in (("axial", axial), ("sagittal", SAGITTAL)):
        # a copy each, so the two pictures' geometries never share an array
        geometry = fitted_slice(plane, centre_lps.copy(), ends_lps, size_px, field_of_view_mm)
        letters = orientation_letters(plane)
        pictures[name] = SlicePicture(render(geometry, letters, f"{level} {name}"),
                                      geometry, letters)
    return pictures


def level_pictures(level: str, pictures: Mapping[str, SlicePicture], axial_caption: str,
                   sagittal_caption: str) -> LevelImages:
    """The two pictures of `axial_and_sagittal` with their captions, as the reports print
    them (the plan report's and the trainee report's alike)."""
    axial, sagittal = pictures["axial"], pictures["sagittal"]
    return LevelImages(
        axial_png=axial.png,
        sagittal_png=sagittal.png,
        level=level,
        axial_caption=axial_caption,
        sagittal_caption=sagittal_caption,
        axial_geometry=axial.geometry,
        sagittal_geometry=sagittal.geometry,
        axial_letters=axial.letters,
        sagittal_letters=sagittal.letters,
    )


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


def fitted_slice(plane: ViewPlane, centre_lps: FloatArray, ends_lps: FloatArray,
                 size_px: int, minimum_mm: float) -> SliceGeometry:
    """The square slice of ``plane`` through ``centre_lps``, ``size_px`` wide: the smallest
    field ≥ ``minimum_mm`` that shows every needle end with a margin."""
    field_mm = minimum_mm
    if len(ends_lps):
        d = ends_lps - centre_lps
        reach = max(float(np.abs(d @ plane.right_lps).max()),
                    float(np.abs(d @ plane.down_lps).max()))
        field_mm = max(minimum_mm, 2.0 * (reach + VIEW_MARGIN_MM))
    return SliceGeometry(plane, centre_lps, size_px, size_px, field_mm / size_px)


def window_to_grey(hu: NDArray[np.float32], width: float, level: float) -> NDArray[np.uint8]:
    """HU → 0–255 grey for a window (width, level)."""
    lo = level - width / 2.0
    grey = (hu.astype(np.float32) - lo) * (255.0 / width)
    return np.asarray(np.clip(grey, 0.0, 255.0), dtype=np.uint8)


def font(px: float, bold: bool = True) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``px`` canvas pixels (rounded, at least 1)."""
    return ImageFont.truetype(str(dejavu_font_path(bold)), max(1, round(px)))


# ---- the slice renderer both reports use ----------------------------------------------------
@dataclass(frozen=True)
class SliceCanvas:
    """A CT slice in the bone window at `SUPERSAMPLE` × its size with the canal's outline,
    and a transparent overlay to draw the marks on; `png` reduces both to the slice's size.

    ``geometry`` is the supersampled one: it places LPS points on the canvas.
    """

    geometry: SliceGeometry
    size_px: tuple[int, int]
    base: Image.Image
    overlay: Image.Image
    draw: ImageDraw.ImageDraw

    def png(self) -> bytes:
        return to_png(self.base, self.overlay, self.size_px)


def slice_canvas(volume: Volume, geometry: SliceGeometry, anatomy: Anatomy | None
                 ) -> SliceCanvas:
    """The canvas of one slice (``geometry`` at its output size); the canal is outlined when
    ``anatomy`` is given."""
    s = SUPERSAMPLE
    big = SliceGeometry(geometry.plane, geometry.center_lps, geometry.width_px * s,
                        geometry.height_px * s, geometry.pixel_mm / s)
    grey = window_to_grey(reslice(volume, big), *BONE_WINDOW_HU)
    base = Image.fromarray(grey, mode="L").convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    if anatomy is not None:
        draw_canal(draw, anatomy, big)
    return SliceCanvas(big, (geometry.width_px, geometry.height_px), base, overlay, draw)


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
    canvas = slice_canvas(volume, geometry, anatomy)
    big, draw = canvas.geometry, canvas.draw
    taken: list[Box] = []  # label boxes, not to overlap
    taken += draw_letters(draw, letters, big.width_px, big.height_px, s)
    taken += _draw_corner_text(draw, title, big, s)
    # the nearer one on top among needles of equal status (see draw_needles)
    drawn = []
    for t in needles:
        r = results.get(t.key)
        drawn.append(PixelNeedle(
            t, None if r is None else r.status, big.lps_to_pixel(t.entry),
            big.lps_to_pixel(t.target), t.radius_mm / big.pixel_mm,
            -big.distance_to_plane_mm((t.entry + t.target) / 2),
            needle_label(t, None if r is None else r.canal_clearance_mm)))
    draw_needles(draw, drawn, (big.width_px, big.height_px), taken, s, NEEDLE_BODY_ALPHA)
    return canvas.png()


def to_png(base: Image.Image, overlay: Image.Image, size_px: tuple[int, int]) -> bytes:
    """The overlay on the picture, reduced from the supersampled canvas, as PNG bytes."""
    image = Image.alpha_composite(base, overlay).convert("RGB")
    image = image.resize(size_px, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# ---- the marks every report picture shares (slices, DRRs, the trainee's slices) ------------
Box = tuple[float, float, float, float]
WHITE = (255, 255, 255, 255)
TEXT_FILL = (235, 238, 242, 255)


@dataclass(frozen=True)
class PixelNeedle:
    """A needle as drawn on one canvas: its ends and radius in canvas pixels, the status
    that colours it (None: not checked) and its label.

    ``depth`` breaks ties in the drawing order: the larger is drawn later, on top.
    """

    trajectory: Trajectory
    status: Status | None
    entry_px: FloatArray
    tip_px: FloatArray
    radius_px: float
    depth: float
    label: str


@dataclass(frozen=True)
class LabelStyle:
    """How a needle's label is set: font size, gap beyond the needle's edge (nominal
    pixels, scaled by the canvas) and the opacity of its dark backing."""

    font_px: float = 15.0
    gap_px: float = 8.0
    backing_alpha: int = 200


def draw_needles(
    draw: ImageDraw.ImageDraw, needles: Sequence[PixelNeedle], size_px: tuple[int, int],
    taken: list[Box], s: float, body_alpha: int,
) -> None:
    """The needles, then their labels (so no needle hides a label).

    The worst status is drawn last, on top: where two needles project onto each other an
    unsafe one must not hide behind a safe one.
    """
    def order(n: PixelNeedle) -> tuple[int, float]:
        return DRAW_ORDER.index(n.status), n.depth

    for n in sorted(needles, key=order):
        draw_needle(draw, n.entry_px, n.tip_px, n.radius_px, rgb(STATUS_COLORS[n.status]), s,
                    body_alpha)
    for n in needles:
        draw_label(draw, n, size_px, taken, s)


def draw_canal(draw: ImageDraw.ImageDraw, anatomy: Anatomy, geometry: SliceGeometry) -> None:
    """The canal's cut edge, ~2 px wide after reduction."""
    mask = reslice_labels(anatomy.canal, anatomy.affine_lps, geometry).astype(bool)
    if not mask.any():
        return
    edge = mask & ~ndimage.binary_erosion(mask, iterations=2 * SUPERSAMPLE, border_value=0)
    draw.bitmap((0, 0), Image.fromarray(edge.astype(np.uint8) * 255, mode="L"),
                fill=(*rgb(CANAL_COLOR), 235))


def draw_needle(
    draw: ImageDraw.ImageDraw, p0: FloatArray, p1: FloatArray, radius_px: float,
    color: tuple[int, int, int], s: float, body_alpha: int, *, axis_line: bool = True,
    ring_rim: tuple[int, int, int, int] = WHITE,
) -> None:
    """A needle from entry ``p0`` to tip ``p1`` (canvas pixels) at its true width: a body of
    opacity ``body_alpha`` (translucent on slices, so the bone shows through), solid edges,
    a thin line on its axis (``axis_line``), a ring at the entry rimmed in ``ring_rim`` and
    a dot at the tip. Seen end-on only the ring and the dot remain: a bull's-eye."""
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
        if axis_line:
            draw.line([tuple(p0), tuple(p1)], fill=(*color, 150), width=max(1, edge_w // 2))
    ring = r + 3.0 * s
    draw.ellipse([p0[0] - ring, p0[1] - ring, p0[0] + ring, p0[1] + ring],
                 outline=ring_rim, width=edge_w + 2)
    draw.ellipse([p0[0] - ring, p0[1] - ring, p0[0] + ring, p0[1] + ring],
                 outline=(*color, 255), width=edge_w)
    dot = max(r * 0.8, 3.0 * s)
    draw.ellipse([p1[0] - dot, p1[1] - dot, p1[0] + dot, p1[1] + dot],
                 fill=(*color, 255), outline=(20, 22, 26, 255), width=max(1, round(s)))


def overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_label(
    draw: ImageDraw.ImageDraw, needle: PixelNeedle, size_px: tuple[int, int],
    taken: list[Box], s: float, style: LabelStyle = LabelStyle(),
) -> None:
    """The needle's label beyond its entry (outside the bone), on a dark backing; moved
    along the image's rows until it overlaps no other label, letter or the image edge. A
    needle seen end-on is labelled below its dot."""
    text = needle.label
    color = rgb(STATUS_COLORS[needle.status])
    label_font = font(style.font_px * s)
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=label_font)
    w, h = x1 - x0 + 10 * s, y1 - y0 + 8 * s
    p0, p1 = needle.entry_px, needle.tip_px
    out = p0 - p1
    n = float(np.hypot(*out))
    out = out / n if n > 1.0 else np.array([0.0, 1.0])
    gap = needle.radius_px + style.gap_px * s
    anchor = p0 + out * (gap + 0.5 * max(w * abs(out[0]), h * abs(out[1])))
    width, height = size_px
    margin = 4.0 * s
    box: Box = (0.0, 0.0, 0.0, 0.0)
    for step in range(40):  # the last one tried when every one overlaps something
        dy = (step + 1) // 2 * (h + 2 * s) * (1 if step % 2 else -1)
        cx = min(max(anchor[0], w / 2 + margin), width - w / 2 - margin)
        cy = min(max(anchor[1] + dy, h / 2 + margin), height - h / 2 - margin)
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
        if not any(overlaps(box, other) for other in taken):
            break
    taken.append(box)
    draw.rounded_rectangle(box, radius=4 * s, fill=(12, 14, 18, style.backing_alpha),
                           outline=(*color, 255), width=max(1, round(s)))
    draw.text(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), text, font=label_font,
              fill=(*color, 255), anchor="mm")


def draw_letters(
    draw: ImageDraw.ImageDraw, letters: Mapping[str, str], width: int, height: int, s: float,
    pad_px: float = 6.0,
) -> list[Box]:
    """Orientation letters at the middle of each edge, ``pad_px`` (nominal) inside it;
    returns the boxes they occupy."""
    letter_font = font(22 * s)
    pad = pad_px * s
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
        box = draw.textbbox(xy, text, font=letter_font, anchor=anchor)
        draw.text(xy, text, font=letter_font, anchor=anchor, fill=WHITE,
                  stroke_width=2 * s, stroke_fill=(0, 0, 0, 255))
        boxes.append((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad))
    return boxes


def _draw_corner_text(draw: ImageDraw.ImageDraw, title: str, geometry: SliceGeometry,
                      s: float) -> list[Box]:
    """Title (top left), window (bottom left) and a millimetre scale bar (bottom right)."""
    width, height = geometry.width_px, geometry.height_px
    pad = 8 * s
    boxes = draw_texts(draw, [
        ((pad, pad), title, font(14 * s), "lt"),
        ((pad, height - pad), f"W {BONE_WINDOW_HU[0]:.0f} / L {BONE_WINDOW_HU[1]:.0f}",
         font(12 * s, bold=False), "lb"),
    ], s)
    boxes.append(draw_scale_bar(draw, geometry.pixel_mm, width, height, s))
    return boxes


def draw_texts(
    draw: ImageDraw.ImageDraw,
    items: Sequence[tuple[tuple[float, float], str, ImageFont.FreeTypeFont, str]], s: float,
    backing: bool = False, fill: tuple[int, int, int, int] = TEXT_FILL,
) -> list[Box]:
    """Light text (``fill``) with a dark outline, each ``(xy, text, font, anchor)``;
    returns the boxes.

    ``backing`` puts each on a dark box: on a radiograph air is white, and outlined light
    text over white reads as hollow letters.
    """
    boxes = []
    for xy, text, item_font, anchor in items:
        box = draw.textbbox(xy, text, font=item_font, anchor=anchor)
        if backing:
            m = 3 * s
            draw.rounded_rectangle((box[0] - m, box[1] - m, box[2] + m, box[3] + m),
                                   radius=3 * s, fill=(15, 17, 20, 200))
        draw.text(xy, text, font=item_font, anchor=anchor, fill=fill,
                  stroke_width=max(1, round(s)), stroke_fill=(0, 0, 0, 255))
        boxes.append((box[0] - s, box[1] - s, box[2] + s, box[3] + s))
    return boxes


def draw_scale_bar(
    draw: ImageDraw.ImageDraw, pixel_mm: float, width: int, height: int, s: float,
    note: str = "", fill: tuple[int, int, int, int] = TEXT_FILL,
) -> Box:
    """A millimetre bar at the bottom right, the longest of `SCALE_BAR_MM` that fits a
    quarter of the width, labelled "20 mm" (+ ``note``) in ``fill``; returns the box it
    occupies."""
    pad = 8 * s
    small = font(12 * s, bold=False)
    fov_mm = pixel_mm * width
    bar_mm = max((b for b in SCALE_BAR_MM if b <= fov_mm / 4), default=SCALE_BAR_MM[0])
    bar_px = bar_mm / pixel_mm
    x1, y = width - pad, height - pad - 2 * s
    x0 = x1 - bar_px
    tick = 5 * s
    for line_fill, w in (((0, 0, 0, 255), round(5 * s)), (WHITE, round(2 * s))):
        draw.line([(x0, y), (x1, y)], fill=line_fill, width=w)
        draw.line([(x0, y - tick), (x0, y + w / 2)], fill=line_fill, width=w)
        draw.line([(x1, y - tick), (x1, y + w / 2)], fill=line_fill, width=w)
    label = f"{bar_mm:.0f} mm" + (f" {note}" if note else "")
    label_xy, anchor = ((x0 + x1) / 2, y - tick - 2 * s), "mb"
    box = draw.textbbox(label_xy, label, font=small, anchor=anchor)
    if box[2] > width - s:  # a long label: right-aligned with the bar instead of centred
        label_xy, anchor = (x1, y - tick - 2 * s), "rb"
        box = draw.textbbox(label_xy, label, font=small, anchor=anchor)
    draw.text(label_xy, label, font=small, anchor=anchor, fill=fill,
              stroke_width=max(1, round(s)), stroke_fill=(0, 0, 0, 255))
    return (min(x0, box[0]) - s, box[1] - s, x1 + s, float(height))
