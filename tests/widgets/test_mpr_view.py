"""The MPR view shows the patient in radiological convention and reacts like a workstation."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from planning.reslice import AXIAL, CORONAL, SAGITTAL, ViewPlane
from planning.volume import Volume
from tests.on_screen import on_screen
from widgets.mpr_view import MprView

pytestmark = pytest.mark.gui

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
MARKER_LPS = np.array([30.0, -10.0, 5.0])  # patient's left, anterior, superior of centre


def _flipped_volume() -> Volume:
    """Soft tissue with a 2000 HU ball at MARKER_LPS, stored right-to-left and feet-first.

    Column 0 is the patient's LEFT here, so a viewer that draws the array as stored would
    put the ball on the screen's left; the radiological view must put it on the right.
    """
    shape = (50, 80, 90)  # k, j, i
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-1.0, 1.0, -1.5])
    affine[:3, 3] = -affine[:3, :3] @ ((np.array(shape[::-1]) - 1) / 2)
    array = np.full(shape, 40, dtype=np.int16)
    vol = Volume(array, affine)
    k, j, i = np.indices(shape)
    lps = vol.to_lps(np.stack([i, j, k], -1).reshape(-1, 3)).reshape(*shape, 3)
    array[np.linalg.norm(lps - MARKER_LPS, axis=-1) <= 6.0] = 2000
    return vol


@pytest.fixture(scope="module")
def volume() -> Volume:
    return _flipped_volume()


def _make_view(qtbot, plane: ViewPlane, volume: Volume) -> MprView:
    view = on_screen(qtbot, MprView(plane, QColor("#e35d5d")), 300, 240)
    view.set_volume(volume)
    view.set_window_level(1500, 300)
    return view


def _render(view: MprView) -> QImage:
    """What the view paints, in 32-bit colour whatever the display's depth (Xvfb: 16 bit)."""
    image = QImage(view.size(), QImage.Format.Format_RGB32)
    view.render(image)
    return image


