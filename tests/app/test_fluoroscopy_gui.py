"""The simulated fluoroscopy tab: DRRs rendered in the background, needles' shadows where the
C-arm geometry puts them, patient sides right, needles dragged in a projection (Xvfb)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel

from app.main_window import MainWindow
from planning.fluoro_views import edge_letters
from planning.plan import Side
from tests.app.gui_helpers import ARTIFACTS, open_window, pedicle_needle, screenshot

pytestmark = pytest.mark.gui



@pytest.fixture
def window(qtbot, demo, monkeypatch) -> MainWindow:
    volume, truth, anatomy = demo
    win = open_window(qtbot, monkeypatch, volume, anatomy)
    plan = win.workspace.document.plan
    for side in (Side.LEFT, Side.RIGHT):
        plan = plan.with_trajectory(pedicle_needle(truth, "L2", side))
    win.workspace.document.edit(plan, "Place L2 pair")
    return win


def _wait_frames(qtbot, win: MainWindow, kinds: list[str]) -> None:
    panes = win.fluoro_panel.panes
    qtbot.waitUntil(lambda: [None if p.frame is None else p.frame.view.kind for p in panes]
                    == kinds and not win.workspace.fluoro.is_busy, timeout=60000)


def test_ap_and_lateral_show_the_needles_on_the_patients_sides(qtbot, window) -> None:
    ws = window.workspace
    assert window.workspace.fluoro.renders == 0  # nothing rendered while the tab is hidden
    window.bottom_tabs.setCurrentWidget(window.fluoro_panel)
    ws.levels_panel.select_level("L2")
    ws.select_level("L2")
    _wait_frames(qtbot, window, ["ap", "lateral"])
    ap_pane, lateral_pane = window.fluoro_panel.panes
    frame = ap_pane.frame
    assert frame.image.shape == (512, 512) and frame.image.dtype == np.uint8
    # bone is dark, air bright: the centre of the AP image (the vertebra) is darker than a
    # corner (outside the body)
    assert frame.image[240:272, 240:272].mean() < frame.image[:16, :16].mean() - 40
    letters = edge_letters(frame.view.geometry)
    left_needle = ws.document.plan.get("L2", Side.LEFT)
    right_needle = ws.document.plan.get("L2", Side.RIGHT)
    x_left = ap_pane.lps_to_widget(left_needle.entry).x()
    x_right = ap_pane.lps_to_widget(right_needle.entry).x()
    # whatever the convention, the needle of the patient's left is on the "L" side
    assert (x_left < x_right) == (letters["left"] == "L")
    assert letters["left"] == "L"  # prone AP: seen from behind, the left is on the left
    assert frame.view.title == "AP"  # the tube under a prone patient: the beam enters the front
    assert "LAO 0° CRAN 0°" in frame.view.caption and frame.position == "prone"
    # under the panes: both conventions, each named, and the detector in words
    described = window.fluoro_panel.convention_label.text()
    assert "LAO 180° CRAN 0° (DICOM, patient-referenced)" in described
    assert "detector over the patient's back" in described
    assert lateral_pane.frame.view.kind == "lateral"
    screenshot(qtbot, window, "fluoroscopy_ap_lateral.png")


def test_working_views_follow_the_selected_needle(qtbot, window) -> None:
    ws = window.workspace
    window.bottom_tabs.setCurrentWidget(window.fluoro_panel)
    window.fluoro_panel.set_mode("working")
    ws.select_needle("L2", Side.LEFT)
    _wait_frames(qtbot, window, ["bulls_eye", "progression"])
    eye, progression = window.fluoro_panel.panes
    needle = ws.document.plan.get("L2", Side.LEFT)
    a, b = eye.lps_to_widget(needle.entry), eye.lps_to_widget(needle.target)
    assert abs(a.x() - b.x()) + abs(a.y() - b.y()) < 1.0  # end-on: a dot
    a, b = progression.lps_to_widget(needle.entry), progression.lps_to_widget(needle.target)
    assert np.hypot(a.x() - b.x(), a.y() - b.y()) > 40  # at full length
    window.grab().save(str(ARTIFACTS / "fluoroscopy_working_views.png"))

    # drag the tip in the progression view: it moves parallel to the detector (its depth
    # along the beam is kept), the plan changes as one undo step, then the views re-aim
    renders = ws.fluoro.renders
    g = progression.frame.view.geometry
    depth_before = float((needle.target - g.source_lps) @ g.normal_lps)
    QTest.mousePress(progression, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     b.toPoint())
    for dy in (4, 8, 12, 16):
        QTest.mouseMove(progression, QPoint(round(b.x()), round(b.y()) + dy))
    QTest.mouseRelease(progression, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                       QPoint(round(b.x()), round(b.y()) + 16))
    moved = ws.document.plan.get("L2", Side.LEFT)
    assert moved.entry_lps == needle.entry_lps and moved.target_lps != needle.target_lps
    assert float((moved.target - g.source_lps) @ g.normal_lps) == pytest.approx(depth_before,
                                                                               abs=1e-6)
    assert ws.document.undo_stack.undoText() == "Move L2 left target"
    qtbot.waitUntil(lambda: ws.fluoro.renders > renders and not ws.fluoro.is_busy,
                    timeout=60000)
    new_eye = eye.frame.view
    a, b = eye.lps_to_widget(moved.entry), eye.lps_to_widget(moved.target)
    assert new_eye.trajectory == moved and abs(a.x() - b.x()) + abs(a.y() - b.y()) < 1.0


def test_a_needle_placed_in_projections_only(qtbot, window) -> None:
    """Under fluoroscopy: entry and tip clicked in the AP view (on the isocentre plane)."""
    ws = window.workspace
    window.bottom_tabs.setCurrentWidget(window.fluoro_panel)
    ws.select_level("L3")
    _wait_frames(qtbot, window, ["ap", "lateral"])
    ap = window.fluoro_panel.panes[0]
    ws.place(Side.RIGHT, "L3")
    iso = ap.frame.view.isocentre_lps
    entry = iso + np.array([-30.0, 0.0, 0.0])
    for point in (entry, iso):
        pos = ap.lps_to_widget(point).toPoint()
        qtbot.mouseClick(ap, Qt.MouseButton.LeftButton, pos=pos)
    placed = ws.document.plan.get("L3", Side.RIGHT)
    assert placed is not None
    assert np.allclose(placed.target, iso, atol=1.0)
    assert np.allclose(placed.entry, entry, atol=1.0)


def test_supine_patient_mirrors_the_ap_and_changes_the_angles_everywhere(qtbot, window) -> None:
    """Prone is the default; a supine patient (chosen in the tab) gets an AP seen from the
    front (the patient's left on the right), supine C-arm angles in the needle details and
    the report's set-up, and the choice is remembered."""
    from planning.carm import working_views

    ws = window.workspace
    window.bottom_tabs.setCurrentWidget(window.fluoro_panel)
    ws.select_needle("L2", Side.LEFT)
    needle = ws.document.plan.get("L2", Side.LEFT)
    prone = working_views(needle, "prone")["bulls_eye"]
    text = ws.details_panel.plain_text()
    for line in prone.lines("table"):  # both conventions, named, and the words
        assert line in text, line
    window.fluoro_panel.position_box.setCurrentIndex(
        window.fluoro_panel.position_box.findData("supine"))
    assert ws.fluoro.setup.position == "supine"
    assert ws.settings.value("carm/position") == "supine"
    body = ws.details_panel.plain_text()
    assert "c-arm working views (patient supine)" in body.lower()
    supine = working_views(needle, "supine")["bulls_eye"]
    assert f"{supine.table.label()} (both conventions: patient supine)" in body
    assert supine.words in body
    ws.select_level("L2")
    _wait_frames(qtbot, window, ["ap", "lateral"])
    ap = window.fluoro_panel.panes[0].frame
    assert ap.position == "supine" and edge_letters(ap.view.geometry)["left"] == "R"
    pane = window.fluoro_panel.panes[0]
    right = ws.document.plan.get("L2", Side.RIGHT)
    assert pane.lps_to_widget(right.entry).x() < pane.lps_to_widget(needle.entry).x()


def test_c_arm_distances_from_the_settings_dialog(qtbot, window, monkeypatch) -> None:
    """Edit ▸ Settings holds the C-arm's distances: the DRRs are re-rendered with them and
    they are kept for the next session; an isocentre beyond the detector cannot be typed."""
    from widgets.settings_dialog import SettingsDialog

    ws = window.workspace
    window.bottom_tabs.setCurrentWidget(window.fluoro_panel)
    ws.select_level("L2")
    _wait_frames(qtbot, window, ["ap", "lateral"])
    assert window.fluoro_panel.panes[0].frame.view.magnification == pytest.approx(1.5)

    def accept(dialog: SettingsDialog) -> bool:
        assert dialog.carm_mm() == (1200.0, 800.0)
        dialog.detector_spin.setValue(1000.0)
        dialog.isocentre_spin.setValue(990.0)  # clamped: the isocentre is before the detector
        assert dialog.isocentre_spin.value() == 950.0
        dialog.isocentre_spin.setValue(750.0)
        return True

    monkeypatch.setattr(SettingsDialog, "exec", accept)
    renders = ws.fluoro.renders
    ws.show_settings()
    assert (ws.fluoro.setup.source_to_detector_mm, ws.fluoro.setup.source_to_patient_mm) \
        == (1000.0, 750.0)
    qtbot.waitUntil(lambda: ws.fluoro.renders > renders and not ws.fluoro.is_busy,
                    timeout=60000)
    view = window.fluoro_panel.panes[0].frame.view
    assert view.magnification == pytest.approx(1000.0 / 750.0)
    from app.settings import carm_distances

    assert carm_distances(ws.settings) == (1000.0, 750.0)


def test_the_c_arm_convention_chosen_in_settings_leads_everywhere(qtbot, window,
                                                                   monkeypatch) -> None:
    """Edit ▸ Settings asks how the suite registers the patient on its C-arm: answered
    "as the patient lies", DICOM's patient-referenced angles come first in the needle details
    and the fluoroscopy captions; the answer is kept for the next session."""
    from app.settings import carm_convention
    from planning.carm import REGISTRATION_QUESTION, working_views
    from widgets.settings_dialog import SettingsDialog

    ws = window.workspace
    window.bottom_tabs.setCurrentWidget(window.fluoro_panel)
    window.fluoro_panel.set_mode("working")
    ws.select_needle("L2", Side.LEFT)
    _wait_frames(qtbot, window, ["bulls_eye", "progression"])
    needle = ws.document.plan.get("L2", Side.LEFT)
    eye = working_views(needle, "prone")["bulls_eye"]
    assert ws.details_panel.plain_text().index(eye.lines("table")[0]) \
        < ws.details_panel.plain_text().index(eye.lines("table")[1])
    assert "C-arm registers the patient: head-first supine" in ws.details_panel.plain_text()

    def answer(dialog: SettingsDialog) -> bool:
        labels = dialog.findChildren(QLabel)
        assert any(label.text() == REGISTRATION_QUESTION for label in labels)
        assert dialog.convention() == "table"
        dialog.convention_combo.setCurrentIndex(dialog.convention_combo.findData("patient"))
        return True

    monkeypatch.setattr(SettingsDialog, "exec", answer)
    ws.show_settings()
    assert ws.fluoro.setup.convention == "patient"
    assert carm_convention(ws.settings) == "patient"
    text = ws.details_panel.plain_text()
    assert "C-arm registers the patient: as the patient lies" in text
    dicom_first = eye.lines("patient")
    assert dicom_first[0].endswith("(DICOM, patient-referenced)")
    assert text.index(dicom_first[0]) < text.index(dicom_first[1])
    caption = window.fluoro_panel.panes[0].frame.view.caption
    assert caption.endswith(f"{eye.patient.label()} (DICOM, patient-referenced)")
