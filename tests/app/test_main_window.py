"""The main window, driven like a user on a synthetic spine CT (pytest-qt under Xvfb)."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

from planning.vocabulary import DISCLAIMER

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QProgressDialog, QPushButton

from app.main_window import MainWindow
from planning.errors import SeriesError
from planning.volume import PatientInfo, Volume
from tests.app.gui_helpers import ARTIFACTS
from tests.on_screen import on_screen
from widgets.series_dialog import SeriesDialog

pytestmark = pytest.mark.gui

MARKER_LPS = np.array([45.0, 0.0, 0.0])  # a 2000 HU ball on the patient's LEFT


def spine_volume() -> Volume:
    """A small spine-like CT: six vertebrae (cortex, cancellous core, arch, processes).

    Stored right-to-left (negative x column direction), so a viewer that drew the array as
    stored would mirror the patient; the centre is at LPS (0, 0, 0).
    """
    shape = (120, 160, 160)  # k, j, i
    affine = np.eye(4)
    affine[:3, :3] = np.diag([-1.0, 1.0, 1.5])
    affine[:3, 3] = -affine[:3, :3] @ ((np.array(shape[::-1]) - 1) / 2)
    array = np.full(shape, -1000, dtype=np.int16)
    x = (affine[0, 0] * np.arange(shape[2]) + affine[0, 3])[None, None, :]
    y = (affine[1, 1] * np.arange(shape[1]) + affine[1, 3])[None, :, None]
    z = (affine[2, 2] * np.arange(shape[0]) + affine[2, 3])[:, None, None]
    x, y, z = np.broadcast_arrays(x, y, z)
    array[(x / 70) ** 2 + ((y - 5) / 55) ** 2 <= 1] = 40
    body_r = np.hypot(x, y + 5)
    canal_r = np.hypot(x, y - 25)
    for zc in np.arange(-75.0, 80.0, 28.0):
        level = np.abs(z - zc) <= 11
        array[level & (body_r <= 17)] = 1000
        array[level & (body_r <= 14.5)] = 260
        array[level & (canal_r <= 15) & (canal_r >= 9) & (y > 12)] = 900
        near = np.abs(z - zc) <= 6
        array[near & (np.abs(x) <= 3) & (y >= 38) & (y <= 55)] = 900
        for side in (-1, 1):
            array[near & (np.abs(x - side * 22) <= 9) & (np.abs(y - 25) <= 3)] = 900
    array[np.sqrt((x - MARKER_LPS[0]) ** 2 + y**2 + z**2) <= 6] = 2000
    patient = PatientInfo(name="TEST^SPINE", patient_id="T001", study_date="20240314",
                          series_description="Synthetic spine")
    return Volume(array, affine, patient=patient, series_uid="1.2.3",
                  warnings=["Synthetic test volume."])


@pytest.fixture(scope="module")
def volume() -> Volume:
    return spine_volume()


@pytest.fixture
def window(qtbot) -> MainWindow:
    return on_screen(qtbot, MainWindow(), 1440, 920)


@pytest.fixture
def loaded(qtbot, window: MainWindow, volume: Volume) -> MainWindow:
    window.controller.set_volume(volume)
    qtbot.waitUntil(lambda: window.view3d.has_surface, timeout=30000)
    qtbot.wait(50)
    return window


def _render(widget) -> QImage:
    image = QImage(widget.size(), QImage.Format.Format_RGB32)
    widget.render(image)
    return image


def _rgb(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), -1, 4)
    return arr[:, : img.width(), 2::-1].astype(int)  # BGRA → RGB


def _wheel(view, pos: QPointF, notches: int) -> None:
    QApplication.sendEvent(view, QWheelEvent(
        pos, view.mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * notches),
        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
        Qt.ScrollPhase.NoScrollPhase, False))


def _message_boxes() -> list[QMessageBox]:
    return [w for w in QApplication.topLevelWidgets()
            if isinstance(w, QMessageBox) and w.isVisible()]


def test_first_surface_is_drawn_in_3d_and_the_window_is_labelled(qtbot, window, volume):
    t0 = time.perf_counter()
    window.controller.set_volume(volume)
    qtbot.waitUntil(lambda: window.view3d.has_surface, timeout=30000)
    elapsed = time.perf_counter() - t0
    qtbot.wait(100)
    window.grab().save(str(ARTIFACTS / "main_window_spine.png"))
    rgb = _rgb(window.view3d.grab().toImage())
    # bone is warm ivory (red well above blue); the background is a blue-grey gradient
    bone = (rgb[..., 0] > 90) & (rgb[..., 0] - rgb[..., 2] > 20)
    assert bone.mean() > 0.03, f"only {bone.mean():.1%} of the 3D view shows bone"
    assert elapsed < 15
    assert window.banner.isVisible() and DISCLAIMER in window.banner.text()
    # one person-name format everywhere (planning.vocabulary): as on the PDF report
    assert "TEST, Spine" in window.patient_label.text()
    assert "notice" in window.warning_label.text()


def test_axial_letters_and_patient_left_marker_on_screen_right(loaded):
    assert loaded.axial_view.orientation_letters["left"] == "R"
    assert loaded.axial_view.orientation_letters["right"] == "L"
    assert loaded.coronal_view.orientation_letters == {
        "left": "R", "right": "L", "top": "S", "bottom": "I"}
    assert loaded.sagittal_view.orientation_letters == {
        "left": "A", "right": "P", "top": "S", "bottom": "I"}
    loaded.controller.set_crosshair(np.array([0.0, 0.0, 0.0]))  # slices through the marker
    for view in (loaded.axial_view, loaded.coronal_view):
        rgb = _rgb(_render(view))
        white = np.all(rgb >= 252, axis=-1)  # only the 2000 HU marker saturates
        xs = np.nonzero(white)[1]
        assert len(xs) > 30, view.plane.name
        assert xs.min() > view.width() / 2, f"{view.plane.name}: marker not on screen right"
        _render(view).save(str(ARTIFACTS / f"main_{view.plane.name.lower()}.png"))


def test_status_bar_shows_lps_and_hu_under_the_mouse(qtbot, loaded):
    view = loaded.axial_view
    loaded.controller.set_crosshair(np.array([0.0, 0.0, 0.0]))
    qtbot.mouseMove(view, view.lps_to_widget(MARKER_LPS).toPoint())
    qtbot.waitUntil(lambda: "HU 2000" in loaded.hu_label.text())
    text = loaded.cursor_label.text()
    assert "mm (LPS)" in text
    x_mm = float(text.split()[1])
    assert x_mm == pytest.approx(45.0, abs=1.5)
    qtbot.mouseMove(view, view.lps_to_widget(np.array([0.0, -5.0, 0.0])).toPoint())
    qtbot.waitUntil(lambda: loaded.hu_label.text() == "HU 260")  # cancellous bone core


def test_wheel_scrolls_the_axial_slice_and_moves_the_linked_crosshair(qtbot, loaded):
    view = loaded.axial_view
    z0 = loaded.controller.crosshair_lps[2]
    _wheel(view, QPointF(view.width() / 2, view.height() / 2), 4)
    assert view.slice_position_mm == pytest.approx(z0 + 6.0)  # 4 slices of 1.5 mm
    assert loaded.controller.crosshair_lps[2] == pytest.approx(z0 + 6.0)
    assert loaded.coronal_view.crosshair_lps[2] == pytest.approx(z0 + 6.0)


def test_preset_keys_and_combo_change_window_level(qtbot, loaded):
    probe = loaded.axial_view.lps_to_widget(np.array([-40.0, 20.0, 0.0])).toPoint()  # fat/muscle
    before = QColor(_render(loaded.axial_view).pixel(probe)).red()
    loaded.activateWindow()
    qtbot.waitUntil(loaded.isActiveWindow)  # shortcuts only reach the active window
    loaded.axial_view.setFocus()
    qtbot.keyClick(loaded.axial_view, Qt.Key.Key_2)
    assert loaded.controller.window_level == (400.0, 40.0)
    assert loaded.sagittal_view.window_level == (400.0, 40.0)
    assert loaded.window_level_bar.preset_combo.currentData() == "Soft tissue"
    after = QColor(_render(loaded.axial_view).pixel(probe)).red()
    assert before == pytest.approx(83, abs=2) and after == pytest.approx(127, abs=2)
    combo = loaded.window_level_bar.preset_combo
    combo.activated.emit(combo.findData("Bone"))
    assert loaded.controller.window_level == (1500.0, 300.0)
    qtbot.keyClick(loaded.axial_view, Qt.Key.Key_2)
    qtbot.keyClick(loaded.axial_view, Qt.Key.Key_1)
    assert loaded.axial_view.window_level == (1500.0, 300.0)


def test_missing_folder_shows_an_error_dialog_not_a_traceback(qtbot, window, tmp_path):
    missing = tmp_path / "no_such_folder"
    window.controller.open_dicom_folder(missing)
    qtbot.waitUntil(lambda: len(_message_boxes()) == 1)
    box = _message_boxes()[0]
    assert str(missing) in box.text() and "Traceback" not in box.text()
    box.grab().save(str(ARTIFACTS / "error_dialog.png"))
    box.close()


def test_bad_folder_is_reported_with_the_loader_message(qtbot, window, tmp_path):
    (tmp_path / "notes.txt").write_text("not a DICOM file")
    window.open_path(tmp_path)
    qtbot.waitUntil(lambda: len(_message_boxes()) == 1, timeout=20000)
    box = _message_boxes()[0]
    assert box.icon() == QMessageBox.Icon.Warning and "Traceback" not in box.text()
    box.close()


def test_unexpected_error_shows_a_short_message_and_logs_the_traceback(
    qtbot, window, caplog, monkeypatch
):
    import planning.io.dicom_series as dicom_series

    def broken(folder, progress=None):
        raise KeyError("internal bug")

    monkeypatch.setattr(dicom_series, "scan_folder", broken)
    with caplog.at_level(logging.ERROR, logger="vertebroplan"):
        window.controller.open_dicom_folder(Path.cwd())
        qtbot.waitUntil(lambda: len(_message_boxes()) == 1)
    box = _message_boxes()[0]
    assert "unexpected" in box.text().lower() and "KeyError" in box.text()
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)
    box.close()


def test_loading_shows_progress_and_cancel_stops_the_worker(qtbot, window, monkeypatch):
    """The GUI keeps processing events while a worker runs, and Cancel reaches the worker."""
    import planning.io.dicom_series as dicom_series

    seen = {}

    def slow_scan(folder, progress=None):
        seen["progress"] = progress
        for i in range(400):  # up to 20 s unless cancelled
            progress.report(i, 400, f"Reading file {i}")
            time.sleep(0.05)
        raise AssertionError("never cancelled")

    monkeypatch.setattr(dicom_series, "scan_folder", slow_scan)
    window.controller.open_dicom_folder(Path.cwd())
    dialogs = lambda: [d for d in window.findChildren(QProgressDialog) if d.isVisible()]  # noqa: E731
    qtbot.waitUntil(lambda: len(dialogs()) == 1, timeout=5000)
    dialog = dialogs()[0]
    qtbot.waitUntil(lambda: dialog.value() > 2)
    dialog.grab().save(str(ARTIFACTS / "progress_dialog.png"))
    cancel_button = dialog.findChild(QPushButton)
    assert cancel_button.text() == "Cancel"
    qtbot.mouseClick(cancel_button, Qt.MouseButton.LeftButton)
    assert seen["progress"].cancelled
    qtbot.waitUntil(lambda: not window.controller.is_loading, timeout=5000)
    assert "cancelled" in window.statusBar().currentMessage().lower()
    assert not _message_boxes()


def test_several_series_open_the_chooser_and_the_choice_is_loaded(qtbot, window, monkeypatch):
    patient = PatientInfo(name="DOE^JOHN", patient_id="P1", study_date="20240102")
    series = [
        SimpleNamespace(series_uid=f"1.{n}", modality=m, description=d, n_images=n,
                        slice_thickness_mm=t, series_number=i, patient=patient)
        for i, (m, d, n, t) in enumerate(
            [("CT", "Scout", 2, 5.0), ("CT", "Spine 0.6 bone", 412, 0.6), ("SR", "Dose", 1, None)]
        )
    ]
    opened = []
    monkeypatch.setattr(window.controller, "open_series", opened.append)
    window.controller.series_found.emit(SimpleNamespace(series=series, skipped=[("x", "y")]))
    qtbot.waitUntil(lambda: window.findChild(SeriesDialog) is not None)
    dialog = window.findChild(SeriesDialog)
    table = dialog.table
    assert table.rowCount() == 3
    # named as on the report and the window's patient label (planning.vocabulary)
    assert table.item(1, 0).text() == "DOE, John (P1)" and table.item(1, 1).text() == "2024-01-02"
    assert table.item(1, 6).text() == "0.60 mm" and table.item(1, 5).text() == "412"
    assert dialog.selected_series() is series[1]  # the largest CT is preselected
    dialog.grab().save(str(ARTIFACTS / "series_dialog.png"))
    dialog.accept()
    assert opened == [series[1]]


def test_a_domain_error_from_the_controller_is_shown_as_is(qtbot, window):
    window.controller.error_occurred.emit(
        "loading the CT", SeriesError("'/data/ct' has slices of different sizes."))
    qtbot.waitUntil(lambda: len(_message_boxes()) == 1)
    box = _message_boxes()[0]
    assert box.text() == "'/data/ct' has slices of different sizes."
    box.close()


def test_open_dicom_folder_end_to_end(qtbot, window, volume, tmp_path):
    """Scan → single series → load in a worker → views and 3-D surface, as File ▸ Open does."""
    from planning.io.dicom_write import write_series

    small = Volume(volume.array[::4].copy(), volume.affine_lps @ np.diag([1.0, 1.0, 4.0, 1.0]),
                   patient=volume.patient)
    write_series(small, tmp_path / "ct", series_description="Spine test")
    with qtbot.waitSignal(window.controller.volume_loaded, timeout=30000) as blocker:
        window.open_path(tmp_path)
    loaded_volume = blocker.args[0]
    assert loaded_volume.size == small.size
    for a, b in zip(loaded_volume.bounds_lps(), small.bounds_lps(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-3)  # same place, whatever the slice order
    assert loaded_volume.hu_at(MARKER_LPS + np.array([0.0, 0.0, 0.75])) == 2000.0
    qtbot.waitUntil(lambda: window.view3d.has_surface, timeout=30000)
    assert window.axial_view.volume is loaded_volume
    assert not _message_boxes()


def test_exceptions_escaping_slots_become_a_dialog(qtbot, window, monkeypatch, caplog):
    import sys

    from app.error_boundary import install_excepthook

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # restored after the test
    install_excepthook(window)
    try:
        raise ZeroDivisionError("in a slot")
    except ZeroDivisionError as exc:
        with caplog.at_level(logging.ERROR, logger="vertebroplan"):
            sys.excepthook(type(exc), exc, exc.__traceback__)
    qtbot.waitUntil(lambda: len(_message_boxes()) == 1)
    assert "ZeroDivisionError" in _message_boxes()[0].text()
    assert any(r.exc_info and r.exc_info[0] is ZeroDivisionError for r in caplog.records)
    _message_boxes()[0].close()


def test_run_gui_opens_the_given_path_and_returns_the_exit_code(qtbot, monkeypatch, tmp_path):
    import sys

    from app.gui import run_gui

    opened = []
    monkeypatch.setattr(MainWindow, "open_path",
                        lambda self, path, uid=None, source_node=None: opened.append(
                            (path, uid, self.isVisible(), source_node)))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)

    def fake_exec(app) -> int:
        """Stands in for the event loop: a real exec()/exit() pair would leave Qt's
        quit flag set and end every later test's waits at once."""
        qtbot.waitUntil(lambda: bool(opened))  # the path is opened from the running loop
        for widget in app.topLevelWidgets():
            if isinstance(widget, MainWindow):
                widget.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert run_gui(str(tmp_path), "1.2.3") == 0
    assert opened == [(str(tmp_path), "1.2.3", True, None)]