def _white_centroid(image: QImage) -> np.ndarray:
    """Centroid (x, y) of saturated white pixels: the 2000 HU marker in a bone window."""
    img = image.convertToFormat(QImage.Format.Format_RGB32)
    w, h = img.width(), img.height()
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(h, img.bytesPerLine() // 4, 4)
    white = np.all(arr[:, :w, :3] >= 252, axis=-1)
    ys, xs = np.nonzero(white)
    assert len(xs) > 20, "the marker is not drawn"
    return np.array([xs.mean(), ys.mean()])


def _wheel(view: MprView, pos: QPointF, notches: int, modifiers=Qt.KeyboardModifier.NoModifier):
    event = QWheelEvent(
        pos, view.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False,
    )
    QApplication.sendEvent(view, event)


@pytest.mark.parametrize("plane", [AXIAL, CORONAL], ids=lambda p: p.name)
def test_marker_on_patient_left_is_drawn_on_screen_right(qtbot, volume, plane) -> None:
    view = _make_view(qtbot, plane, volume)
    view.set_crosshair(MARKER_LPS)  # the slice passes through the marker
    qtbot.wait(20)
    image = _render(view)
    image.save(str(ARTIFACTS / f"mpr_{plane.name.lower()}_marker.png"))
    x, y = _white_centroid(image)
    assert x > view.width() / 2 + 20
    expected = view.lps_to_widget(MARKER_LPS)
    assert abs(x - expected.x()) < 2 and abs(y - expected.y()) < 2


def test_orientation_letters_of_the_three_views(qtbot, volume) -> None:
    letters = {p.name: _make_view(qtbot, p, volume).orientation_letters
               for p in (AXIAL, CORONAL, SAGITTAL)}
    assert letters["Axial"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert letters["Coronal"] == {"left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert letters["Sagittal"] == {"left": "A", "right": "P", "top": "S", "bottom": "I"}


def test_left_click_moves_the_crosshair_to_the_clicked_point(qtbot, volume) -> None:
    view = _make_view(qtbot, AXIAL, volume)
    target = view.lps_to_widget(MARKER_LPS + np.array([0.0, 0.0, 0.0]))
    with qtbot.waitSignal(view.crosshair_moved) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=target.toPoint())
    clicked = blocker.args[0]
    # in-plane position within one screen pixel; the slice (z) does not change on a click
    assert np.linalg.norm(clicked[:2] - MARKER_LPS[:2]) < 1.5 * view.pixel_mm
    assert clicked[2] == pytest.approx(volume.center_lps()[2])


def test_mouse_move_reports_lps_and_hu(qtbot, volume) -> None:
    view = _make_view(qtbot, AXIAL, volume)
    view.set_crosshair(MARKER_LPS)
    with qtbot.waitSignal(view.cursor_moved) as blocker:
        qtbot.mouseMove(view, view.lps_to_widget(MARKER_LPS).toPoint())
    point_lps, hu = blocker.args
    assert np.linalg.norm(point_lps - MARKER_LPS) < 1.5 * view.pixel_mm
    assert hu == 2000.0


def test_wheel_and_page_keys_step_one_slice(qtbot, volume) -> None:
    view = _make_view(qtbot, AXIAL, volume)
    z0 = view.slice_position_mm
    with qtbot.waitSignal(view.crosshair_moved):
        _wheel(view, QPointF(150, 120), 2)
    assert view.slice_position_mm == pytest.approx(z0 + 3.0)  # 2 × 1.5 mm slices, superior
    qtbot.keyClick(view, Qt.Key.Key_PageDown)
    assert view.slice_position_mm == pytest.approx(z0 + 1.5)


def test_ctrl_wheel_zooms_around_the_cursor(qtbot, volume) -> None:
    view = _make_view(qtbot, AXIAL, volume)
    anchor = view.lps_to_widget(MARKER_LPS)
    before_mm = view.pixel_mm
    _wheel(view, anchor, 3, Qt.KeyboardModifier.ControlModifier)
    assert view.pixel_mm == pytest.approx(before_mm / 1.15**3)
    after = view.lps_to_widget(MARKER_LPS)
    assert abs(after.x() - anchor.x()) < 0.5 and abs(after.y() - anchor.y()) < 0.5


def test_shift_drag_pans_and_ctrl_drag_requests_a_window(qtbot, volume) -> None:
    view = _make_view(qtbot, AXIAL, volume)
    before = view.lps_to_widget(MARKER_LPS)
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     QPoint(100, 100))
    qtbot.mouseMove(view, QPoint(130, 110))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                       QPoint(130, 110))
    after = view.lps_to_widget(MARKER_LPS)
    assert after.x() - before.x() == pytest.approx(30, abs=1)
    assert after.y() - before.y() == pytest.approx(10, abs=1)

    with qtbot.waitSignal(view.window_level_requested) as blocker:
        qtbot.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                         QPoint(100, 100))
        qtbot.mouseMove(view, QPoint(150, 100))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                       QPoint(150, 100))
    window, level = blocker.args
    assert window > 1500 and level == pytest.approx(300)


def test_window_level_changes_the_grey_of_soft_tissue(qtbot, volume) -> None:
    view = _make_view(qtbot, AXIAL, volume)
    probe = view.lps_to_widget(volume.center_lps() + np.array([-20.0, 15.0, 0.0])).toPoint()

    def grey() -> int:
        return QColor(_render(view).pixel(probe)).red()

    bone = grey()
    view.set_window_level(400, 40)
    soft = grey()
    assert bone == pytest.approx(83, abs=2)  # 40 HU in W1500/L300
    assert soft == pytest.approx(127, abs=2)  # 40 HU is mid-grey in W400/L40


def test_empty_view_and_outside_cursor(qtbot) -> None:
    view = on_screen(qtbot, MprView(SAGITTAL, QColor("#e8c547")), 200, 200)
    with qtbot.waitSignal(view.cursor_moved) as blocker:
        qtbot.mouseMove(view, QPoint(50, 50))
    assert blocker.args == [None, None]
    _render(view).save(str(ARTIFACTS / "mpr_empty.png"))
