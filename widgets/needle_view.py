"""The needle view: one needle seen along its axis and across it, inside its pedicle.

Two panes, side by side, share one scale so a millimetre looks the same in both:

``Along the needle``
    an oblique reslice whose plane contains the needle axis. The needle is always drawn
    vertical, entry at the top and tip at the bottom, as a band of its outer diameter. The
    plane turns around the needle (0–180°); 0° is the plane closest to the axial plane, seen
    from the feet like an axial image, so the first picture is the one the surgeon knows
    (an axial slice turned so that the needle comes from the top). A horizontal line marks
    the probe depth.
``Probe's eye``
    the slice perpendicular to the needle at the probe depth, looking from the entry towards
    the tip; the needle's cross-section is the circle at the centre and a dashed line shows
    where the along-the-needle plane cuts this slice. Its orientation does not follow the
    rotation, so the anatomy stays still while the user turns the other pane.

Every pixel is placed in patient LPS first (`planning.reslice`), so the picture and its
orientation letters are right for any series affine. The view keeps display state only
(rotation, depth, window/level); the needle, volume and canal are given to it, its setters
never emit, and the user's depth changes come out as `depth_changed`.

Redraws are cheap because the needle follows the user's drag live: each pane
(`widgets.needle_slice_pane`) samples coarsely and caches its picture, about 15 ms per
needle move for both panes on the demo CT (one idle core). The planes themselves are
geometry of the needle (`planning.needle_planes`).

Mouse: left click or drag in the along pane sets the depth; the wheel turns the along plane
(5° a notch) over the along pane and moves the depth (1 mm a notch) over the probe pane.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)

from planning.needle_planes import along_plane, probe_plane, rotated_right_lps
from planning.reslice import SliceGeometry
from planning.vocabulary import BONE_WINDOW_HU, STATUS_WORDS
from planning.volume import FloatArray, Volume
from widgets.needle_slice_pane import MUTED_TEXT, SlicePane
from widgets.painting import SHADOW, TEXT, backdrop, shadowed_text, sized_font
from widgets.plan_display import NeedleDisplay

HINT_TEXT = "Select a needle to see it here"
ALONG_COLOR = QColor("#9fa8da")  # the along-the-needle plane, and its trace in the probe pane
PROBE_COLOR = QColor("#f5f7fa")  # the probe plane, and its trace (the depth line)

LETTER_MARGIN_PX = 28.0
"""Lines drawn across the image stop this far from its edges, clear of the edge letters."""
SCALE_BAR_CLEARANCE_PX = 40.0
"""…and this far from the bottom edge, clear of the scale bar and its label."""
MIN_FIELD_MM = 50.0
"""Smallest field of view along the needle, so a short needle still shows its vertebra."""
ROTATION_STEP_DEG = 5.0
DEPTH_STEP_MM = 1.0
DEPTH_SLIDER_PER_MM = 10  # slider units per mm: 0.1 mm resolution


def needle_caption(needle: NeedleDisplay) -> str:
    """"L1 L — Safe, 3.2 mm": level, side, check status and canal clearance if known."""
    text = f"{needle.label} — {STATUS_WORDS[needle.status]}"
    if needle.badge:
        text += f", {needle.badge}"
    return text


def _distance_to_edge(start: QPointF, dx: float, dy: float, rect: QRectF) -> float:
    """How far a ray from ``start`` along the unit (dx, dy) runs before it leaves ``rect``."""
    reach = math.inf
    for d, p, lo, hi in ((dx, start.x(), rect.left(), rect.right()),
                         (dy, start.y(), rect.top(), rect.bottom())):
        if abs(d) > 1e-12:
            reach = min(reach, ((hi if d > 0 else lo) - p) / d)
    return max(reach, 0.0)


def _needle_length_mm(needle: NeedleDisplay) -> float:
    return float(np.linalg.norm(np.asarray(needle.target_lps, float)
                                - np.asarray(needle.entry_lps, float)))


# ---- the composite view ------------------------------------------------------------------
class NeedleView(QWidget):
    """One needle in its pedicle: along-the-needle and probe's-eye panes, rotation, depth."""

    depth_changed = Signal(float)
    """(depth_mm) — the user moved the probe depth (slider, click in the along pane, wheel)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("needleView")
        self._volume: Volume | None = None
        self._volume_generation = 0
        self._canal: tuple[NDArray[np.bool_], FloatArray] | None = None
        self._canal_generation = 0
        self._needle: NeedleDisplay | None = None
        self._window, self._level = BONE_WINDOW_HU
        self._rotation_deg = 0.0
        self._depth_mm = 0.0
        self._geometries: dict[int, tuple[tuple[int, ...], SliceGeometry]] = {}

        self.along_pane = SlicePane(self, "Along the needle", ALONG_COLOR, self)
        self.probe_pane = SlicePane(self, "Probe's eye", PROBE_COLOR, self)
        self.along_pane.setToolTip("Click or drag: set the probe depth · Wheel: turn the plane")
        self.probe_pane.setToolTip("Wheel: move the probe along the needle")
        self.along_pane.pressed_at.connect(self._on_along_pressed)
        self.along_pane.wheel_turned.connect(
            lambda n: self.set_rotation_deg(self._rotation_deg + n * ROTATION_STEP_DEG))
        self.probe_pane.wheel_turned.connect(
            lambda n: self._user_depth(self._depth_mm + n * DEPTH_STEP_MM))

        self.rotation_slider = QSlider(Qt.Orientation.Horizontal)
        self.rotation_slider.setObjectName("rotationSlider")
        self.rotation_slider.setRange(0, 180)
        self.rotation_slider.setPageStep(15)
        self.rotation_slider.setToolTip("Turn the along-the-needle plane around the needle; "
                                        "0° is the plane closest to axial")
        self.rotation_slider.valueChanged.connect(lambda v: self.set_rotation_deg(float(v)))
        self.rotation_label = QLabel()
        self.rotation_label.setObjectName("rotationLabel")
        self.depth_slider = QSlider(Qt.Orientation.Horizontal)
        self.depth_slider.setObjectName("depthSlider")
        self.depth_slider.setSingleStep(5)
        self.depth_slider.setPageStep(5 * DEPTH_SLIDER_PER_MM)
        self.depth_slider.setToolTip("Move the probe's-eye slice from the entry to the tip")
        self.depth_slider.valueChanged.connect(
            lambda v: self._user_depth(v / DEPTH_SLIDER_PER_MM))
        self.depth_label = QLabel()
        self.depth_label.setObjectName("depthLabel")
        fm = self.depth_label.fontMetrics()
        self.rotation_label.setMinimumWidth(fm.horizontalAdvance("rotation 180°") + 4)
        self.depth_label.setMinimumWidth(fm.horizontalAdvance("depth 888.8 of 888.8 mm") + 4)

        views = QWidget()
        grid = QGridLayout(views)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(2)
        grid.setVerticalSpacing(4)
        grid.addWidget(self.along_pane, 0, 0)
        grid.addWidget(self.probe_pane, 0, 1)
        for column, (label, slider) in enumerate(
            ((self.rotation_label, self.rotation_slider), (self.depth_label, self.depth_slider))
        ):
            row = QHBoxLayout()
            row.setContentsMargins(6, 0, 6, 2)
            row.addWidget(label)
            row.addWidget(slider, 1)
            grid.addLayout(row, 1, column)
        grid.setRowStretch(0, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)

        self.hint_label = QLabel(HINT_TEXT)
        self.hint_label.setObjectName("needleHint")
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint_label.setWordWrap(True)
        self.hint_label.setStyleSheet(
            f"QLabel#needleHint {{ background-color: #000000; color: {MUTED_TEXT.name()};"
            " font-size: 11pt; }")

        self._stack = QStackedLayout()
        self._stack.addWidget(self.hint_label)
        self._stack.addWidget(views)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addLayout(self._stack)
        self._sync_controls()

    # ---- state set by the main window (never emits) ------------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """The CT to cut; None shows "No image loaded" in the panes."""
        self._volume = volume
        self._volume_generation += 1
        self._invalidate()

    def set_window_level(self, window: float, level: float) -> None:
        """Display window (HU width and centre); re-maps the cached images, no resampling."""
        if (float(window), float(level)) == (self._window, self._level):
            return
        self._window, self._level = float(window), float(level)
        self._repaint()

    def set_canal(self, mask: np.ndarray | None, affine_lps: np.ndarray | None) -> None:
        """The spinal canal, bool ``[k, j, i]`` on its own grid (index→LPS ``affine_lps``).

        Outlined in both panes; None (either argument) removes the outline.
        """
        if mask is None or affine_lps is None:
            self._canal = None
        else:
            m = np.asarray(mask)
            a = np.asarray(affine_lps, dtype=np.float64)
            if m.ndim != 3:
                raise ValueError(f"canal mask must be 3-D [k, j, i], got shape {m.shape}")
            if a.shape != (4, 4):
                raise ValueError(f"canal affine_lps must be 4×4, got shape {a.shape}")
            self._canal = (m.astype(bool, copy=False), a)
        self._canal_generation += 1
        self._invalidate()

    def set_needle(self, needle: NeedleDisplay | None) -> None:
        """The needle to show; keeps the rotation and clamps the depth to the new length."""
        self._needle = needle
        if needle is not None:
            self._depth_mm = min(max(self._depth_mm, 0.0), _needle_length_mm(needle))
        self._sync_controls()
        self._repaint()

    def set_rotation_deg(self, deg: float) -> None:
        """Turn the along plane about the needle; clamped to 0–180° (180° mirrors 0°)."""
        deg = min(max(float(deg), 0.0), 180.0)
        if deg == self._rotation_deg:
            return
        self._rotation_deg = deg
        self._sync_controls()
        self._repaint()

    def set_depth_mm(self, mm: float) -> None:
        """Put the probe's-eye slice ``mm`` from the entry, clamped to the needle."""
        limit = _needle_length_mm(self._needle) if self._needle is not None else 0.0
        mm = min(max(float(mm), 0.0), limit) if self._needle is not None else max(float(mm), 0.0)
        if mm == self._depth_mm:
            return
        self._depth_mm = mm
        self._sync_controls()
        self._repaint()

    # ---- read-only state ------------------------------------------------------------------
    @property
    def rotation_deg(self) -> float:
        return self._rotation_deg

    @property
    def depth_mm(self) -> float:
        return self._depth_mm

    @property
    def needle(self) -> NeedleDisplay | None:
        return self._needle

    @property
    def window_level(self) -> tuple[float, float]:
        return self._window, self._level

    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def canal(self) -> tuple[NDArray[np.bool_], FloatArray] | None:
        """The canal mask and its index→LPS affine, as given to `set_canal`."""
        return self._canal

    @property
    def generation(self) -> tuple[int, int]:
        """(volume, canal) counters, one step per `set_volume` / `set_canal`: the panes
        resample when either changed."""
        return self._volume_generation, self._canal_generation

    @property
    def depth_text(self) -> str:
        """"depth 23.5 of 48.0 mm", as shown beside the depth slider."""
        if self._needle is None:
            return "depth —"
        return f"depth {self._depth_mm:.1f} of {_needle_length_mm(self._needle):.1f} mm"

    def along_geometry(self) -> SliceGeometry | None:
        """Where each pixel of the along pane's image lies in LPS (None without a needle).

        Centred on the needle's midpoint; its centre column is the needle axis, entry up.
        """
        return self.pane_geometry(self.along_pane)

    def probe_geometry(self) -> SliceGeometry | None:
        """Where each pixel of the probe pane's image lies in LPS (None without a needle).

        Centred on entry + depth × direction; the plane normal is the needle direction.
        """
        return self.pane_geometry(self.probe_pane)

    def sizeHint(self) -> QSize:
        return QSize(520, 420)

    # ---- what the panes ask (`widgets.needle_slice_pane.PaneOwner`) ---------------------
    def _pixel_mm(self) -> float:
        """One scale for both panes: the needle plus margins fills the along pane's height."""
        assert self._needle is not None
        length = _needle_length_mm(self._needle)
        field_mm = max(length + 2.0 * max(10.0, 0.2 * length), MIN_FIELD_MM)
        height = self.along_pane.image_rect().height() if self.along_pane.height() > 0 else 300
        return field_mm / max(float(height), 1.0)

    def pane_geometry(self, pane: SlicePane) -> SliceGeometry | None:
        """The pane's geometry, computed once per needle, rotation, depth and pane size.

        A paint asks for it several times; the cache is emptied by every state setter, and
        its key holds the sizes, which change without a setter.
        """
        needle = self._needle
        if needle is None:
            return None
        r = pane.image_rect()
        w, h = max(1, round(r.width())), max(1, round(r.height()))
        key = (w, h, self.along_pane.width(), self.along_pane.height())
        cached = self._geometries.get(id(pane))
        if cached is not None and cached[0] == key:
            return cached[1]
        entry = np.asarray(needle.entry_lps, dtype=np.float64)
        d = needle.direction_lps
        if pane is self.along_pane:
            centre = (entry + np.asarray(needle.target_lps, dtype=np.float64)) / 2.0
            plane = along_plane(d, self._rotation_deg)
        else:
            centre = entry + self._depth_mm * d
            plane = probe_plane(d)
        geometry = SliceGeometry(plane, centre, w, h, self._pixel_mm())
        self._geometries[id(pane)] = (key, geometry)
        return geometry

    def caption(self) -> tuple[str, QColor]:
        if self._needle is None:
            return "", TEXT
        return needle_caption(self._needle), self._needle.color

    def pane_info(self, pane: SlicePane) -> str:
        if self._needle is None:
            return ""
        if pane is self.along_pane:
            return f"rotation {self._rotation_deg:.0f}°"
        return f"depth {self._depth_mm:.1f} mm"

    def paint_overlay(self, pane: SlicePane, painter: QPainter, geometry: SliceGeometry) -> None:
        if self._needle is None:
            return
        if pane is self.along_pane:
            self._paint_along_overlay(pane, painter, geometry, self._needle)
        else:
            self._paint_probe_overlay(pane, painter, geometry, self._needle)

    def _paint_along_overlay(self, pane: SlicePane, painter: QPainter,
                             geometry: SliceGeometry, needle: NeedleDisplay) -> None:
        """Needle band (outer diameter) with entry and tip marks, and the depth line."""
        color = needle.color
        entry = pane.to_widget(geometry, needle.entry_lps)
        tip = pane.to_widget(geometry, needle.target_lps)
        half = needle.radius_mm / geometry.pixel_mm
        rect = pane.image_rect()
        x = entry.x()

        # the approach path outside the needle, thin and faint
        trail = QColor(color)
        trail.setAlpha(130)
        pen = QPen(trail, 1.0, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        if entry.y() > rect.top() + LETTER_MARGIN_PX:
            painter.drawLine(QPointF(x, rect.top() + LETTER_MARGIN_PX), QPointF(x, entry.y()))

        band = QRectF(x - half, entry.y(), 2 * half, tip.y() - entry.y())
        fill = QColor(color)
        fill.setAlpha(70)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        painter.drawRect(band)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for sx in (band.left(), band.right()):
            painter.setPen(QPen(SHADOW, 3.0))
            painter.drawLine(QPointF(sx, band.top()), QPointF(sx, band.bottom()))
            painter.setPen(QPen(color, 1.5))
            painter.drawLine(QPointF(sx, band.top()), QPointF(sx, band.bottom()))
        tick = half + 6.0
        painter.setPen(QPen(color, 2.0))
        for y in (entry.y(), tip.y()):
            painter.drawLine(QPointF(x - tick, y), QPointF(x + tick, y))

        painter.setFont(sized_font(pane, 8.5))
        a = Qt.AlignmentFlag
        fm = QFontMetricsF(painter.font())
        for text, y in (("entry", entry.y()), ("tip", tip.y())):
            box = QRectF(x - tick - 4 - fm.horizontalAdvance(text), y - fm.height() / 2,
                         fm.horizontalAdvance(text), fm.height())
            shadowed_text(painter, box, a.AlignRight | a.AlignVCenter, text, color)

        depth_point = np.asarray(needle.entry_lps, float) + self._depth_mm * needle.direction_lps
        y = pane.to_widget(geometry, depth_point).y()
        x0, x1 = rect.left() + LETTER_MARGIN_PX, rect.right() - LETTER_MARGIN_PX
        painter.setPen(QPen(SHADOW, 3.0))
        painter.drawLine(QPointF(x0, y + 1), QPointF(x1, y + 1))
        painter.setPen(QPen(PROBE_COLOR, 1.2, Qt.PenStyle.DashLine))
        painter.drawLine(QPointF(x0, y), QPointF(x - half - 2, y))
        painter.drawLine(QPointF(x + half + 2, y), QPointF(x1, y))
        painter.setPen(QPen(PROBE_COLOR, 2.0))
        painter.drawLine(QPointF(x - half, y), QPointF(x + half, y))
        label = f"{self._depth_mm:.1f} mm"
        box = QRectF(x + tick + 4, y - fm.height() - 2, fm.horizontalAdvance(label), fm.height())
        backdrop(painter, box)
        shadowed_text(painter, box, a.AlignLeft | a.AlignVCenter, label, PROBE_COLOR)

    def _paint_probe_overlay(self, pane: SlicePane, painter: QPainter,
                             geometry: SliceGeometry, needle: NeedleDisplay) -> None:
        """Needle cross-section (outer diameter) and the trace of the along plane."""
        color = needle.color
        centre = pane.to_widget(geometry, geometry.center_lps)
        radius = needle.radius_mm / geometry.pixel_mm

        right = rotated_right_lps(needle.direction_lps, self._rotation_deg)
        dx, dy = float(right @ geometry.plane.right_lps), float(right @ geometry.plane.down_lps)
        norm = math.hypot(dx, dy) or 1.0
        dx, dy = dx / norm, dy / norm
        inner = pane.image_rect().adjusted(LETTER_MARGIN_PX, LETTER_MARGIN_PX,
                                           -LETTER_MARGIN_PX, -SCALE_BAR_CLEARANCE_PX)
        gap = radius + 5.0
        painter.setPen(QPen(ALONG_COLOR, 1.2, Qt.PenStyle.DashLine))
        for s in (-1.0, 1.0):
            reach = _distance_to_edge(centre, s * dx, s * dy, inner)
            if reach > gap:
                painter.drawLine(QPointF(centre.x() + s * gap * dx, centre.y() + s * gap * dy),
                                 QPointF(centre.x() + s * reach * dx, centre.y() + s * reach * dy))

        fill = QColor(color)
        fill.setAlpha(70)
        painter.setBrush(fill)
        painter.setPen(QPen(SHADOW, 3.5))
        painter.drawEllipse(centre, radius, radius)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(color, 2.0))
        painter.drawEllipse(centre, radius, radius)

    # ---- user input -----------------------------------------------------------------------
    def _on_along_pressed(self, point_lps: FloatArray) -> None:
        """A click in the along pane puts the probe at that point's depth on the needle."""
        if self._needle is None:
            return
        offset = np.asarray(point_lps, float) - np.asarray(self._needle.entry_lps, float)
        self._user_depth(float(offset @ self._needle.direction_lps))

    def _user_depth(self, mm: float) -> None:
        """A depth the user chose: applied like `set_depth_mm`, then announced."""
        if self._needle is None:
            return
        before = self._depth_mm
        self.set_depth_mm(mm)
        if self._depth_mm != before:
            self.depth_changed.emit(self._depth_mm)

    # ---- keeping controls and panes in step ------------------------------------------------
    def _sync_controls(self) -> None:
        """Show the state in the sliders and labels without their signals echoing back."""
        has_needle = self._needle is not None
        self._stack.setCurrentIndex(1 if has_needle else 0)
        length = _needle_length_mm(self._needle) if self._needle is not None else 0.0
        for slider, maximum, value in (
            (self.rotation_slider, 180, round(self._rotation_deg)),
            (self.depth_slider, round(length * DEPTH_SLIDER_PER_MM),
             round(self._depth_mm * DEPTH_SLIDER_PER_MM)),
        ):
            slider.blockSignals(True)
            slider.setMaximum(maximum)
            slider.setValue(value)
            slider.setEnabled(has_needle)
            slider.blockSignals(False)
        self.rotation_label.setText(f"rotation {self._rotation_deg:.0f}°")
        self.depth_label.setText(self.depth_text)

    def _invalidate(self) -> None:
        self.along_pane.invalidate()
        self.probe_pane.invalidate()

    def _repaint(self) -> None:
        self._geometries.clear()
        self.along_pane.update()
        self.probe_pane.update()
