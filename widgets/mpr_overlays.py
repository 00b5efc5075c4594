"""What an MPR view draws over the CT for planning: needles, structure outlines, level names.

Kept apart from `mpr_view` (navigation and the image) so each stays small. Everything is
computed from LPS geometry and the view's `SliceGeometry`, so overlays land on the anatomy
for any series orientation.

Needles are drawn as a surgeon reads them on a workstation: the part within half a slab of
the slice solid and as wide as the needle, the rest of its projection faint and dashed, the
entry as a ring and the tip as a dot, and where the needle crosses the slice its round cut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen

from planning.reslice import SliceGeometry
from planning.slice_contours import coarse_slice, outline_contours_px
from planning.vocabulary import REFERENCE_COLOR
from planning.volume import FloatArray
from widgets.plan_display import NeedleDisplay

HANDLE_PX = 5.0  # radius of the entry/tip handles
PICK_PX = 9.0  # how close a press must be to a handle to grab it
MIN_SLAB_MM = 2.5  # half-thickness of the slab in which a needle counts as "in the slice"
OUTLINE_SAMPLE_MIN_MM = 0.35  # outlines are sampled no finer than this (speed when zoomed)


@dataclass(frozen=True, eq=False)
class Outline:
    """A structure outlined in every slice: a mask on its own grid, its colour and name."""

    name: str
    mask: NDArray[np.bool_]  # [k, j, i]
    affine_lps: FloatArray
    color: QColor
    width_px: float = 1.6
    fill_alpha: int = 0  # > 0: a translucent fill inside the outline


def slab_mm(needle: NeedleDisplay, geometry: SliceGeometry) -> float:
    return max(MIN_SLAB_MM, needle.radius_mm + 1.0, geometry.pixel_mm)


def in_slab_range(d0: float, d1: float, half: float) -> tuple[float, float] | None:
    """Parameter range t ∈ [0, 1] of a segment whose plane distance goes d0 → d1 linearly
    where |d| ≤ half, or None."""
    if abs(d1 - d0) < 1e-9:
        return (0.0, 1.0) if abs(d0) <= half else None
    ta, tb = (-half - d0) / (d1 - d0), (half - d0) / (d1 - d0)
    lo, hi = max(0.0, min(ta, tb)), min(1.0, max(ta, tb))
    return (lo, hi) if lo <= hi else None


def outline_paths(outline: Outline, geometry: SliceGeometry) -> list[QPainterPath]:
    """The outline's contours in this slice, as paths in widget pixels."""
    coarse = coarse_slice(geometry, OUTLINE_SAMPLE_MIN_MM)
    scale = coarse.pixel_mm / geometry.pixel_mm
    w, h = coarse.width_px, coarse.height_px
    paths = []
    for xy in outline_contours_px(outline.mask, outline.affine_lps, coarse):
        px = (xy - [(w - 1) / 2.0, (h - 1) / 2.0]) * scale + [
            (geometry.width_px - 1) / 2.0 + 0.5, (geometry.height_px - 1) / 2.0 + 0.5]
        path = QPainterPath(QPointF(*px[0]))
        for x, y in px[1:]:
            path.lineTo(x, y)
        path.closeSubpath()
        paths.append(path)
    return paths


def widget_xy(geometry: SliceGeometry, point_lps: FloatArray) -> QPointF:
    x, y = geometry.lps_to_pixel(point_lps)
    return QPointF(float(x) + 0.5, float(y) + 0.5)


LABEL_PLATE = QColor(0, 0, 0, 170)


def plate_label(painter: QPainter, rect: QRectF, text: str, color: QColor,
                plate: QColor = LABEL_PLATE) -> None:
    """``text`` centred on a rounded dark plate: a label that reads over bone and air."""
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(plate)
    painter.drawRoundedRect(rect, 3, 3)
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(color)
    painter.drawText(rect, int(Qt.AlignmentFlag.AlignCenter), text)


NEAR_SLICE_MM = 15.0  # needles farther than this from the slice are not drawn (unselected)


