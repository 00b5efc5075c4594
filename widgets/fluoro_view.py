"""Simulated fluoroscopy: two DRR panes, as on a biplane C-arm, with the needles' shadows.

Why: at the angio suite the needle is driven under fluoroscopy, not on CT slices. Showing the
planned needles over the projection the C-arm will give (AP and lateral, or the selected
needle's bull's-eye and progression views) lets the surgeon check that the plan reads on the
monitor, and lets trainees practise "under fluoroscopy".

The panes only draw: a `FluoroFrame` (a DRR already rendered by the workspace in a worker,
with the `FluoroView` that made it) and the needles as `NeedleDisplay` values. Needles are
projected here with the frame's own cone-beam geometry (`planning.drr.project_points`), so
dragging a needle moves its shadow at once, without a new DRR. A needle handle dragged in a
pane moves in the plane parallel to the detector through the handle (the depth along the
beam is kept, as when an operator watches one projection); a click while placing puts the
point on the plane through the view's isocentre. The caption states the C-arm angles in the
leading convention and the patient position, the line under the panes both conventions and
the detector's position in words; the edge letters and the "at isocentre" scale bar come
from the geometry.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from planning.drr import DrrGeometry, project_points
from planning.fluoro_views import FluoroView, edge_letters
from planning.vocabulary import REFERENCE_COLOR as REFERENCE_HEX
from planning.volume import FloatArray
from widgets.needle_layers import NeedleLayers
from widgets.painting import backdrop, scale_bar, shadowed_text, sized_font, widget_painter
from widgets.plan_display import NeedleDisplay, status_qcolor

PICK_PX = 9.0
LETTER_COLOR = QColor("#ffd866")
REFERENCE_COLOR = QColor(REFERENCE_HEX)
MODES = (("standard", "AP + lateral"),
         ("working", "Working views of the selected needle (bull's-eye + progression)"))


@dataclass(frozen=True, eq=False)
class FluoroFrame:
    """A rendered DRR (8-bit, bone dark) and the view (angles, geometry) it shows."""

    view: FluoroView
    image: np.ndarray
    position: str = "prone"


def geometry_key(geometry: DrrGeometry) -> tuple:
    """Equal for the same projection: the workspace skips renders of an unchanged view."""
    values = np.concatenate([geometry.source_lps, geometry.detector_centre_lps,
                             geometry.detector_u_lps, geometry.detector_v_lps])
    return (*np.round(values, 3).tolist(), geometry.width_px, round(geometry.pixel_mm, 6))


class FluoroPane(NeedleLayers, QWidget):
    """One DRR with the needles' shadows, caption, edge letters and an isocentre scale bar."""

    needle_dragged = Signal(str, object, str, object)  # level, side, part, new point LPS
    needle_drag_finished = Signal()
    needle_picked = Signal(str, object)
    point_placed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setMinimumSize(160, 160)
        self._frame: FluoroFrame | None = None
        self._qimage: QImage | None = None
        self._message = "No CT loaded"
        self._init_needle_layers()
        self._editable = True
        self._placing = False
        self._drag: tuple[str, object, str, FloatArray, QPointF, bool] | None = None
        self._labels: list[QRectF] = []

    # ---- state (setters never emit) ---------------------------------------------------
    def set_frame(self, frame: FluoroFrame | None, message: str = "") -> None:
        self._frame = frame
        self._message = message
        if frame is None:
            self._qimage = None
        else:
            img = np.ascontiguousarray(frame.image, dtype=np.uint8)
            h, w = img.shape
            self._qimage = QImage(img.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
        self.update()

    def set_message(self, message: str) -> None:
        self._message = message
        self.update()

    def set_editable(self, editable: bool) -> None:
        self._editable = editable

    def set_placing(self, placing: bool) -> None:
        self._placing = placing
        self.setCursor(Qt.CursorShape.CrossCursor if placing else Qt.CursorShape.ArrowCursor)

    @property
    def frame(self) -> FluoroFrame | None:
        return self._frame

    def sizeHint(self) -> QSize:
        return QSize(360, 360)

    # ---- image ↔ widget ---------------------------------------------------------------
    def _image_rect(self) -> QRectF:
        """Where the DRR is drawn: the largest centred square (the detector is square)."""
        if self._frame is None:
            return QRectF()
        g = self._frame.view.geometry
        scale = min(self.width() / g.width_px, self.height() / g.height_px)
        w, h = g.width_px * scale, g.height_px * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def _scale(self) -> float:
        """Widget pixels per image pixel."""
        if self._frame is None:
            return 1.0
        return self._image_rect().width() / self._frame.view.geometry.width_px

    def image_to_widget(self, xy: np.ndarray) -> QPointF:
        r, s = self._image_rect(), self._scale()
        return QPointF(r.left() + (float(xy[0]) + 0.5) * s, r.top() + (float(xy[1]) + 0.5) * s)

    def widget_to_image(self, pos: QPointF) -> np.ndarray:
        r, s = self._image_rect(), self._scale()
        return np.array([(pos.x() - r.left()) / s - 0.5, (pos.y() - r.top()) / s - 0.5])

    def lps_to_widget(self, point_lps: FloatArray) -> QPointF | None:
        if self._frame is None:
            return None
        xy = project_points(self._frame.view.geometry, np.asarray(point_lps, dtype=float))
        return None if not np.all(np.isfinite(xy)) else self.image_to_widget(xy)

    def widget_to_lps(self, pos: QPointF, through_lps: FloatArray | None = None) -> FloatArray:
        """The point under ``pos`` on the plane parallel to the detector through
        ``through_lps`` (default: the view's isocentre, where the central ray is aimed)."""
        assert self._frame is not None
        g = self._frame.view.geometry
        on_detector = g.pixel_to_lps(self.widget_to_image(pos))
        ray = on_detector - g.source_lps
        anchor = (np.asarray(through_lps, dtype=float) if through_lps is not None
                  else self._isocentre())
        n = g.normal_lps
        t = float((anchor - g.source_lps) @ n) / float(ray @ n)
        return np.asarray(g.source_lps + t * ray, dtype=np.float64)

    def _isocentre(self) -> FloatArray:
        assert self._frame is not None
        return self._frame.view.isocentre_lps

    # ---- painting ---------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        with widget_painter(self) as painter:
            self._paint(painter)

    def _paint(self, painter: QPainter) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor("#000000"))
        if self._qimage is None or self._frame is None:
            painter.setFont(sized_font(self, 10))
            shadowed_text(painter, QRectF(self.rect()), Qt.AlignmentFlag.AlignCenter,
                          self._message or "")
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawImage(self._image_rect(), self._qimage)
        self._labels: list[QRectF] = []  # label boxes drawn so far, kept apart
        for needle in self._reference:
            self._paint_needle(painter, needle, reference=True)
        for needle in sorted(self._needles, key=lambda nd: nd.selected):
            self._paint_needle(painter, needle)
        self._paint_text(painter)

    def _paint_needle(self, painter: QPainter, needle: NeedleDisplay,
                      reference: bool = False) -> None:
        p0, p1 = self.lps_to_widget(needle.entry_lps), self.lps_to_widget(needle.target_lps)
        if p0 is None or p1 is None:
            return
        g = self._frame.view.geometry  # type: ignore[union-attr]
        middle = (np.asarray(needle.entry_lps) + np.asarray(needle.target_lps)) / 2.0
        depth = max(float((middle - g.source_lps) @ g.normal_lps), 1e-3)
        radius_px = needle.radius_mm * g.source_to_detector_mm / depth / g.pixel_mm
        width = max(2.0, 2.0 * radius_px * self._scale())
        color = REFERENCE_COLOR if reference else status_qcolor(needle.status)
        length = math.hypot(p1.x() - p0.x(), p1.y() - p0.y())
        if length < width:  # end-on (bull's-eye): a ring with the needle's diameter
            painter.setPen(QPen(QColor(0, 0, 0, 200), 4.0))
            painter.drawEllipse(p1, width / 2 + 2, width / 2 + 2)
            painter.setPen(QPen(color, 2.5, Qt.PenStyle.DashLine if reference
                                else Qt.PenStyle.SolidLine))
            painter.drawEllipse(p1, width / 2 + 2, width / 2 + 2)
        else:
            painter.setPen(QPen(QColor(0, 0, 0, 170), width + 3, Qt.PenStyle.SolidLine,
                                Qt.PenCapStyle.RoundCap))
            painter.drawLine(p0, p1)
            style = Qt.PenStyle.DashLine if reference else Qt.PenStyle.SolidLine
            painter.setPen(QPen(color, width, style, Qt.PenCapStyle.RoundCap))
            painter.drawLine(p0, p1)
            if not reference:  # entry handle (hollow) and tip (filled), as in the slices
                painter.setPen(QPen(QColor("#ffffff"), 1.5))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawEllipse(p0, 4.5, 4.5)
                painter.setBrush(color)
                painter.drawEllipse(p1, 4.0, 4.0)
                painter.setBrush(Qt.BrushStyle.NoBrush)
        label = ("ref " if reference else "") + needle.label
        font = sized_font(self, 8.5, bold=True)
        painter.setFont(font)
        text_w = painter.fontMetrics().horizontalAdvance(label) + 4
        # beyond the entry, away from the tip (or beside the dot when seen end-on)
        if length >= width:
            ux, uy = (p0.x() - p1.x()) / length, (p0.y() - p1.y()) / length
            cx, cy = p0.x() + ux * (12 + text_w / 2), p0.y() + uy * 14
        else:
            cx, cy = p1.x() + width / 2 + 8 + text_w / 2, p1.y() - 10
        rect = QRectF(cx - text_w / 2, cy - 8, text_w, 16)
        while any(rect.intersects(other) for other in self._labels):
            rect.translate(0, 15)  # two needles end on, or one behind the other
        self._labels.append(rect)
        shadowed_text(painter, rect, Qt.AlignmentFlag.AlignCenter, label,
                      color if not needle.selected else QColor("#ffffff"))

    def _paint_text(self, painter: QPainter) -> None:
        frame = self._frame
        assert frame is not None
        r = self._image_rect()
        v = frame.view  # short labels here; the line under the panes spells them out
        lines = ((f"{v.title}, patient {frame.position}", True),
                 (v.setting.tag(v.convention), False))  # two lines: a narrow pane clips one
        for n, (text, bold) in enumerate(lines):
            painter.setFont(sized_font(self, 9, bold=bold))
            rect = QRectF(r.left() + 6, r.top() + 4 + 17 * n, r.width() - 12, 17)
            backdrop(painter, QRectF(rect.left(), rect.top(),
                                     painter.fontMetrics().horizontalAdvance(text) + 2, 17))
            shadowed_text(painter, rect, Qt.AlignmentFlag.AlignLeft
                          | Qt.AlignmentFlag.AlignVCenter, text)
        painter.setFont(sized_font(self, 12, bold=True))
        letters = edge_letters(frame.view.geometry)
        a = Qt.AlignmentFlag
        for edge, rect, flags in (
            ("left", QRectF(r.left() + 4, r.top(), 40, r.height()), a.AlignLeft | a.AlignVCenter),
            ("right", QRectF(r.right() - 44, r.top(), 40, r.height()),
             a.AlignRight | a.AlignVCenter),
            ("top", QRectF(r.left(), r.top() + 40, r.width(), 20), a.AlignHCenter | a.AlignTop),
            ("bottom", QRectF(r.left(), r.bottom() - 24, r.width(), 20),
             a.AlignHCenter | a.AlignBottom),
        ):
            shadowed_text(painter, rect, flags, letters[edge], LETTER_COLOR)
        g = frame.view.geometry
        iso_pixel_mm = g.pixel_mm / frame.view.magnification / self._scale()
        small = sized_font(self, 8)
        scale_bar(painter, r.right() - 12, r.bottom() - 14, iso_pixel_mm, r.width(), small)
        painter.setFont(small)
        shadowed_text(painter, QRectF(r.left() + 6, r.bottom() - 20, r.width() * 0.7, 16),
                      a.AlignLeft | a.AlignVCenter, "Simulated (DRR) · scale at isocentre")

    # ---- mouse --------------------------------------------------------------------------
    def _pick(self, pos: QPointF) -> tuple[NeedleDisplay, str] | None:
        best: tuple[float, NeedleDisplay, str] | None = None
        for needle in sorted(self._needles, key=lambda nd: not nd.selected):
            p0, p1 = self.lps_to_widget(needle.entry_lps), self.lps_to_widget(needle.target_lps)
            if p0 is None or p1 is None:
                continue
            for part, p in (("target", p1), ("entry", p0)):  # end-on: the tip wins
                d = math.hypot(p.x() - pos.x(), p.y() - pos.y())
                if d <= PICK_PX and (best is None or d < best[0]):
                    best = (d, needle, part)
        return None if best is None else (best[1], best[2])

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self._frame is None or event.button() != Qt.MouseButton.LeftButton:
            return
        pos = event.position()
        if self._placing:
            self.point_placed.emit(self.widget_to_lps(pos))
            return
        hit = self._pick(pos) if self._editable else None
        if hit is not None:
            needle, part = hit
            start = needle.target_lps if part == "target" else needle.entry_lps
            self._drag = (needle.level, needle.side, part,
                          np.asarray(start, dtype=np.float64).copy(), pos, False)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag is not None:
            level, side, part, start, origin, _moved = self._drag
            if abs(pos.x() - origin.x()) + abs(pos.y() - origin.y()) >= 1.0:
                self._drag = (level, side, part, start, origin, True)
                self.needle_dragged.emit(level, side, part, self.widget_to_lps(pos, start))
            return
        if self._frame is not None and self._editable and not self._placing:
            over = self._pick(pos)
            self.setCursor(Qt.CursorShape.ArrowCursor if over is None
                           else Qt.CursorShape.PointingHandCursor)
            self.setToolTip("" if over is None else over[0].summary)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is not None:
            level, side, _part, _start, _origin, moved = self._drag
            self._drag = None
            if moved:
                self.needle_drag_finished.emit()
            else:
                self.needle_picked.emit(level, side)
        event.accept()


