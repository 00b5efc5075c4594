"""One multi-planar reformat view (axial, sagittal or coronal) painted with QPainter.

The view keeps only display state (zoom, pan, window/level, the crosshair it was told about);
the image itself comes from `planning.reslice`, sampled in patient space so any series
orientation is shown in radiological convention. User actions are emitted as signals; the
controller decides and tells every view (`set_crosshair`, `set_window_level`), and those
setters never emit, so a view does not hear its own echo.

Mouse and keys:
    left click/drag          move the linked crosshair
    wheel, PageUp/PageDown,
    Up/Down arrows           move through slices (one voxel per step)
    Ctrl+wheel, right drag   zoom
    middle drag, Shift+left  pan
    Ctrl+left drag           window (left/right) and level (up/down)
    left drag on a needle    move its entry or tip handle, or the whole needle (shaft)
    left click, placing      the entry, then the target of a new needle
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QResizeEvent,
    QShowEvent,
    QWheelEvent,
)
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from planning.anatomy.model import level_at
from planning.reslice import (
    SliceGeometry,
    ViewPlane,
    fit_pixel_mm,
    orientation_letters,
    reslice,
    slice_step_mm,
)
from planning.vocabulary import BONE_WINDOW_HU
from planning.volume import FloatArray, Volume
from widgets.mpr_annotations import (
    paint_centre_text,
    paint_edge_letters,
    paint_info,
    paint_slice_lines,
    paint_title,
    slice_number_text,
)
from widgets.mpr_overlays import (
    Outline,
    OutlineCache,
    paint_level_marks,
    paint_needle,
    paint_outline,
    paint_pending_entry,
    paint_reference,
    pick_needle,
    widget_xy,
)
from widgets.needle_layers import NeedleLayers
from widgets.painting import scale_bar, sized_font, widget_painter

BACKGROUND = QColor("#000000")
ZOOM_PER_WHEEL_STEP = 1.15
MIN_PIXEL_MM, MAX_PIXEL_MM = 0.05, 10.0
LPS_AXIS = ("x", "y", "z")


def window_to_uint8(image_hu: np.ndarray, window: float, level: float) -> np.ndarray:
    """Map HU to 0–255 grey with a linear window (DICOM VOI LUT, linear)."""
    low = level - window / 2.0
    scaled = (image_hu - low) * (255.0 / max(window, 1.0))
    return np.clip(scaled, 0.0, 255.0).astype(np.uint8)


class MprView(NeedleLayers, QWidget):
    """A slice through the volume, its orientation letters, crosshair, scale and position."""

    cursor_moved = Signal(object, object)
    """(point_lps: ndarray | None, hu: float | None) — the mouse is over this point."""
    crosshair_moved = Signal(object)
    """(point_lps: ndarray) — the user moved the linked crosshair (click, drag, scroll)."""
    window_level_requested = Signal(float, float)
    """(width_hu, level_hu) — the user dragged the display window."""
    needle_dragged = Signal(str, object, str, object)
    """(level, Side, part, lps) during a drag: part "entry"/"target" is that point's new
    place; "needle" moves the whole needle and gives its new entry."""
    needle_drag_finished = Signal()
    needle_picked = Signal(str, object)
    """(level, Side) — a click on a needle without moving it: select it."""
    point_placed = Signal(object)
    """(lps) — a click while placing a new needle (its entry, then its target)."""

    def __init__(self, plane: ViewPlane, color: QColor, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.plane = plane
        self.color = QColor(color)
        self.setObjectName(f"mpr{plane.name}")
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumSize(160, 160)

        self._volume: Volume | None = None
        self._crosshair_lps = np.zeros(3)
        self._focus_lps = np.zeros(3)  # the point shown at the view centre
        self._pixel_mm = 1.0
        self._window, self._level = BONE_WINDOW_HU
        self._linked: list[tuple[ViewPlane, QColor]] = []
        self._image_hu: np.ndarray | None = None
        self._image_key: tuple | None = None
        self._qimage: QImage | None = None
        self._drag: str | None = None
        self._drag_start = QPointF()
        self._drag_state: tuple = ()
        self._wheel_rest = 0
        self._fitted = False
        # planning overlays (given by the main window, never edited here)
        self._init_needle_layers()
        self._outlines: list[Outline] = []
        self._outline_cache = OutlineCache()
        self._level_marks: dict[str, FloatArray] = {}
        self._editable = True
        self._placing = False
        self._pending_entry: FloatArray | None = None
        self._hover: QPointF | None = None
        self._needle_drag: tuple | None = None  # (level, side, part, start lps, moved)
        self._needle_tip = ""

    # ---- state set by the controller (never emits) --------------------------------
    def set_volume(self, volume: Volume | None) -> None:
        """Show a new volume, centred and zoomed to fit, crosshair at its centre."""
        self._volume = volume
        self._image_key = None
        if volume is not None:
            self._crosshair_lps = volume.center_lps()
            self._focus_lps = self._crosshair_lps.copy()
        self._fitted = False
        self.reset_view()

    def set_crosshair(self, point_lps: FloatArray) -> None:
        """Move the linked crosshair (and so this view's slice) to a point."""
        p = np.asarray(point_lps, dtype=np.float64)
        if np.array_equal(p, self._crosshair_lps):
            return
        self._crosshair_lps = p.copy()
        self.update()

    def set_window_level(self, window: float, level: float) -> None:
        if (window, level) == (self._window, self._level):
            return
        self._window, self._level = float(window), float(level)
        self._qimage = None
        self.update()

    def set_linked_planes(self, planes: list[tuple[ViewPlane, QColor]]) -> None:
        """The other views whose slice lines are drawn through the crosshair."""
        self._linked = list(planes)
        self.update()

    def set_outlines(self, outlines: list[Outline]) -> None:
        """Structures outlined in every slice (the canal, the vertebra being edited)."""
        self._outline_cache.replace(self._outlines, outlines)
        self._outlines = list(outlines)
        self.update()

    def set_level_marks(self, marks: dict[str, FloatArray]) -> None:
        """Level name → body centre (LPS): names drawn beside the vertebrae."""
        self._level_marks = {k: np.asarray(v, dtype=np.float64) for k, v in marks.items()}
        self.update()

    def set_editable(self, editable: bool) -> None:
        self._editable = editable
        self.update()

    def set_placing(self, placing: bool, pending_entry_lps: FloatArray | None = None) -> None:
        """Placing mode: clicks place points; with an entry pending, a line follows the
        mouse from it to show the needle being placed."""
        self._placing = placing
        self._pending_entry = (None if pending_entry_lps is None
                               else np.asarray(pending_entry_lps, dtype=np.float64))
        self.setCursor(Qt.CursorShape.CrossCursor if placing else Qt.CursorShape.ArrowCursor)
        self.update()

    def current_level(self) -> str | None:
        """The level of this slice, for the title (`planning.anatomy.model.level_at`)."""
        return level_at(self._level_marks, self._crosshair_lps, self.plane.normal_lps)

    def reset_view(self) -> None:
        """Centre on the crosshair and zoom so the whole volume fits."""
        if self._volume is not None and self.width() > 0:
            self._focus_lps = self._volume.center_lps()
            self._pixel_mm = fit_pixel_mm(self._volume, self.plane, self.width(), self.height())
            self._pixel_mm *= 1.04  # a small margin so the edge letters do not cover bone
            self._fitted = self.isVisible()
        self.update()

    # ---- read-only state ------------------------------------------------------------
    @property
    def volume(self) -> Volume | None:
        return self._volume

    @property
    def crosshair_lps(self) -> FloatArray:
        return self._crosshair_lps.copy()

    @property
    def window_level(self) -> tuple[float, float]:
        return self._window, self._level

    @property
    def pixel_mm(self) -> float:
        return self._pixel_mm

    @property
    def orientation_letters(self) -> dict[str, str]:
        """Letters at the screen edges, keys "left", "right", "top", "bottom"."""
        return orientation_letters(self.plane)

    @property
    def slice_position_mm(self) -> float:
        """Crosshair coordinate (LPS mm) along the LPS axis this view scrolls through."""
        return float(self._crosshair_lps[self._normal_axis])

    @property
    def _normal_axis(self) -> int:
        return int(np.argmax(np.abs(self.plane.normal_lps)))

    def slice_geometry(self) -> SliceGeometry:
        """Where each widget pixel lies in the patient, for the current slice."""
        n = self.plane.normal_lps
        centre = self._focus_lps + float((self._crosshair_lps - self._focus_lps) @ n) * n
        return SliceGeometry(
            self.plane, centre, max(self.width(), 1), max(self.height(), 1), self._pixel_mm
        )

    def widget_to_lps(self, pos: QPointF) -> FloatArray:
        return self.slice_geometry().pixel_to_lps((pos.x() - 0.5, pos.y() - 0.5))

    def lps_to_widget(self, point_lps: FloatArray) -> QPointF:
        x, y = self.slice_geometry().lps_to_pixel(point_lps)
        return QPointF(float(x) + 0.5, float(y) + 0.5)

    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    # ---- rendering ------------------------------------------------------------------
    def _ensure_image(self) -> QImage | None:
        """Reslice only when the plane, zoom, pan or size changed; re-window otherwise.

        The image is sampled at device pixels (sharp on high-DPI screens) while every
        interaction works in logical widget pixels.
        """
        if self._volume is None:
            return None
        dpr = self.devicePixelRatioF()
        logical = self.slice_geometry()
        geometry = SliceGeometry(
            self.plane, logical.center_lps, max(1, round(logical.width_px * dpr)),
            max(1, round(logical.height_px * dpr)), logical.pixel_mm / dpr,
        )
        key = (
            tuple(np.round(geometry.center_lps, 6)),
            round(geometry.pixel_mm, 9),
            geometry.width_px,
            geometry.height_px,
            id(self._volume),
        )
        if key != self._image_key:
            self._image_hu = reslice(self._volume, geometry)
            self._image_key = key
            self._qimage = None
        if self._qimage is None and self._image_hu is not None:
            grey = np.ascontiguousarray(
                window_to_uint8(self._image_hu, self._window, self._level)
            )
            h, w = grey.shape
            # converted once to the screen's format: drawing a grey image converts it on
            # every paint, and a drag repaints many times a second
            self._qimage = QImage(grey.data, w, h, w, QImage.Format.Format_Grayscale8
                                  ).convertToFormat(QImage.Format.Format_RGB32)
            self._qimage.setDevicePixelRatio(dpr)
        return self._qimage

    def showEvent(self, event: QShowEvent) -> None:
        if not self._fitted:
            self.reset_view()
        super().showEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        if event.oldSize().width() > 0 and event.oldSize().height() > 0 and self._fitted:
            # keep the same anatomy visible: scale the zoom with the smaller dimension
            old = min(event.oldSize().width(), event.oldSize().height())
            new = min(event.size().width(), event.size().height())
            if new > 0:
                self._pixel_mm *= old / new
        else:
            self.reset_view()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        with widget_painter(self) as painter:
            self._paint(painter)

    def _paint(self, painter: QPainter) -> None:
        painter.fillRect(self.rect(), BACKGROUND)
        image = self._ensure_image()
        if image is None:
            paint_title(painter, self, self._title(), self.color)
            paint_centre_text(painter, self, "No image loaded\nFile ▸ Open DICOM folder…")
            return
        painter.drawImage(0, 0, image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        paint_slice_lines(painter, self.lps_to_widget(self._crosshair_lps), self.plane,
                          self._linked, float(self.width() + self.height()))
        self._paint_plan(painter)
        paint_title(painter, self, self._title(), self.color)
        paint_edge_letters(painter, self, self.orientation_letters)
        # a bar of a round length near 1/5 of the view width, labelled in mm
        scale_bar(painter, self.width() - 16.0, self.height() - 40.0, self._pixel_mm,
                  self.width(), sized_font(self, 9))
        paint_info(painter, self, self._info_lines(), self._window, self._level)
        if self.hasFocus():
            painter.setPen(QPen(self.color, 2))
            painter.drawRect(QRectF(self.rect()).adjusted(1, 1, -1, -1))

    def _paint_plan(self, painter: QPainter) -> None:
        geometry = self.slice_geometry()
        for outline in self._outlines:
            paint_outline(painter, outline, self._outline_cache.paths(outline, geometry))
        paint_level_marks(painter, geometry, self._level_marks, sized_font(self, 9, bold=True))
        font = sized_font(self, 9, bold=True)
        for needle in self._reference:
            paint_reference(painter, needle, geometry, font)
        for needle in sorted(self._needles, key=lambda nd: nd.selected):
            paint_needle(painter, needle, geometry, font, self._editable)
        if self._placing and self._pending_entry is not None:
            paint_pending_entry(painter, widget_xy(geometry, self._pending_entry), self._hover)

    def _title(self) -> str:
        level = self.current_level() if abs(float(self.plane.normal_lps[2])) > 0.7 else None
        return f"{self.plane.name} · {level}" if level else self.plane.name

    def _info_lines(self) -> list[str]:
        lines = [f"{LPS_AXIS[self._normal_axis]} = {self.slice_position_mm:.1f} mm (LPS)"]
        slice_text = slice_number_text(self._volume, self.plane, self._crosshair_lps)
        return [slice_text, *lines] if slice_text else lines

    # ---- user input -----------------------------------------------------------------
    def _emit_cursor(self, pos: QPointF) -> None:
        if self._volume is None:
            self.cursor_moved.emit(None, None)
            return
        lps = self.widget_to_lps(pos)
        self.cursor_moved.emit(lps, self._volume.hu_at(lps))

    def _move_crosshair(self, point_lps: FloatArray) -> None:
        self._crosshair_lps = np.asarray(point_lps, dtype=np.float64).copy()
        self.update()
        self.crosshair_moved.emit(self._crosshair_lps.copy())

    def scroll_slices(self, steps: int) -> None:
        """Move this view's slice by whole voxel steps along its normal."""
        if self._volume is None or steps == 0:
            return
        step = slice_step_mm(self._volume, self.plane)
        self._move_crosshair(self._crosshair_lps + steps * step * self.plane.normal_lps)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        """Zoom in (factor > 1) keeping the point under ``anchor`` fixed on screen."""
        if self._volume is None:
            return
        anchor = anchor if anchor is not None else QPointF(self.width() / 2, self.height() / 2)
        fixed_lps = self.widget_to_lps(anchor)
        self._pixel_mm = float(np.clip(self._pixel_mm / factor, MIN_PIXEL_MM, MAX_PIXEL_MM))
        moved_lps = self.widget_to_lps(anchor)
        self._focus_lps = self._focus_lps + (fixed_lps - moved_lps)
        self.update()

    def pan_by(self, dx_px: float, dy_px: float) -> None:
        """Drag the image by a screen offset in pixels."""
        self._focus_lps = self._focus_lps - self._pixel_mm * (
            dx_px * self.plane.right_lps + dy_px * self.plane.down_lps
        )
        self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos, button, mods = event.position(), event.button(), event.modifiers()
        k = Qt.KeyboardModifier
        plain_left = button == Qt.MouseButton.LeftButton and not (
            mods & (k.ShiftModifier | k.ControlModifier))
        if plain_left and self._volume is not None and self._placing:
            self._drag = None
            self.point_placed.emit(self.widget_to_lps(pos))
            event.accept()
            return
        hit = (pick_needle(self._needles, self.slice_geometry(), pos)
               if plain_left and self._editable and self._volume is not None else None)
        if hit is not None:
            needle, part = hit
            start = needle.target_lps if part == "target" else needle.entry_lps
            self._drag = "needle"
            self._needle_drag = (needle.level, needle.side, part,
                                 np.asarray(start, dtype=np.float64).copy(), False)
            self._drag_start = pos
            event.accept()
            return
        if button == Qt.MouseButton.MiddleButton or (
            button == Qt.MouseButton.LeftButton and mods & k.ShiftModifier
        ):
            self._drag = "pan"
        elif button == Qt.MouseButton.RightButton:
            self._drag = "zoom"
            self._drag_state = (self._pixel_mm, self._focus_lps.copy())
        elif button == Qt.MouseButton.LeftButton and mods & k.ControlModifier:
            self._drag = "window"
            self._drag_state = (self._window, self._level)
        elif button == Qt.MouseButton.LeftButton:
            self._drag = "crosshair"
            if self._volume is not None:
                self._move_crosshair(self.widget_to_lps(pos))
        self._drag_start = pos
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        delta = pos - self._drag_start
        self._hover = pos
        if self._drag == "needle" and self._needle_drag is not None:
            level, side, part, start, _moved = self._needle_drag
            if abs(delta.x()) + abs(delta.y()) >= 1.0:
                shift = self._pixel_mm * (delta.x() * self.plane.right_lps
                                          + delta.y() * self.plane.down_lps)
                self._needle_drag = (level, side, part, start, True)
                self.needle_dragged.emit(level, side, part, start + shift)
        elif self._drag is None and not self._placing and self._editable:
            over = pick_needle(self._needles, self.slice_geometry(), pos)
            self.setCursor(Qt.CursorShape.ArrowCursor if over is None else
                           Qt.CursorShape.SizeAllCursor if over[1] == "needle" else
                           Qt.CursorShape.PointingHandCursor)
            tip = "" if over is None else over[0].summary
            if tip != self._needle_tip:  # the needle's checks in words while hovering it
                self._needle_tip = tip
                if tip:
                    QToolTip.showText(event.globalPosition().toPoint(), tip, self)
                else:
                    QToolTip.hideText()
        if self._placing and self._pending_entry is not None:
            self.update()
        if self._drag == "crosshair" and self._volume is not None:
            self._move_crosshair(self.widget_to_lps(pos))
        elif self._drag == "pan":
            self.pan_by(delta.x(), delta.y())
            self._drag_start = pos
        elif self._drag == "zoom":
            pixel_mm, focus = self._drag_state
            self._pixel_mm, self._focus_lps = pixel_mm, focus.copy()
            self.zoom_by(math.exp(-delta.y() / 150.0), self._drag_start)
        elif self._drag == "window":
            window, level = self._drag_state
            new_window = max(1.0, window + 4.0 * delta.x())
            new_level = level - 2.0 * delta.y()
            self.set_window_level(new_window, new_level)
            self.window_level_requested.emit(new_window, new_level)
        self._emit_cursor(pos)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag == "needle" and self._needle_drag is not None:
            level, side, _part, _start, moved = self._needle_drag
            self._needle_drag = None
            if moved:
                self.needle_drag_finished.emit()
            else:
                self.needle_picked.emit(level, side)
        self._drag = None
        event.accept()

    def leaveEvent(self, event: QEvent) -> None:
        self.cursor_moved.emit(None, None)
        super().leaveEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        self._wheel_rest += event.angleDelta().y()
        steps = int(self._wheel_rest / 120)
        if steps == 0:
            return
        self._wheel_rest -= steps * 120
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.zoom_by(ZOOM_PER_WHEEL_STEP**steps, event.position())
        else:
            self.scroll_slices(steps)
        self._emit_cursor(event.position())
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = Qt.Key
        steps = {key.Key_PageUp: 1, key.Key_Up: 1, key.Key_PageDown: -1, key.Key_Down: -1}
        if event.key() in steps:
            self.scroll_slices(steps[event.key()])
            event.accept()
        else:
            super().keyPressEvent(event)