def paint_needle(painter: QPainter, needle: NeedleDisplay, geometry: SliceGeometry,
                 font: QFont, editable: bool) -> None:
    """One needle: faint full projection, solid in-slab part, handles, cut, label.

    Needles of other levels (all of the needle farther than ``NEAR_SLICE_MM`` from the
    slice) are left out unless selected, and only needles that reach the slab are
    labelled: an axial slice through L2 shows L2's pair, not a pile of projections.
    """
    entry, tip = np.asarray(needle.entry_lps, float), np.asarray(needle.target_lps, float)
    d0, d1 = geometry.distance_to_plane_mm(entry), geometry.distance_to_plane_mm(tip)
    nearest = 0.0 if (d0 > 0) != (d1 > 0) else min(abs(d0), abs(d1))
    if nearest > NEAR_SLICE_MM and not needle.selected:
        return
    p0, p1 = widget_xy(geometry, entry), widget_xy(geometry, tip)
    half = slab_mm(needle, geometry)
    color = QColor(needle.color)
    width_px = max(2.0, 2.0 * needle.radius_mm / geometry.pixel_mm)
    faint = QColor(color)
    faint.setAlpha(120)
    if needle.selected:
        halo = QPen(QColor(255, 255, 255, 150), width_px + 5.0)
        halo.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(halo)
        painter.drawLine(p0, p1)
    pen = QPen(faint, max(1.5, width_px * 0.5), Qt.PenStyle.DashLine)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    painter.setPen(pen)
    painter.drawLine(p0, p1)
    span = in_slab_range(d0, d1, half)
    if span is not None:
        a = p0 + (p1 - p0) * span[0]
        b = p0 + (p1 - p0) * span[1]
        solid = QPen(color, width_px)
        solid.setCapStyle(Qt.PenCapStyle.FlatCap)
        painter.setPen(solid)
        painter.drawLine(a, b)
    if (d0 > 0) != (d1 > 0) and abs(d1 - d0) > 1e-9:  # the needle pierces the slice here
        t = d0 / (d0 - d1)
        c = p0 + (p1 - p0) * t
        r = max(2.5, needle.radius_mm / geometry.pixel_mm)
        painter.setPen(QPen(QColor("#ffffff"), 1.2))
        painter.setBrush(color)
        painter.drawEllipse(c, r, r)
        painter.setBrush(Qt.BrushStyle.NoBrush)
    for point, dist, filled in ((p0, d0, False), (p1, d1, True)):
        near = abs(dist) <= half
        c = QColor(color)
        c.setAlpha(255 if near else 110)
        painter.setPen(QPen(QColor(0, 0, 0, 200) if filled else c, 2.0 if not filled else 1.0))
        painter.setBrush(c if filled else QColor(0, 0, 0, 90))
        r = HANDLE_PX if editable else HANDLE_PX - 1.5
        painter.drawEllipse(point, r, r)
        painter.setBrush(Qt.BrushStyle.NoBrush)
    if span is None and not needle.selected:
        return
    # the label beside the entry, on the side away from the tip
    away = p0 - p1
    n = math.hypot(away.x(), away.y()) or 1.0
    anchor = p0 + away * (14.0 / n)
    text = f"{needle.label} {needle.badge}".strip()
    painter.setFont(font)
    fm = QFontMetricsF(font)
    rect = QRectF(anchor.x() - fm.horizontalAdvance(text) / 2 - 3, anchor.y() - fm.height() / 2,
                  fm.horizontalAdvance(text) + 6, fm.height())
    plate_label(painter, rect, text, color)


def paint_reference(painter: QPainter, needle: NeedleDisplay, geometry: SliceGeometry,
                    font: QFont) -> None:
    """A reference needle (training, after submission): its projection dashed, labelled
    "ref", when it comes near the slice; never picked or dragged."""
    entry, tip = np.asarray(needle.entry_lps, float), np.asarray(needle.target_lps, float)
    d0, d1 = geometry.distance_to_plane_mm(entry), geometry.distance_to_plane_mm(tip)
    nearest = 0.0 if (d0 > 0) != (d1 > 0) else min(abs(d0), abs(d1))
    if nearest > NEAR_SLICE_MM:
        return
    p0, p1 = widget_xy(geometry, entry), widget_xy(geometry, tip)
    color = QColor(REFERENCE_COLOR)
    width_px = max(2.0, 2.0 * needle.radius_mm / geometry.pixel_mm)
    pen = QPen(color, width_px * 0.6, Qt.PenStyle.DashLine)
    pen.setCapStyle(Qt.PenCapStyle.FlatCap)
    painter.setPen(pen)
    painter.drawLine(p0, p1)
    painter.setPen(QPen(color, 1.5))
    painter.drawEllipse(p1, HANDLE_PX - 1, HANDLE_PX - 1)
    painter.setFont(font)
    text = f"ref {needle.label}"
    fm = QFontMetricsF(font)
    rect = QRectF(p1.x() + 8, p1.y() - fm.height() / 2, fm.horizontalAdvance(text) + 6,
                  fm.height())
    plate_label(painter, rect, text, color)