class FluoroPanel(QWidget):
    """Two panes side by side and the choice of views; the workspace renders the frames."""

    mode_changed = Signal(str)  # "standard" | "working"
    position_changed = Signal(str)  # "prone" | "supine": how the patient lies on the table

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.mode_box = QComboBox()
        for key, text in MODES:
            self.mode_box.addItem(text, key)
        self.mode_box.setToolTip("AP and lateral centred on the level, or the selected "
                                 "needle's C-arm working views")
        self.position_box = QComboBox()
        for key in ("prone", "supine"):
            self.position_box.addItem(f"Patient {key}", key)
        self.position_box.setToolTip("How the patient lies on the angio table: the C-arm "
                                     "angles here, in the needle details and in the report "
                                     "are for this position")
        self.status_label = QLabel("")
        self.status_label.setObjectName("fluoroStatus")
        self.convention_label = QLabel("")
        self.convention_label.setWordWrap(True)
        self.convention_label.setTextFormat(Qt.TextFormat.RichText)
        self.convention_label.setObjectName("hintLabel")
        top = QHBoxLayout()
        top.setContentsMargins(4, 2, 4, 0)
        top.addWidget(QLabel("Views:"))
        top.addWidget(self.mode_box)
        top.addWidget(self.position_box)
        top.addStretch(1)
        top.addWidget(self.status_label)
        self.panes = (FluoroPane(), FluoroPane())
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        for pane in self.panes:
            row.addWidget(pane, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(top)
        layout.addLayout(row, 1)
        layout.addWidget(self.convention_label)
        self.mode_box.currentIndexChanged.connect(self._mode_changed)
        self.position_box.currentIndexChanged.connect(
            lambda _i: self.position_changed.emit(self.position))

    @property
    def mode(self) -> str:
        return str(self.mode_box.currentData())

    def set_mode(self, mode: str) -> None:
        """Choose the views (emits `mode_changed` when it changes, like a user's choice)."""
        _choose_data(self.mode_box, mode)

    @property
    def position(self) -> str:
        return str(self.position_box.currentData())

    def set_position(self, position: str) -> None:
        """Show ``position`` (emits `position_changed` when it changes)."""
        _choose_data(self.position_box, position)

    def _mode_changed(self, _index: int) -> None:
        self.mode_changed.emit(self.mode)

    def set_frames(self, frames: list[FluoroFrame]) -> None:
        for pane, frame in zip(self.panes, frames, strict=False):
            pane.set_frame(frame)
        for pane in self.panes[len(frames):]:
            pane.set_frame(None, "Select a needle to see its working views")
        self._describe()

    def set_convention(self, convention: str) -> None:
        """Lead the captions with ``convention`` ("table" or "patient"); the DRRs stay."""
        for pane in self.panes:
            if pane.frame is not None and pane.frame.view.convention != convention:
                pane.set_frame(replace(pane.frame, view=replace(
                    pane.frame.view, convention=convention)))
        self._describe()

    def _describe(self) -> None:
        """Each shown view in both conventions, each named, and the detector in words."""
        lines = []
        for pane in self.panes:
            if pane.frame is None:
                continue
            v = pane.frame.view
            angles = " · ".join(html.escape(x, quote=False)
                                for x in v.setting.angle_lines(v.convention))
            lines.append(f"<b>{html.escape(v.title, quote=False)}</b>: {angles}; "
                         f"{html.escape(v.setting.words, quote=False)}")
        self.convention_label.setText("<br>".join(lines) or
                                      "C-arm angles appear here with the views.")

    def set_message(self, message: str) -> None:
        for pane in self.panes:
            pane.set_frame(None, message)
        self._describe()

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_needles(self, needles: list[NeedleDisplay]) -> None:
        for pane in self.panes:
            pane.set_needles(needles)

    def set_reference(self, needles: list[NeedleDisplay]) -> None:
        for pane in self.panes:
            pane.set_reference(needles)

    def set_editable(self, editable: bool) -> None:
        for pane in self.panes:
            pane.set_editable(editable)

    def set_placing(self, placing: bool) -> None:
        for pane in self.panes:
            pane.set_placing(placing)

    def view_keys(self) -> list[tuple]:
        return [geometry_key(p.frame.view.geometry) for p in self.panes if p.frame is not None]


def _choose_data(box: QComboBox, data: str) -> None:
    """Select the item of ``box`` that holds ``data``; an unknown value changes nothing."""
    index = box.findData(data)
    if index >= 0:
        box.setCurrentIndex(index)
