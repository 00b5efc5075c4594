"""Training mode in the main window (pytest-qt, Xvfb): a case of the built-in library opened
with its reference hidden, a scripted trainee's plan submitted and scored, the reference then
shown, the plan locked, the trainee report written; a fluoroscopy-only case hides the slices.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pytest

from app.main_window import MainWindow
from planning.plan import Side
from tests.app.gui_helpers import ARTIFACTS, open_window, screenshot

pytestmark = pytest.mark.gui



@pytest.fixture
def window(qtbot, monkeypatch) -> MainWindow:
    return open_window(qtbot, monkeypatch)


def _start(qtbot, win: MainWindow, case_id: str):
    session = win.workspace.training
    session.show()
    panel = session.panel
    ids = [c.case_id for c in panel._cases]
    assert case_id in ids and len(ids) >= 3  # the built-in library is listed
    panel.case_list.setCurrentRow(ids.index(case_id))
    panel.trainee_edit.setText("Dr Trainee")
    panel.start_button.click()
    qtbot.waitUntil(lambda: panel.state == "running", timeout=180000)
    return session


def test_scripted_trainee_placing_the_reference_scores_full_marks(qtbot, window,
                                                                 tmp_path) -> None:
    session = _start(qtbot, window, "l1-l2-saved")
    ws = window.workspace
    assert session.reference is not None and len(session.reference.trajectories) == 4
    # hidden: nothing of the reference on screen, no proposals
    assert all(not v._reference for v in window.mpr_views)
    assert window.view3d.prop("reference:L1:left") is None
    assert ws.document.plan.trajectories == ()
    ws.propose(["L1"], "11G")
    assert not window.controller.is_proposing and ws.document.plan.trajectories == ()
    assert session.panel.submit_button.isEnabled()

    plan = ws.document.plan
    for t in session.reference.trajectories:
        plan = plan.with_trajectory(t)
    ws.document.edit(plan, "Trainee's needles")
    session.panel.submit_button.click()
    score = session.score
    assert score is not None and score.passed and score.percent == pytest.approx(100.0)
    assert all(n.points == n.max_points and not n.failed for n in score.needles)
    assert "PASS" in session.panel.verdict_label.text()
    table = session.panel.score_table
    assert table.columnCount() == 4
    assert table.horizontalHeaderItem(0).toolTip() == score.needles[0].label
    assert table.item(0, 0).text() == "0.0"  # entry to the reference, mm
    assert table.item(table.rowCount() - 1, 0).text() == "OK"
    # the reference now shows in every view, and the scored plan is locked
    assert all(len(v._reference) == 4 for v in window.mpr_views)
    assert len(window.fluoro_panel.panes[0]._reference) == 4
    for t in session.reference.trajectories:
        assert window.view3d.prop(f"reference:{t.level}:{t.side.value}") is not None
    before = ws.document.plan
    t = before.trajectories[0]
    ws.editor.drag(t.level, t.side, "target", t.target + np.array([0.0, 0.0, 5.0]))
    assert ws.document.plan == before
    screenshot(qtbot, window, "training_submitted.png")
    # the rubric under the table is whole, reachable by scrolling the dock
    rubric = session.panel.rubric_label
    assert "How the score is made" in rubric.text()
    assert rubric.height() >= rubric.heightForWidth(rubric.width()) - 2
    scroll = session.dock.widget()
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum()
                    >= session.panel.height() - scroll.viewport().height() > 0)

    report = tmp_path / "trainee.pdf"
    assert session.write_report(report)
    qtbot.waitUntil(lambda: not window.controller.is_busy_with_task, timeout=120000)
    assert report.is_file() and report.read_bytes().startswith(b"%PDF")

    session.stop()
    assert session.panel.state == "idle" and not ws.editor.locked
    assert all(not v._reference for v in window.mpr_views)


def test_a_needle_in_the_canal_fails_whatever_else(qtbot, window) -> None:
    session = _start(qtbot, window, "l1-l2-saved")
    ws = window.workspace
    anatomy = window.controller.anatomy
    plan = ws.document.plan
    for t in session.reference.trajectories:
        plan = plan.with_trajectory(t)
    # the right L2 tip pushed into the canal's centre at its height
    ref = session.reference.get("L2", Side.RIGHT)
    k, j, i = np.nonzero(anatomy.canal)
    canal = anatomy.to_lps(np.stack([i, j, k], 1).astype(float))
    near = canal[np.abs(canal[:, 2] - ref.target_lps[2]) < 2.0].mean(axis=0)
    plan = plan.with_trajectory(ref.moved(target_lps=near))
    ws.document.edit(plan, "Trainee's needles")
    session.submit()
    score = session.score
    bad = next(n for n in score.needles if (n.level, n.side) == ("L2", Side.RIGHT))
    assert bad.failed and bad.points == 0
    assert not score.passed
    assert "FAIL" in session.panel.verdict_label.text()
    others = [n for n in score.needles if n is not bad]
    assert all(n.points == n.max_points for n in others)


def test_fluoroscopy_only_case_hides_the_slices(qtbot, window) -> None:
    session = _start(qtbot, window, "t12-fluoro")
    assert session.panel.fluoro_only
    assert all(not v.parentWidget().isVisible() for v in window.mpr_views)
    assert window.bottom_tabs.currentWidget() is window.fluoro_panel
    qtbot.waitUntil(lambda: window.fluoro_panel.panes[0].frame is not None, timeout=60000)
    assert window.fluoro_panel.panes[0].frame.view.kind == "ap"
    window.grab().save(str(ARTIFACTS / "training_fluoro_only.png"))
    session.stop()
    assert all(v.parentWidget().isVisible() for v in window.mpr_views)
