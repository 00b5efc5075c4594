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

Redraws are cheap because the needle follows the user's drag live: each pane samples at
most ~300×300 points and no closer than half a voxel (then Qt scales up smoothly), and keeps
its HU image and canal outline until the plane, centre, scale, size, volume or canal
changes; a new window/level only re-maps the cached HU. About 15 ms per needle move for
both panes on the demo CT (one idle core).

Mouse: left click or drag in the along pane sets the depth; the wheel turns the along plane
(5° a notch) over the along pane and moves the depth (1 mm a notch) over the probe pane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QImage,
    QMouseEvent,
    QPainter,
    QPainterPath,
    QPaintEvent,
    QPen,
    QPolygonF,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QStackedLayout,
    QVBoxLayout,
    QWidget,
)
from scipy.ndimage import gaussian_filter
from skimage.measure import find_contours

from planning.mask_reslice import reslice_labels
from planning.reslice import SliceGeometry, ViewPlane, orientation_letters, reslice
from planning.vocabulary import BONE_WINDOW_HU, CANAL_COLOR, STATUS_WORDS
from planning.volume import FloatArray, Volume
from widgets.mpr_view import window_to_uint8
from widgets.painting import SHADOW, TEXT, backdrop, scale_bar, shadowed_text, sized_font
from widgets.plan_display import NeedleDisplay

HINT_TEXT = "Select a needle to see it here"
BACKGROUND = QColor("#000000")
HEADER_BACKGROUND = QColor("#16181c")
MUTED_TEXT = QColor("#8a93a0")
LETTER_COLOR = QColor("#ffd866")
ALONG_COLOR = QColor("#9fa8da")  # the along-the-needle plane, and its trace in the probe pane
PROBE_COLOR = QColor("#f5f7fa")  # the probe plane, and its trace (the depth line)

HEADER_PX = 38
"""Height of each pane's title strip (two rows); the image lies below it, never under it."""
LETTER_MARGIN_PX = 28.0
"""Lines drawn across the image stop this far from its edges, clear of the edge letters."""
SCALE_BAR_CLEARANCE_PX = 40.0
"""…and this far from the bottom edge, clear of the scale bar and its label."""
MAX_SAMPLES = 300
"""Most samples along either side of a pane's image; larger panes are scaled up."""
FINEST_SAMPLE_VOXELS = 0.5
"""Finest sample spacing, in voxels: closer samples would only re-interpolate the same
voxels (trilinear is smooth between them), and the needle view is zoomed far beyond the
voxel size, so this bounds the work per update; Qt's smooth scaling fills the pixels."""
MIN_FIELD_MM = 50.0
"""Smallest field of view along the needle, so a short needle still shows its vertebra."""
ROTATION_STEP_DEG = 5.0
DEPTH_STEP_MM = 1.0
DEPTH_SLIDER_PER_MM = 10  # slider units per mm: 0.1 mm resolution


