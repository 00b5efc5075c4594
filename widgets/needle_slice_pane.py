"""One image pane of the needle view: its CT cut, the canal's outline, letters and scale.

Kept apart from `needle_view` (which chooses the planes and draws the needle over them) so
each stays small: a pane only samples, caches and paints what its owner's plane shows, and
turns presses and wheel notches into signals.

Redraws are cheap because the needle follows the user's drag live: a pane samples at most
~300×300 points and no closer than half a voxel (then Qt scales up smoothly), and keeps its
HU image and canal outline until the plane, centre, scale, size, volume or canal changes; a
new window/level only re-maps the cached HU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
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
from PySide6.QtWidgets import QSizePolicy, QWidget

from planning.reslice import SliceGeometry, orientation_letters, reslice
from planning.slice_contours import smoothed_contours_px
from planning.vocabulary import CANAL_COLOR
from planning.volume import FloatArray, Volume
from widgets.mpr_view import window_to_uint8
from widgets.painting import SHADOW, scale_bar, shadowed_text, sized_font, widget_painter

BACKGROUND = QColor("#000000")
HEADER_BACKGROUND = QColor("#16181c")
MUTED_TEXT = QColor("#8a93a0")
LETTER_COLOR = QColor("#ffd866")

HEADER_PX = 38
"""Height of each pane's title strip (two rows); the image lies below it, never under it."""
MAX_SAMPLES = 300
"""Most samples along either side of a pane's image; larger panes are scaled up."""
FINEST_SAMPLE_VOXELS = 0.5
"""Finest sample spacing, in voxels: closer samples would only re-interpolate the same
voxels (trilinear is smooth between them), and the needle view is zoomed far beyond the
voxel size, so this bounds the work per update; Qt's smooth scaling fills the pixels."""


class PaneOwner(Protocol):
    """What a pane reads from the view that owns it (`widgets.needle_view.NeedleView`)."""

    @property
    def volume(self) -> Volume | None: ...
    @property
    def canal(self) -> tuple[NDArray[np.bool_], FloatArray] | None: ...
    @property
    def generation(self) -> tuple[int, int]:
        """(volume, canal) counters: a pane resamples when either changed."""
        ...
    @property
    def window_level(self) -> tuple[float, float]: ...
    def pane_geometry(self, pane: SlicePane) -> SliceGeometry | None: ...
    def pane_info(self, pane: SlicePane) -> str: ...
    def caption(self) -> tuple[str, QColor]: ...
    def paint_overlay(self, pane: SlicePane, painter: QPainter,
                      geometry: SliceGeometry) -> None: ...


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

    def __init__(self, owner: PaneOwner, title: str, accent: QColor,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
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
        return self._owner.pane_geometry(self)

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
        volume = self._owner.volume
        g = self.geometry_lps()
        if volume is None or g is None:
            return None
        finest_mm = FINEST_SAMPLE_VOXELS * float(volume.spacing_mm.min())
        factor = min(self.devicePixelRatioF(), MAX_SAMPLES / max(g.width_px, g.height_px),
                     g.pixel_mm / finest_mm)
        sample = SliceGeometry(g.plane, g.center_lps, max(1, round(g.width_px * factor)),
                               max(1, round(g.height_px * factor)), g.pixel_mm / factor)
        key = (
            *self._owner.generation,
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
        canal = self._owner.canal
        contours = None if canal is None else smoothed_contours_px(canal[0], canal[1], sample)
        if contours is None:
            return None
        r = self.image_rect()
        # sample pixel (col, row) centre → widget coordinates, the samples centred on the pane
        x0 = r.left() + pane.width_px / 2.0 - (sample.width_px - 1) / (2.0 * factor)
        y0 = r.top() + pane.height_px / 2.0 - (sample.height_px - 1) / (2.0 * factor)
        path = QPainterPath()
        for contour in contours:
            pts = [QPointF(x0 + c / factor, y0 + row / factor) for c, row in contour]
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
        with widget_painter(self) as painter:
            self._paint(painter)

    def _paint(self, painter: QPainter) -> None:
        painter.fillRect(self.rect(), BACKGROUND)
        rect = self.image_rect()
        geometry = self.geometry_lps()
        sampled = self._ensure_sampled()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if geometry is None or sampled is None:
            self._paint_header(painter)
            text = "No image loaded" if self._owner.volume is None else ""
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
        self._owner.paint_overlay(self, painter, geometry)
        self._paint_letters(painter, geometry)
        self._paint_scale_bar(painter, geometry)
        painter.restore()
        self._paint_header(painter)

    def _centre_text(self, painter: QPainter, rect: QRectF, text: str) -> None:
        if text:
            painter.setFont(sized_font(self, 11))
            shadowed_text(painter, rect, Qt.AlignmentFlag.AlignCenter, text, MUTED_TEXT)

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
        painter.setFont(sized_font(self, 9, bold=True))
        painter.setPen(self.accent)
        painter.drawText(QRectF(10, 1, self.width() - 18, row), int(a.AlignLeft | a.AlignVCenter),
                         self.title)
        title_w = QFontMetricsF(painter.font()).horizontalAdvance(self.title)
        painter.setFont(sized_font(self, 9))
        fm = QFontMetricsF(painter.font())
        info = self._owner.pane_info(self)
        if info:
            room = max(self.width() - 18 - title_w - 12, 0.0)
            painter.setPen(MUTED_TEXT)
            painter.drawText(QRectF(0, 1, self.width() - 8, row),
                             int(a.AlignRight | a.AlignVCenter),
                             fm.elidedText(info, Qt.TextElideMode.ElideRight, room))
        caption, color = self._owner.caption()
        if caption:
            painter.setPen(color)
            painter.drawText(QRectF(10, row - 1, self.width() - 18, row),
                             int(a.AlignLeft | a.AlignVCenter),
                             fm.elidedText(caption, Qt.TextElideMode.ElideRight,
                                           max(self.width() - 18.0, 0.0)))

    def _paint_letters(self, painter: QPainter, geometry: SliceGeometry) -> None:
        painter.setFont(sized_font(self, 13, bold=True))
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
            shadowed_text(painter, box, a.AlignCenter, text, LETTER_COLOR)

    def _paint_scale_bar(self, painter: QPainter, geometry: SliceGeometry) -> None:
        """A bar of a round length near 1/5 of the pane width, labelled in mm."""
        r = self.image_rect()
        scale_bar(painter, r.right() - 12.0, r.bottom() - 12.0, geometry.pixel_mm, r.width(),
                  sized_font(self, 8.5), tick_px=4.0)

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

