"""The frame an MPR view writes around its image: title, edge letters, the other views'
slice lines, slice position and display window.

Kept apart from `mpr_view` (navigation, the image, input) and `mpr_overlays` (the plan drawn
over the CT) so that each stays small. Every function draws what it is given, in the
widget's pixels, and reads no view state.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QWidget

from planning.reslice import ViewPlane
from planning.volume import FloatArray, Volume
from widgets.painting import backdrop, shadowed_text, sized_font

LETTER_COLOR = QColor("#ffd866")
MUTED_TEXT = QColor("#8a93a0")
CROSSHAIR_GAP_PX = 10.0  # the slice lines stop short of the crosshair point, which stays seen


def paint_title(painter: QPainter, widget: QWidget, title: str, color: QColor) -> None:
    """The view's name (and level) top left, beside a bar of the view's colour."""
    painter.setFont(sized_font(widget, 11, bold=True))
    width = QFontMetricsF(painter.font()).horizontalAdvance(title)
    backdrop(painter, QRectF(10, 4, width, 22))
    painter.fillRect(QRectF(0, 0, 4, 30), color)
    shadowed_text(painter, QRectF(10, 4, widget.width() - 20, 22),
                  Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                  title, color)


def paint_centre_text(painter: QPainter, widget: QWidget, text: str) -> None:
    painter.setFont(sized_font(widget, 11))
    shadowed_text(painter, QRectF(widget.rect()), Qt.AlignmentFlag.AlignCenter, text,
                  MUTED_TEXT)


def paint_edge_letters(painter: QPainter, widget: QWidget, letters: dict[str, str]) -> None:
    """The patient direction at each edge ("left", "right", "top", "bottom")."""
    painter.setFont(sized_font(widget, 14, bold=True))
    w, h, m, b = widget.width(), widget.height(), 6.0, 30.0
    a = Qt.AlignmentFlag
    places = {
        "left": (QRectF(m, (h - b) / 2, b, b), a.AlignLeft | a.AlignVCenter),
        "right": (QRectF(w - m - b, (h - b) / 2, b, b), a.AlignRight | a.AlignVCenter),
        "top": (QRectF((w - b) / 2, m, b, b), a.AlignHCenter | a.AlignTop),
        "bottom": (QRectF((w - b) / 2, h - m - b, b, b), a.AlignHCenter | a.AlignBottom),
    }
    for edge, (rect, flags) in places.items():
        shadowed_text(painter, rect, flags, letters[edge], LETTER_COLOR)


def paint_slice_lines(painter: QPainter, centre: QPointF, plane: ViewPlane,
                      linked: list[tuple[ViewPlane, QColor]], span_px: float) -> None:
    """Where each linked view's plane cuts this one, through the crosshair at ``centre``
    (widget px), in that view's colour."""
    for other, color in linked:
        direction = np.cross(plane.normal_lps, other.normal_lps)
        if np.linalg.norm(direction) < 1e-6:
            continue  # parallel planes do not intersect
        dx, dy = float(direction @ plane.right_lps), float(direction @ plane.down_lps)
        norm = math.hypot(dx, dy)
        dx, dy = dx / norm, dy / norm
        pen = QPen(QColor(color.red(), color.green(), color.blue(), 200), 1.2)
        painter.setPen(pen)
        gap = CROSSHAIR_GAP_PX
        for sign in (-1.0, 1.0):
            painter.drawLine(
                QPointF(centre.x() + sign * gap * dx, centre.y() + sign * gap * dy),
                QPointF(centre.x() + sign * span_px * dx, centre.y() + sign * span_px * dy),
            )


def paint_info(painter: QPainter, widget: QWidget, lines: list[str], window: float,
               level: float) -> None:
    """``lines`` (slice number, position) bottom left; the window and level bottom right."""
    painter.setFont(sized_font(widget, 9))
    fm = QFontMetricsF(painter.font())
    line = fm.height() + 1
    a = Qt.AlignmentFlag
    y = widget.height() - 8 - line * len(lines)
    widest = max(fm.horizontalAdvance(t) for t in lines)
    backdrop(painter, QRectF(10, y, widest, line * len(lines)))
    for text in lines:
        shadowed_text(painter, QRectF(10, y, widget.width() / 2, line), a.AlignLeft, text)
        y += line
    wl = f"W {window:.0f}  L {level:.0f}"
    x1, y1 = widget.width() - 16.0, widget.height() - 8 - line
    backdrop(painter, QRectF(x1 - fm.horizontalAdvance(wl), y1, fm.horizontalAdvance(wl),
                             line))
    shadowed_text(painter, QRectF(widget.width() / 2, y1, x1 - widget.width() / 2, line),
                  a.AlignRight, wl)


def slice_number_text(volume: Volume | None, plane: ViewPlane, crosshair_lps: FloatArray) -> str:
    """ "Slice 87 / 300" when the view is parallel to the stored slices' grid."""
    if volume is None:
        return ""
    axis_cos = np.abs(volume.direction.T @ plane.normal_lps)
    axis = int(np.argmax(axis_cos))
    if axis_cos[axis] < 0.999:
        return ""
    index = float(volume.to_index(crosshair_lps)[axis])
    count = volume.size[axis]
    if not -0.5 <= index <= count - 0.5:
        return f"outside the scan (0–{count - 1})"
    return f"Slice {round(index) + 1} / {count}"
