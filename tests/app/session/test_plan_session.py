"""A planning session driven with no window at all: the CT and its anatomy, a proposal,
edits with undo, the checks, the level assessment and the case list.

Why: the session is what a plan *is*; the window only shows it (`app.plan_session`). These
tests would fail if any of it still needed a widget.
"""

from __future__ import annotations

import numpy as np
import pytest
import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication, QWidget

from app.controller import Controller
from app.plan_session import PlanSession
from planning.anatomy.from_demo import anatomy_from_demo_truth
from planning.checks import Status
from planning.plan import Plan, Side
from tests.app.gui_helpers import pedicle_needle


def _top_level_widgets() -> set[int]:
    """The C++ addresses of the application's top-level widgets (a Python wrapper's id
    changes from call to call; the widget's address does not)."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    return {shiboken6.getCppPointer(w)[0] for w in app.topLevelWidgets()}


@pytest.fixture
def session(qtbot, shared_demo_ct):
    volume, truth = shared_demo_ct
    before = _top_level_widgets()  # what earlier tests left on the screen
    s = PlanSession(Controller(auto_anatomy=False))
    s.controller.set_volume(volume)
    s.controller.set_anatomy(anatomy_from_demo_truth(truth))
    s.setProperty("made_widgets", len(_top_level_widgets() - before))
    yield s, truth
    s.shutdown()
    s.controller.shutdown()


def test_a_session_needs_no_window(qtbot, session) -> None:
    s, truth = session
    # nothing the session made is a widget: it holds the plan, the window only shows it
    assert s.property("made_widgets") == 0
    assert not s.findChildren(QWidget)
    assert all(not isinstance(o, QWidget) for o in s.findChildren(QObject))
    assert s.plan.frame_of_reference_uid == s.controller.volume.frame_of_reference_uid
    needle = pedicle_needle(truth, "L2", Side.LEFT)
    s.document.edit(Plan(s.plan.study_uid, s.plan.series_uid, s.plan.frame_of_reference_uid,
                         (needle,)), "Place L2 left")
    result = s.editor.result(("L2", Side.LEFT))
    assert result is not None and result.status is Status.SAFE  # checked on the edit
    assert result.canal_clearance_mm > 2.0
    # into the canal: the same edit path (placing), and the check says unsafe
    anatomy = s.controller.anatomy
    k, j, i = np.nonzero(anatomy.canal)
    canal = anatomy.to_lps(np.stack([i, j, k], 1).astype(float))
    centre = anatomy.levels["L2"].centroid_lps
    canal_at_l2 = canal[np.abs(canal[:, 2] - centre[2]) < 3.0].mean(axis=0)
    s.editor.start_placing("L2", Side.RIGHT)
    s.editor.point_placed(truth.level("L2").pedicle(Side.RIGHT).entry_lps)
    s.editor.point_placed(canal_at_l2)
    into_canal = s.editor.result(("L2", Side.RIGHT))
    assert into_canal is not None and into_canal.status is Status.UNSAFE
    s.document.undo_stack.undo()
    assert s.plan.get("L2", Side.RIGHT) is None and s.plan.get("L2", Side.LEFT) is not None
    assert set(s.editor.results) == {("L2", Side.LEFT)}


def test_the_assessment_follows_the_plan_and_is_offered_to_the_export(qtbot, session) -> None:
    s, truth = session
    s.assess(now=True)
    qtbot.waitUntil(lambda: bool(s.assessment.result) and not s.assessment.is_busy,
                    timeout=60000)
    assert "L2" in s.assessment.result
    assert s.assessment_of_plan() is not None  # made for this plan: the export prints it
    needle = pedicle_needle(truth, "L2", Side.LEFT)
    s.document.edit(Plan(s.plan.study_uid, s.plan.series_uid, s.plan.frame_of_reference_uid,
                         (needle,)), "Place L2 left")
    assert s.assessment.is_busy  # the edit re-assesses, after the needles settle
    assert s.assessment_of_plan() is None  # not for these needles yet: not offered
    qtbot.waitUntil(lambda: not s.assessment.is_busy, timeout=60000)
    offered = s.assessment_of_plan()
    assert offered is not None and offered["L2"] is s.assessment.result["L2"]


def test_case_list_problems_are_said_as_session_messages(qtbot, tmp_path, monkeypatch,
                                                         shared_demo_ct) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the data folder should be")
    monkeypatch.setenv("VERTEBROPLAN_DATA", str(blocked))
    s = PlanSession(Controller(auto_anatomy=False))
    said: list[str] = []
    s.message.connect(said.append)
    s.cases.ct_opened(shared_demo_ct[0], None, True)
    assert said and "not recorded" in said[0]
    s.controller.shutdown()
