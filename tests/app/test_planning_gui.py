"""Planning in the main window, driven like a surgeon on the demo CT (pytest-qt, Xvfb).

The anatomy is the demo CT's ground truth (set directly, so the checks are known); needles
are placed by clicks in the slice views and dragged with the mouse; the plan goes through
undo/redo, save and reopen, and survives a killed process through its recovery file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox, QToolTip

from app.controller import Controller
from app.main_window import MainWindow
from planning.checks import Status
from planning.interop.plan_file import plan_from_dict, save_plan
from planning.plan import Plan, Side, Trajectory
from tests.app.gui_helpers import ARTIFACTS, open_window, screenshot

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]


def _window(qtbot, demo, monkeypatch) -> MainWindow:
    volume, _truth, anatomy = demo
    return open_window(qtbot, monkeypatch, volume, anatomy)


@pytest.fixture
def window(qtbot, demo, monkeypatch) -> MainWindow:
    return _window(qtbot, demo, monkeypatch)


def _click(qtbot, view, point_lps) -> None:
    pos = view.lps_to_widget(np.asarray(point_lps, float)).toPoint()
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=pos)


def _drag(view, start_lps, end_lps) -> None:
    a = view.lps_to_widget(np.asarray(start_lps, float)).toPoint()
    b = view.lps_to_widget(np.asarray(end_lps, float)).toPoint()
    QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    for f in np.linspace(0.2, 1.0, 5):  # a real drag passes through intermediate points
        p = QPoint(round(a.x() + f * (b.x() - a.x())), round(a.y() + f * (b.y() - a.y())))
        QTest.mouseMove(view, p)
    QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)


def _pedicle_path(truth, level: str, side: Side) -> tuple[np.ndarray, np.ndarray]:
    """Entry and an axial-plane target 88 % of the way to the anterior cortex."""
    p = truth.level(level).pedicle(side)
    reach = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps))
    target = p.entry_lps + 0.88 * reach * p.direction_lps
    target[2] = p.entry_lps[2]  # clicked in the axial slice through the entry
    return p.entry_lps.copy(), target


def _place(ws, truth, level: str, side: Side) -> tuple[np.ndarray, np.ndarray]:
    """One needle down ``level``'s ``side`` pedicle put in the plan as one edit (undoable,
    checked); returns its entry and target."""
    entry, target = _pedicle_path(truth, level, side)
    ws.document.edit(ws.document.plan.with_trajectory(
        Trajectory(level, side, tuple(entry), tuple(target))), "Place")
    return entry, target


def _canal_centre(anatomy, z_mm: float) -> np.ndarray:
    k, j, i = np.nonzero(anatomy.canal)
    lps = anatomy.to_lps(np.stack([i, j, k], 1).astype(float))
    near = np.abs(lps[:, 2] - z_mm) < 2.0
    return lps[near].mean(axis=0)


def test_place_pair_by_clicks_drag_into_canal_undo_redo(qtbot, window, demo) -> None:
    _volume, truth, anatomy = demo
    ws, view = window.workspace, window.axial_view
    for side in (Side.LEFT, Side.RIGHT):
        entry, target = _pedicle_path(truth, "L2", side)
        window.controller.set_crosshair(entry)  # the axial slice through the entry
        ws.levels_panel.select_level("L2")
        window.activateWindow()
        qtbot.waitUntil(window.isActiveWindow)  # shortcuts only reach the active window
        view.setFocus()
        qtbot.keyClick(view, Qt.Key.Key_L if side is Side.LEFT else Qt.Key.Key_R,
                       Qt.KeyboardModifier.ShiftModifier)
        assert ws.editor.placing == ("L2", side)
        _click(qtbot, view, entry)
        _click(qtbot, view, target)
        placed = ws.document.plan.get("L2", side)
        assert placed is not None
        assert np.linalg.norm(placed.entry - entry) < 1.5  # within a screen pixel or two
        assert np.linalg.norm(placed.target - target) < 1.5
    results = ws.editor.results
    assert {r.status for r in results.values()} == {Status.SAFE}, [
        r.reasons for r in results.values()]
    details = ws.details_panel.plain_text()  # the C-arm views of the selected needle too
    assert "Bull's-eye" in details and "Progression" in details
    assert ("LAO" in details or "RAO" in details) and "(patient prone)" in details.lower()
    assert "(DICOM, patient-referenced)" in details
    assert "detector over the patient's back" in details
    row = next(r for r in ws.levels_panel.rows() if r.name == "L2")
    assert row.left.status is Status.SAFE and row.right.status is Status.SAFE
    ARTIFACTS.mkdir(exist_ok=True)
    window.grab().save(str(ARTIFACTS / "planning_pair_placed.png"))

    # drag the left tip into the middle of the canal: unsafe, and the panel says why
    left = ws.document.plan.get("L2", Side.LEFT)
    canal = _canal_centre(anatomy, left.target[2])
    window.controller.set_crosshair(left.target)
    steps = ws.document.undo_stack.count()
    _drag(view, left.target, canal)
    moved = ws.document.plan.get("L2", Side.LEFT)
    assert np.linalg.norm(moved.target - canal) < 2.0
    result = ws.editor.result(("L2", Side.LEFT))
    assert result.status is Status.UNSAFE
    assert result.canal_clearance_mm < 0
    details = ws.details_panel.plain_text()
    assert "UNSAFE" in details and "canal" in details.lower()
    assert ws.document.undo_stack.count() == steps + 1  # five moves, one undo step
    QTest.mouseMove(view, view.lps_to_widget(moved.target).toPoint())  # hover: tooltip
    qtbot.waitUntil(lambda: "UNSAFE" in QToolTip.text(), timeout=5000)
    assert "enters the spinal canal" in QToolTip.text()
    assert ws.actions.undo.text() == "&Undo Move L2 left target"  # the Edit menu's label
    window.grab().save(str(ARTIFACTS / "planning_dragged_into_canal.png"))

    ws.actions.undo.trigger()
    assert ws.editor.result(("L2", Side.LEFT)).status is Status.SAFE
    assert "SAFE" in ws.details_panel.plain_text()
    ws.actions.redo.trigger()
    assert ws.editor.result(("L2", Side.LEFT)).status is Status.UNSAFE
    assert window.isWindowModified() and "unsaved plan" in window.windowTitle()


def test_drag_whole_needle_in_sagittal_view_keeps_its_length(qtbot, window, demo) -> None:
    _volume, truth, _anatomy = demo
    ws = window.workspace
    entry, target = _place(ws, truth, "L3", Side.LEFT)
    window.controller.set_crosshair(entry + 0.5 * (target - entry))
    view = window.sagittal_view
    middle = entry + 0.5 * (target - entry)
    middle_on_plane = middle.copy()
    middle_on_plane[0] = view.crosshair_lps[0]
    _drag(view, middle_on_plane, middle_on_plane + np.array([0.0, 0.0, 6.0]))
    moved = ws.document.plan.get("L3", Side.LEFT)
    shift = moved.entry - entry
    assert shift[2] == pytest.approx(6.0, abs=1.0)  # cranially, as dragged
    assert abs(shift[0]) < 1e-6  # the sagittal view cannot move it left or right
    assert moved.length_mm == pytest.approx(np.linalg.norm(target - entry), abs=1e-6)
    assert ws.document.undo_stack.undoText() == "Move L3 left needle"


def test_proposals_saved_and_reopened_identically(qtbot, window, demo, tmp_path,
                                                  monkeypatch) -> None:
    ws = window.workspace
    ws.levels_panel.select_level("L1")
    ws.propose(["L1", "L4"], "11G")
    qtbot.waitUntil(lambda: not window.controller.is_proposing, timeout=60000)
    plan = ws.document.plan
    assert {(t.level, t.side) for t in plan.trajectories} == {
        (lv, s) for lv in ("L1", "L4") for s in (Side.LEFT, Side.RIGHT)}
    assert all(r.status is not Status.UNSAFE for r in ws.editor.results.values())
    assert ws.document.undo_stack.undoText() == "Propose L1, L4"
    screenshot(qtbot, window, "planning_proposed.png")
    path = tmp_path / "case.vplan.json"
    assert ws.files.save(path)
    assert not window.isWindowModified() and "case.vplan.json" in window.windowTitle()
    assert not ws.files.autosave.file.exists()  # saved: nothing to recover

    other = _window(qtbot, demo, monkeypatch)
    assert other.workspace.files.open_plan(path)
    assert other.workspace.document.plan == plan
    assert other.workspace.editor.results.keys() == ws.editor.results.keys()
    for key, res in ws.editor.results.items():
        assert other.workspace.editor.results[key].canal_clearance_mm == pytest.approx(
            res.canal_clearance_mm)


def test_plan_of_another_ct_refused_unless_overridden(qtbot, window, demo, tmp_path) -> None:
    _volume, truth, _anatomy = demo
    entry, target = _pedicle_path(truth, "L1", Side.RIGHT)
    foreign = Plan(frame_of_reference_uid="1.2.3.999", trajectories=(
        Trajectory("L1", Side.RIGHT, tuple(entry), tuple(target)),))
    path = save_plan(foreign, tmp_path / "foreign.vplan.json")
    ws = window.workspace
    assert not ws.files.open_plan(path, force_other_frame=False)
    assert ws.document.plan.trajectories == ()
    assert ws.files.open_plan(path, force_other_frame=True)
    assert ws.document.plan.frame_override is not None
    assert ws.document.plan.frame_override.plan_frame_uid == "1.2.3.999"


def test_label_shift_renames_needles_and_anatomy_and_undoes(qtbot, window, demo) -> None:
    _volume, truth, _anatomy = demo
    ws = window.workspace
    _place(ws, truth, "L2", Side.LEFT)
    ws.levels_panel.shift_down_button.click()
    qtbot.waitUntil(lambda: not window.controller.is_finding_anatomy, timeout=60000)
    assert ws.document.plan.levels == ("L3",)
    assert "L3" in window.controller.anatomy.levels
    assert window.controller.anatomy.levels["L3"].centroid_lps == pytest.approx(
        truth.level("L2").centroid_lps, abs=3.0)
    assert ws.editor.result(("L3", Side.LEFT)).status is Status.SAFE
    ws.actions.undo.trigger()
    qtbot.waitUntil(lambda: not window.controller.is_finding_anatomy, timeout=60000)
    assert ws.document.plan.levels == ("L2",)
    assert window.controller.label_shift == 0
    assert "L2" in window.controller.anatomy.levels


def test_quitting_with_unsaved_changes_asks(qtbot, demo, monkeypatch) -> None:
    win = _window(qtbot, demo, monkeypatch)
    monkeypatch.undo()  # the real question this time
    ws = win.workspace
    _v, truth, _a = demo
    _place(ws, truth, "L1", Side.LEFT)
    seen = []

    def answer_cancel() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "unsavedBox":
            seen.append(box.text())
            box.button(QMessageBox.StandardButton.Cancel).click()
        else:
            QTimer.singleShot(50, answer_cancel)

    QTimer.singleShot(50, answer_cancel)
    win.close()
    assert seen and "unsaved changes" in seen[0]
    assert win.isVisible()  # cancelled: still open, plan intact
    assert ws.document.plan.get("L1", Side.LEFT) is not None
    ws.document.undo_stack.setClean()


def test_unsaved_edit_survives_a_killed_process(qtbot, demo, tmp_path, monkeypatch) -> None:
    recovery_dir = Path(os.environ["VERTEBROPLAN_RECOVERY_DIR"])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_API": "pyside6"}
    child = subprocess.Popen([sys.executable, "-m", "tests.app.recovery_child"], cwd=ROOT,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)
    try:
        line = child.stdout.readline()
        assert line.strip(), "the child process did not report its plan"
        expected = plan_from_dict(json.loads(line))
    finally:
        child.send_signal(signal.SIGKILL)  # no clean exit
        child.wait(timeout=30)
    files = list(recovery_dir.glob("recovery-*.vplan.json"))
    assert len(files) == 1

    win = MainWindow(Controller(auto_anatomy=False))
    qtbot.addWidget(win)
    win.show()
    monkeypatch.setattr(win.workspace.files, "confirm_discard", lambda _doing: True)
    recovery = win.workspace.files.pending_recovery()
    assert recovery is not None and Path(recovery.ct_source).is_dir()
    win.workspace.files.recover(recovery)
    qtbot.waitUntil(lambda: win.controller.volume is not None, timeout=120000)
    plan = win.workspace.document.plan
    assert plan.trajectories == expected.trajectories
    assert win.workspace.document.is_dirty and win.isWindowModified()
    assert not files[0].exists()  # taken over by this session's own recovery file


def test_drag_in_3d_edits_the_plan_as_one_step(qtbot, window, demo) -> None:
    """The 3D view's drag (its mouse handling is tested in tests/widgets) edits the plan
    through the same undo stack, and the slice views redraw the moved needle."""
    _volume, truth, _anatomy = demo
    ws = window.workspace
    entry, target = _place(ws, truth, "L4", Side.RIGHT)
    steps = ws.document.undo_stack.count()
    for dz in (1.0, 2.0, 3.0):
        moved_entry = entry + np.array([0.0, 0.0, dz])
        window.view3d.needle_dragged.emit("L4", Side.RIGHT, "entry", moved_entry)
    window.view3d.needle_drag_finished.emit()
    moved = ws.document.plan.get("L4", Side.RIGHT)
    assert moved.entry == pytest.approx(entry + np.array([0.0, 0.0, 3.0]))
    assert moved.target == pytest.approx(target)
    assert ws.document.undo_stack.count() == steps + 1
    drawn = {n.key: n for n in window.axial_view.needles}
    assert drawn[("L4", Side.RIGHT)].entry_lps == pytest.approx(moved.entry)
    assert drawn[("L4", Side.RIGHT)].selected  # dragging selects


def test_settings_and_window_layout_persist(qtbot, demo, monkeypatch) -> None:
    import dataclasses

    from app.settings import store_limits

    first = _window(qtbot, demo, monkeypatch)
    ws = first.workspace
    ws.settings.setValue("plan/default_gauge", "13G")
    store_limits(ws.settings, dataclasses.replace(first.controller.limits,
                                                  canal_caution_mm=3.5))
    first.resize(1500, 900)
    ws.help_dock.raise_()
    ws.closing()
    ws.settings.sync()

    second = _window(qtbot, demo, monkeypatch)
    second.workspace.restore_layout()
    assert second.workspace.editor.gauge == "13G"
    assert second.workspace.levels_panel.gauge() == "13G"
    assert second.controller.limits.canal_caution_mm == 3.5
    assert second.controller.check_context.limits.canal_caution_mm == 3.5
    assert (second.width(), second.height()) == (1500, 900)


def test_export_send_and_reimport_from_the_window(qtbot, demo, tmp_path, monkeypatch) -> None:
    """File ▸ Export runs in the background; the SR sent to a real DICOM node and the one
    written to disk rebuild the same plan in another window (File ▸ Import plan)."""
    from planning.interop.any_plan import load_any_plan
    from tests.planning.dicom_receiver import storescp_receiver

    win = _window(qtbot, demo, monkeypatch)
    ws = win.workspace
    _v, truth, _a = demo
    plan = ws.document.plan
    for side in (Side.LEFT, Side.RIGHT):
        entry, target = _pedicle_path(truth, "L3", side)
        plan = plan.with_trajectory(Trajectory("L3", side, tuple(entry), tuple(target)))
    ws.document.edit(plan, "Place")
    pdf, sr = tmp_path / "r.pdf", tmp_path / "p.dcm"
    assert ws.exports.export(pdf_path=pdf, sr_path=sr)
    assert ws.task.isVisible()  # progress and Cancel while it runs
    qtbot.waitUntil(lambda: not win.controller.is_busy_with_task, timeout=120000)
    assert pdf.exists() and sr.exists() and "Written" in win.statusBar().currentMessage()
    with storescp_receiver(tmp_path) as receiver:
        r = receiver.remote
        assert ws.exports.export(send_to=f"{r.ae_title}@{r.host}:{r.port}")
        qtbot.waitUntil(lambda: not win.controller.is_busy_with_task, timeout=120000)
        received = receiver.received()
    assert "Sent" in win.statusBar().currentMessage() and len(received) == 2

    other = _window(qtbot, demo, monkeypatch)
    assert other.workspace.files.open_plan(sr)
    back = other.workspace.document.plan
    assert len(back.trajectories) == 2
    for a, b in zip(back.trajectories, ws.document.plan.trajectories, strict=True):
        assert a.key == b.key
        assert np.abs(a.entry - b.entry).max() < 0.01
    sent_sr = next(p for p in received if _is_sr(p))
    sent_keys = [t.key for t in load_any_plan(sent_sr).trajectories]
    assert sent_keys == [t.key for t in back.trajectories]


def _is_sr(path: Path) -> bool:
    import pydicom

    return pydicom.dcmread(path, stop_before_pixels=True).Modality == "SR"
