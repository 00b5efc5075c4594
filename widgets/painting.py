"""Drawing shared by the slice views and the needle view: legible text over CT images,
and triangle meshes for the 3D scenes (live view and report snapshots)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen
from PySide6.QtWidgets import QWidget

TEXT = QColor("#e8ecf1")
SHADOW = QColor(0, 0, 0, 200)
PLATE = QColor(0, 0, 0, 140)


@contextmanager
def widget_painter(widget: QWidget) -> Iterator[QPainter]:
    """A painter on ``widget`` for one paint event, ended even when the painting raises: a
    painter left active makes Qt refuse (and warn about) every later paint of the widget."""
    painter = QPainter(widget)
    try:
        yield painter
    finally:
        painter.end()


def sized_font(widget: QWidget, point_size: float, bold: bool = False) -> QFont:
    font = QFont(widget.font())
    font.setPointSizeF(point_size)
    font.setBold(bold)
    return font


def shadowed_text(painter: QPainter, rect: QRectF, flags: Qt.AlignmentFlag, text: str,
                  color: QColor = TEXT) -> None:
    """Text with a dark shadow, readable over bright bone and black air alike."""
    painter.setPen(SHADOW)
    painter.drawText(rect.translated(1, 1), int(flags), text)
    painter.setPen(color)
    painter.drawText(rect, int(flags), text)


def backdrop(painter: QPainter, rect: QRectF) -> None:
    """A translucent dark plate behind corner text so it stays legible over bone."""
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(PLATE)
    painter.drawRoundedRect(rect.adjusted(-4, -1, 4, 1), 3, 3)
    painter.setBrush(Qt.BrushStyle.NoBrush)


SCALE_BAR_MM = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def scale_bar(painter: QPainter, right_x: float, y: float, pixel_mm: float, view_width_px: float,
              font: QFont, tick_px: float = 5.0) -> None:
    """A bar of a round length near 1/5 of the view width ending at ``right_x``, in mm."""
    target_mm = view_width_px * pixel_mm / 5.0
    length_mm = max([s for s in SCALE_BAR_MM if s <= target_mm], default=SCALE_BAR_MM[0])
    length_px = length_mm / pixel_mm
    x0, x1 = right_x - length_px, right_x
    painter.setPen(QPen(SHADOW, 4))
    painter.drawLine(QPointF(x0, y + 1), QPointF(x1, y + 1))
    painter.setPen(QPen(TEXT, 2))
    painter.drawLine(QPointF(x0, y), QPointF(x1, y))
    for x in (x0, x1):
        painter.drawLine(QPointF(x, y - tick_px), QPointF(x, y + tick_px))
    painter.setFont(font)
    height = QFontMetricsF(font).height()
    shadowed_text(painter, QRectF(x0 - 40, y - 6 - height, length_px + 80, height),
                  Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                  f"{length_mm} mm")


def triangle_mesh(vertices_lps: NDArray[np.float32], faces: NDArray[np.int32],
                  normals_lps: NDArray[np.float32] | None):  # type: ignore[no-untyped-def]
    """A pyvista triangle mesh (faces index vertices, LPS mm); normals computed when none
    (or not one per vertex) are given. pyvista is imported here, on first use."""
    import pyvista as pv

    cells = np.empty((len(faces), 4), dtype=np.int64)
    cells[:, 0] = 3
    cells[:, 1:] = faces
    mesh = pv.PolyData(np.asarray(vertices_lps, dtype=np.float32), cells.ravel())
    if normals_lps is not None and len(normals_lps) == len(vertices_lps):
        mesh.point_data["Normals"] = np.asarray(normals_lps, dtype=np.float32)
        mesh.point_data.active_normals_name = "Normals"
    elif len(faces):
        mesh = mesh.compute_normals(cell_normals=False, split_vertices=False)
    return mesh