# ---- geometry of the needle's planes (pure numpy; LPS mm) ---------------------------------
def needle_reference_frame(direction_lps: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Screen-right and plane normal of the along-the-needle plane at 0° rotation.

    The normal is the superior axis with its component along the needle removed: of all
    planes containing the needle, this one is closest to the axial plane, and with the
    normal pointing superior it is seen from the feet, like the axial view. A needle running
    cranio-caudally has no such plane; then the patient's left axis takes the place of
    superior (a sagittal-like view), which real trajectories never need.
    """
    d = _unit(direction_lps)
    for reference in (np.array([0.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0])):
        normal = reference - float(reference @ d) * d
        if float(np.linalg.norm(normal)) > 1e-3:
            normal = normal / np.linalg.norm(normal)
            return np.cross(d, normal), normal
    raise AssertionError("unreachable: S and L cannot both be parallel to one direction")


def rotated_right_lps(direction_lps: FloatArray, rotation_deg: float) -> FloatArray:
    """Screen-right of the along plane turned by ``rotation_deg`` about the needle.

    Chosen so that the plane normal turns by +``rotation_deg`` about the needle direction
    (right-hand rule), i.e. clockwise as seen in the probe's-eye pane.
    """
    right0, normal0 = needle_reference_frame(direction_lps)
    a = math.radians(rotation_deg)
    return math.cos(a) * right0 - math.sin(a) * normal0


def along_plane(direction_lps: FloatArray, rotation_deg: float) -> ViewPlane:
    """The plane containing the needle: screen-down along the needle (entry at the top)."""
    d = _unit(direction_lps)
    return ViewPlane("Along the needle", rotated_right_lps(d, rotation_deg), d)


def probe_plane(direction_lps: FloatArray) -> ViewPlane:
    """The plane across the needle, seen from the entry (its normal is the needle direction).

    Screen-right is the 0° along plane's screen-right, so at 0° the along plane cuts this
    view along a horizontal line through the centre.
    """
    d = _unit(direction_lps)
    right0, _ = needle_reference_frame(d)
    return ViewPlane("Probe's eye", right0, np.cross(d, right0))


def needle_caption(needle: NeedleDisplay) -> str:
    """"L1 L — Safe, 3.2 mm": level, side, check status and canal clearance if known."""
    text = f"{needle.label} — {STATUS_WORDS[needle.status]}"
    if needle.badge:
        text += f", {needle.badge}"
    return text


def _unit(vector: FloatArray) -> FloatArray:
    v = np.asarray(vector, dtype=np.float64)
    n = float(np.linalg.norm(v))
    if v.shape != (3,) or not math.isfinite(n) or n < 1e-9:
        raise ValueError(f"a needle direction must be a finite non-zero 3-vector, got {vector!r}")
    return v / n


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


# ---- one image pane ---------------------------------------------------------------------
@dataclass(frozen=True)
class _Sampled:
    """A pane's cached picture: HU at the sample grid, and the canal outline (widget px)."""

    key: tuple
    geometry: SliceGeometry  # of the samples, not of the pane's pixels
    image_hu: NDArray[np.float32]
    canal_path: QPainterPath | None


class SlicePane(QWidget):
    """One image pane of the needle view: title strip, CT, canal outline, letters, scale.

    What is on the plane comes from the owning `NeedleView` (its geometry and overlay); the
    pane keeps only the sampled image cache.
    """

    pressed_at = Signal(object)
    """(point_lps: ndarray) — left press or drag over the image."""
    wheel_turned = Signal(int)
    """(notches: int) — whole wheel notches, positive away from the user."""

    def __init__(self, owner: NeedleView, title: str, accent: QColor) -> None:
        super().__init__(owner)
        self._owner = owner
        self.title = title
        self.accent = QColor(accent)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(140, 160)
        self._sampled: _Sampled | None = None
        self._grey: QImage | None = None
        self._grey_wl: tuple[float, float] | None = None
        self._wheel_rest = 0

    # ---- geometry -----------------------------------------------------------------------
    def image_rect(self) -> QRectF:
        """The part of the pane the CT is drawn in (below the title strip), widget px."""
        return QRectF(0.0, HEADER_PX, max(self.width(), 1), max(self.height() - HEADER_PX, 1))

    def geometry_lps(self) -> SliceGeometry | None:
        """Where each pixel of ``image_rect`` lies in LPS (pixel (0, 0) at its top left)."""
        return self._owner._pane_geometry(self)

    def to_widget(self, geometry: SliceGeometry, point_lps: FloatArray) -> QPointF:
        """LPS point (projected on the plane) → widget coordinates."""
        x, y = geometry.lps_to_pixel(point_lps)
        r = self.image_rect()
        return QPointF(r.left() + float(x) + 0.5, r.top() + float(y) + 0.5)

    def orientation_letters(self) -> dict[str, str] | None:
        """Letters at the image's edges, from the plane's actual LPS directions."""
        g = self.geometry_lps()
        return None if g is None else orientation_letters(g.plane)

    def invalidate(self) -> None:
        """Forget the sampled image (new volume or canal); the next paint resamples."""
        self._sampled = None
        self._grey = None
        self.update()

    def sampled(self) -> tuple[SliceGeometry, NDArray[np.float32]] | None:
        """The HU image as sampled (at most ~300×300) and where its pixels lie in LPS."""
        s = self._ensure_sampled()
        return None if s is None else (s.geometry, s.image_hu)

    def _ensure_sampled(self) -> _Sampled | None:
        """Resample only when plane, centre, scale, size, volume or canal changed."""
        volume = self._owner._volume
        g = self.geometry_lps()
        if volume is None or g is None:
            return None
        finest_mm = FINEST_SAMPLE_VOXELS * float(volume.spacing_mm.min())
        factor = min(self.devicePixelRatioF(), MAX_SAMPLES / max(g.width_px, g.height_px),
                     g.pixel_mm / finest_mm)
        sample = SliceGeometry(g.plane, g.center_lps, max(1, round(g.width_px * factor)),
                               max(1, round(g.height_px * factor)), g.pixel_mm / factor)
        key = (
            self._owner._volume_generation, self._owner._canal_generation,
            tuple(np.round(sample.center_lps, 6)), tuple(np.round(sample.plane.right_lps, 9)),
            tuple(np.round(sample.plane.down_lps, 9)), sample.width_px, sample.height_px,
            round(sample.pixel_mm, 9), g.width_px, g.height_px,
        )
        if self._sampled is not None and self._sampled.key == key:
            return self._sampled
        image_hu = reslice(volume, sample)
        path = self._canal_outline(sample, g, factor)
        self._sampled = _Sampled(key, sample, image_hu, path)
        self._grey = None
        return self._sampled

    def _canal_outline(
        self, sample: SliceGeometry, pane: SliceGeometry, factor: float
    ) -> QPainterPath | None:
        """The canal's cut as a path in widget coordinates (sub-pixel, from the samples)."""
        canal = self._owner._canal
        if canal is None:
            return None
        mask = reslice_labels(canal[0], canal[1], sample)
        if not mask.any():
            return None
        # a light blur (half a voxel) rounds the voxel staircase the way the surface of
        # the 3-D view is rounded, and moves the outline by less than half a voxel
        sigma = 0.5 * float(np.linalg.norm(canal[1][:3, :3], axis=0).min()) / sample.pixel_mm
        field = gaussian_filter(mask.astype(np.float32), sigma) if sigma > 0.3 else mask
        r = self.image_rect()
        # sample pixel (col, row) centre → widget coordinates, the samples centred on the pane
        x0 = r.left() + pane.width_px / 2.0 - (sample.width_px - 1) / (2.0 * factor)
        y0 = r.top() + pane.height_px / 2.0 - (sample.height_px - 1) / (2.0 * factor)
        path = QPainterPath()
        for contour in find_contours(np.asarray(field, dtype=np.float32), 0.5):
            pts = [QPointF(x0 + c / factor, y0 + row / factor) for row, c in contour]
            path.addPolygon(QPolygonF(pts))
        return path

    def _grey_image(self, sampled: _Sampled) -> QImage:
        wl = self._owner.window_level
        if self._grey is None or self._grey_wl != wl:
            grey = np.ascontiguousarray(window_to_uint8(sampled.image_hu, *wl))
            h, w = grey.shape
            # RGB32 scales and draws twice as fast as Grayscale8 in the raster engine
            self._grey = QImage(grey.data, w, h, w, QImage.Format.Format_Grayscale8
                                ).convertToFormat(QImage.Format.Format_RGB32)
            self._grey_wl = wl
        return self._grey

    def sizeHint(self) -> QSize:
        return QSize(260, 360)

    # ---- painting -------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        painter.fillRect(self.rect(), BACKGROUND)
        rect = self.image_rect()
        geometry = self.geometry_lps()
        sampled = self._ensure_sampled()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if geometry is None or sampled is None:
            self._paint_header(painter)
            text = "No image loaded" if self._owner._volume is None else ""
            self._centre_text(painter, rect, text)
            return
        painter.save()
        painter.setClipRect(rect)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        factor = geometry.pixel_mm / sampled.geometry.pixel_mm  # samples per widget px
        w = sampled.geometry.width_px / factor
        h = sampled.geometry.height_px / factor
        target = QRectF(rect.left() + (geometry.width_px - w) / 2.0,
                        rect.top() + (geometry.height_px - h) / 2.0, w, h)
        painter.drawImage(target, self._grey_image(sampled))
        if sampled.canal_path is not None:
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(SHADOW, 3.0))
            painter.drawPath(sampled.canal_path)
            painter.setPen(QPen(QColor(CANAL_COLOR), 1.6))
            painter.drawPath(sampled.canal_path)
        self._owner._paint_overlay(self, painter, geometry)
        self._paint_letters(painter, geometry)
        self._paint_scale_bar(painter, geometry)
        painter.restore()
        self._paint_header(painter)

    def _font(self, point_size: float, bold: bool = False) -> QFont:
        return sized_font(self, point_size, bold)

    def _text(self, painter: QPainter, rect: QRectF, flags: Qt.AlignmentFlag, text: str,
              color: QColor = TEXT) -> None:
        shadowed_text(painter, rect, flags, text, color)

    def _backdrop(self, painter: QPainter, rect: QRectF) -> None:
        backdrop(painter, rect)

    def _centre_text(self, painter: QPainter, rect: QRectF, text: str) -> None:
        if text:
            painter.setFont(self._font(11))
            self._text(painter, rect, Qt.AlignmentFlag.AlignCenter, text, MUTED_TEXT)

    def _paint_header(self, painter: QPainter) -> None:
        """Two rows the image never covers: title and pane state, then the needle caption.

        The caption has a row of its own so that it is never cut short in a narrow pane,
        and the image itself carries nothing but letters, scale and the needle.
        """
        painter.fillRect(QRectF(0, 0, self.width(), HEADER_PX), HEADER_BACKGROUND)
        painter.fillRect(QRectF(0, 0, 4, HEADER_PX), self.accent)
        painter.setPen(QPen(QColor("#2c313a"), 1))
        painter.drawLine(QPointF(0, HEADER_PX - 0.5), QPointF(self.width(), HEADER_PX - 0.5))
        a = Qt.AlignmentFlag
        row = HEADER_PX / 2.0
        painter.setFont(self._font(9, bold=True))
        painter.setPen(self.accent)
        painter.drawText(QRectF(10, 1, self.width() - 18, row), int(a.AlignLeft | a.AlignVCenter),
                         self.title)
        title_w = QFontMetricsF(painter.font()).horizontalAdvance(self.title)
        painter.setFont(self._font(9))
        fm = QFontMetricsF(painter.font())
        info = self._owner._pane_info(self)
        if info:
            room = max(self.width() - 18 - title_w - 12, 0.0)
            painter.setPen(MUTED_TEXT)
            painter.drawText(QRectF(0, 1, self.width() - 8, row),
                             int(a.AlignRight | a.AlignVCenter),
                             fm.elidedText(info, Qt.TextElideMode.ElideRight, room))
        caption, color = self._owner._caption()
        if caption:
            painter.setPen(color)
            painter.drawText(QRectF(10, row - 1, self.width() - 18, row),
                             int(a.AlignLeft | a.AlignVCenter),
                             fm.elidedText(caption, Qt.TextElideMode.ElideRight,
                                           max(self.width() - 18.0, 0.0)))

    def _paint_letters(self, painter: QPainter, geometry: SliceGeometry) -> None:
        painter.setFont(self._font(13, bold=True))
        fm = QFontMetricsF(painter.font())
        letters = orientation_letters(geometry.plane)
        r, m = self.image_rect(), 6.0
        a = Qt.AlignmentFlag
        for edge, text in letters.items():
            w, h = fm.horizontalAdvance(text) + 2, fm.height()
            box = {
                "left": QRectF(r.left() + m, r.center().y() - h / 2, w, h),
                "right": QRectF(r.right() - m - w, r.center().y() - h / 2, w, h),
                "top": QRectF(r.center().x() - w / 2, r.top() + m, w, h),
                "bottom": QRectF(r.center().x() - w / 2, r.bottom() - m - h, w, h),
            }[edge]
            self._text(painter, box, a.AlignCenter, text, LETTER_COLOR)

    def _paint_scale_bar(self, painter: QPainter, geometry: SliceGeometry) -> None:
        """A bar of a round length near 1/5 of the pane width, labelled in mm."""
        r = self.image_rect()
        scale_bar(painter, r.right() - 12.0, r.bottom() - 12.0, geometry.pixel_mm, r.width(),
                  self._font(8.5), tick_px=4.0)

    # ---- input --------------------------------------------------------------------------
    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._emit_press(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._emit_press(event)

    def _emit_press(self, event: QMouseEvent) -> None:
        g = self.geometry_lps()
        if g is None or event.buttons() != Qt.MouseButton.LeftButton:
            return
        r = self.image_rect()
        pos = event.position()
        self.pressed_at.emit(g.pixel_to_lps((pos.x() - r.left() - 0.5, pos.y() - r.top() - 0.5)))
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        self._wheel_rest += event.angleDelta().y()
        notches = int(self._wheel_rest / 120)
        if notches:
            self._wheel_rest -= notches * 120
            self.wheel_turned.emit(notches)
        event.accept()


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

        self.along_pane = SlicePane(self, "Along the needle", ALONG_COLOR)
        self.probe_pane = SlicePane(self, "Probe's eye", PROBE_COLOR)
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
    def depth_text(self) -> str:
        """"depth 23.5 of 48.0 mm", as shown beside the depth slider."""
        if self._needle is None:
            return "depth —"
        return f"depth {self._depth_mm:.1f} of {_needle_length_mm(self._needle):.1f} mm"

    def along_geometry(self) -> SliceGeometry | None:
        """Where each pixel of the along pane's image lies in LPS (None without a needle).

        Centred on the needle's midpoint; its centre column is the needle axis, entry up.
        """
        return self._pane_geometry(self.along_pane)

    def probe_geometry(self) -> SliceGeometry | None:
        """Where each pixel of the probe pane's image lies in LPS (None without a needle).

        Centred on entry + depth × direction; the plane normal is the needle direction.
        """
        return self._pane_geometry(self.probe_pane)

    def sizeHint(self) -> QSize:
        return QSize(520, 420)

    # ---- internals shared with the panes ---------------------------------------------------
    def _pixel_mm(self) -> float:
        """One scale for both panes: the needle plus margins fills the along pane's height."""
        assert self._needle is not None
        length = _needle_length_mm(self._needle)
        field_mm = max(length + 2.0 * max(10.0, 0.2 * length), MIN_FIELD_MM)
        height = self.along_pane.image_rect().height() if self.along_pane.height() > 0 else 300
        return field_mm / max(float(height), 1.0)

    def _pane_geometry(self, pane: SlicePane) -> SliceGeometry | None:
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

    def _caption(self) -> tuple[str, QColor]:
        if self._needle is None:
            return "", TEXT
        return needle_caption(self._needle), self._needle.color

    def _pane_info(self, pane: SlicePane) -> str:
        if self._needle is None:
            return ""
        if pane is self.along_pane:
            return f"rotation {self._rotation_deg:.0f}°"
        return f"depth {self._depth_mm:.1f} mm"

    def _paint_overlay(self, pane: SlicePane, painter: QPainter, geometry: SliceGeometry) -> None:
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

        painter.setFont(pane._font(8.5))
        a = Qt.AlignmentFlag
        fm = QFontMetricsF(painter.font())
        for text, y in (("entry", entry.y()), ("tip", tip.y())):
            box = QRectF(x - tick - 4 - fm.horizontalAdvance(text), y - fm.height() / 2,
                         fm.horizontalAdvance(text), fm.height())
            pane._text(painter, box, a.AlignRight | a.AlignVCenter, text, color)

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
        pane._backdrop(painter, box)
        pane._text(painter, box, a.AlignLeft | a.AlignVCenter, label, PROBE_COLOR)

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