def pick_needle(needles: list[NeedleDisplay], geometry: SliceGeometry, pos: QPointF
                ) -> tuple[NeedleDisplay, str] | None:
    """The needle part under a press: ("entry" | "target" | "needle"), selected first."""
    best: tuple[float, NeedleDisplay, str] | None = None
    for needle in sorted(needles, key=lambda nd: not nd.selected):
        p0 = widget_xy(geometry, needle.entry_lps)
        p1 = widget_xy(geometry, needle.target_lps)
        for part, p in (("entry", p0), ("target", p1)):
            d = math.hypot(p.x() - pos.x(), p.y() - pos.y())
            if d <= PICK_PX and (best is None or d < best[0]):
                best = (d, needle, part)
        if best is not None and best[1] is needle:
            continue
        seg = p1 - p0
        length2 = seg.x() ** 2 + seg.y() ** 2
        if length2 < 1e-6:
            continue
        t = max(0.0, min(1.0, ((pos - p0).x() * seg.x() + (pos - p0).y() * seg.y()) / length2))
        q = p0 + seg * t
        d = math.hypot(q.x() - pos.x(), q.y() - pos.y())
        shaft = max(5.0, needle.radius_mm / geometry.pixel_mm + 3.0)
        if d <= shaft and (best is None or d + PICK_PX < best[0]):
            best = (d + PICK_PX, needle, "needle")  # handles win over the shaft
    return None if best is None else (best[1], best[2])


class OutlineCache:
    """Each outline's paths at the slice it was last cut at: a repaint that leaves the
    slice where it is (a needle drag, a hover) does not cut and trace the masks again."""

    def __init__(self) -> None:
        self._cut: dict[str, tuple[tuple, list[QPainterPath]]] = {}

    def replace(self, old: list[Outline], new: list[Outline]) -> None:
        """Forget outlines no longer shown, and those whose mask changed under one name."""
        keep = {o.name for o in new}
        self._cut = {k: v for k, v in self._cut.items() if k in keep}
        for o in new:  # a new mask under an old name must be cut again
            previous = next((x for x in old if x.name == o.name), None)
            if previous is not None and previous.mask is not o.mask:
                self._cut.pop(o.name, None)

    def paths(self, outline: Outline, geometry: SliceGeometry) -> list[QPainterPath]:
        key = (tuple(np.round(geometry.center_lps, 4)), round(geometry.pixel_mm, 6),
               geometry.width_px, geometry.height_px)
        cached = self._cut.get(outline.name)
        if cached is None or cached[0] != key:
            cached = (key, outline_paths(outline, geometry))
            self._cut[outline.name] = cached
        return cached[1]


def paint_outline(painter: QPainter, outline: Outline, paths: list[QPainterPath]) -> None:
    """The outline's paths in its colour, filled translucent if it asks for a fill."""
    pen = QPen(outline.color, outline.width_px)
    painter.setPen(pen)
    fill = QColor(outline.color)
    fill.setAlpha(outline.fill_alpha)
    painter.setBrush(fill if outline.fill_alpha else Qt.BrushStyle.NoBrush)
    for path in paths:
        painter.drawPath(path)
    painter.setBrush(Qt.BrushStyle.NoBrush)


def paint_level_marks(painter: QPainter, geometry: SliceGeometry,
                      marks: dict[str, FloatArray], font: QFont) -> None:
    """Level names beside the bodies (``marks``: name → body centre, LPS) in views that
    show the spine's length; an axial view's title names its level instead."""
    if abs(float(geometry.plane.normal_lps[2])) > 0.7:
        return
    painter.setFont(font)
    fm = QFontMetricsF(painter.font())
    for name, centre in marks.items():
        if abs(geometry.distance_to_plane_mm(centre)) > 40.0:
            continue
        p = widget_xy(geometry, centre)
        rect = QRectF(p.x() - fm.horizontalAdvance(name) / 2 - 4, p.y() - fm.height() / 2,
                      fm.horizontalAdvance(name) + 8, fm.height())
        plate_label(painter, rect, name, QColor("#ffd866"), QColor(20, 24, 32, 170))


def paint_pending_entry(painter: QPainter, entry: QPointF, hover: QPointF | None) -> None:
    """While placing a needle: its entry (widget px), and a line from it to the mouse."""
    painter.setPen(QPen(QColor("#ffffff"), 1.5, Qt.PenStyle.DashLine))
    if hover is not None:
        painter.drawLine(entry, hover)
    painter.setBrush(QColor(0, 0, 0, 90))
    painter.drawEllipse(entry, 5.0, 5.0)
    painter.setBrush(Qt.BrushStyle.NoBrush)