@pytest.fixture(scope="module")
def demo_ct(shared_demo_ct):
    return shared_demo_ct


@pytest.mark.slow
def test_demo_ct_liver_on_screen_left_spleen_on_screen_right(qtbot, window, demo_ct):
    """On the whole demo spine: the 3-D surface appears, and organs are on the correct side."""
    volume, truth = demo_ct
    t0 = time.perf_counter()
    window.controller.set_volume(volume)
    qtbot.waitUntil(lambda: window.view3d.has_surface, timeout=60000)
    print(f"demo CT {volume.size}: surface shown {time.perf_counter() - t0:.2f} s after load")
    codes = {"liver": 114, "spleen": 115}
    centres = {}
    for organ, code in codes.items():
        k, j, i = np.nonzero(truth.labels == code)
        centres[organ] = volume.to_lps(np.array([i.mean(), j.mean(), k.mean()]))
    for organ, screen_side in (("liver", "left"), ("spleen", "right")):
        window.controller.set_crosshair(centres[organ])
        for view in (window.axial_view, window.coronal_view):
            point = view.lps_to_widget(centres[organ])
            on_left = point.x() < view.width() / 2
            assert on_left == (screen_side == "left"), f"{organ} in {view.plane.name}"
            grey = QColor(_render(view).pixel(point.toPoint())).red()
            assert 60 <= grey <= 115, f"{organ} pixel in {view.plane.name} is not soft tissue"
    window.controller.set_crosshair(truth.levels[len(truth.levels) // 2].centroid_lps)
    qtbot.wait(200)
    rgb = _rgb(window.view3d.grab().toImage())
    assert ((rgb[..., 0] > 90) & (rgb[..., 0] - rgb[..., 2] > 20)).mean() > 0.05
    window.grab().save(str(ARTIFACTS / "main_window_demo.png"))


def test_keys_in_the_3d_view_do_not_close_or_alter_it(qtbot, loaded):
    plotter = loaded.view3d.plotter
    before = _rgb(loaded.view3d.grab().toImage())
    for key in "qew3sj":
        qtbot.keyClick(plotter, key)
    qtbot.wait(100)
    assert plotter.ren_win is not None and loaded.view3d.has_surface
    plotter.render()
    after = _rgb(loaded.view3d.grab().toImage())
    assert np.abs(after - before).mean() < 1.0  # same picture: no wireframe, no stereo
