"""The level assessment in the window: fractured levels first and selected for Propose,
the level's numbers in the details panel, cement reach following the needles (Xvfb)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pytest

from app.controller import Controller
from app.main_window import MainWindow
from planning.plan import Side
from tests.app.gui_helpers import ARTIFACTS, open_window, pedicle_needle, screenshot

pytestmark = pytest.mark.gui



def _assessed_window(qtbot, monkeypatch, volume, anatomy) -> MainWindow:
    """The window on ``volume`` with ``anatomy``, once its first level assessment is in."""
    win = open_window(qtbot, monkeypatch, volume, anatomy)
    qtbot.waitUntil(lambda: win.workspace.assessment.runs >= 1, timeout=60000)
    return win


def test_fractured_level_leads_and_the_details_give_its_numbers(qtbot, demo,
                                                                monkeypatch) -> None:
    volume, truth, anatomy = demo
    win = _assessed_window(qtbot, monkeypatch, volume, anatomy)
    ws = win.workspace

    rows = ws.levels_panel.rows()
    assert rows[0].name == "L1" and rows[0].fracture_grade == 2
    assert all(r.fracture_grade in (0, None) for r in rows[1:])
    assert ws.levels_panel.selected_levels() == ["L1"]  # ready for Propose

    ws.select_level("L1")
    text = ws.details_panel.plain_text()
    assert "Moderate (Genant 2) wedge fracture" in text
    assert "Body volume" in text and " ml" in text and "Left pedicle" in text
    assert "Leakage risk".upper() in text.upper()

    plan = ws.document.plan
    for side in Side:
        plan = plan.with_trajectory(pedicle_needle(truth, "L1", side))
    runs = ws.assessment.runs
    ws.document.edit(plan, "Place L1 pair")
    qtbot.waitUntil(lambda: ws.assessment.runs > runs and not ws.assessment.is_busy,
                    timeout=60000)
    l1 = ws.assessment.result["L1"]
    assert l1.cement is not None and len(l1.cement.spreads) == 2
    ws.select_needle("L1", Side.LEFT)
    text = ws.details_panel.plain_text()
    assert "Left cement reach" in text and "basivertebral foramen" in text
    assert "Moderate (Genant 2)" in text  # the needle's details end with its level's
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    ws.levels_dock.raise_()
    qtbot.wait(100)
    screenshot(qtbot, win, "assessment_l1.png")

    # the cement spread preview of the selected level: in 3D and outlined in the slices,
    # inside the body, and it grows with the fill range from the settings
    cement = ws.window.view3d.prop("cement")
    assert cement is not None
    points = np.asarray(cement.GetMapper().GetInput().GetPoints().GetData())
    assert len(points) > 100
    centre = anatomy.levels["L1"].centroid_lps
    assert np.linalg.norm(points.mean(axis=0) - centre) < 15.0
    assert any(o.name.startswith("cement:L1") for o in win.axial_view._outlines)
    win.grab().save(str(ARTIFACTS / "assessment_cement.png"))
    before = l1.cement.spreads[0].volume_ml
    runs = ws.assessment.runs
    ws.assessment.fill_range = (0.10, 0.20)
    ws.session.assess(now=True)
    qtbot.waitUntil(lambda: ws.assessment.runs > runs and not ws.assessment.is_busy,
                    timeout=60000)
    after = ws.assessment.result["L1"].cement.spreads[0].volume_ml
    assert after == pytest.approx(before * 20 / 30, rel=0.02)
    ws.select_level("L2")  # no needles at L2: no preview
    qtbot.wait(50)
    assert ws.window.view3d.prop("cement") is None


def test_cement_fill_range_from_the_settings_dialog(qtbot, monkeypatch) -> None:
    """Edit ▸ Settings holds the cement fill range: the assessment uses it at once, it is
    kept for the next session, and low cannot pass high."""
    from app.settings import cement_fill_range
    from widgets.settings_dialog import SettingsDialog

    win = MainWindow(Controller(auto_anatomy=False))
    qtbot.addWidget(win)
    ws = win.workspace
    assert ws.assessment.fill_range == (0.15, 0.30)

    def accept(dialog: SettingsDialog) -> bool:
        assert dialog.fill_range() == pytest.approx((0.15, 0.30))
        dialog.fill_low_spin.setValue(20.0)
        dialog.fill_high_spin.setValue(10.0)  # clamped above the low end
        assert dialog.fill_high_spin.value() == 21.0
        dialog.fill_high_spin.setValue(35.0)
        return True

    monkeypatch.setattr(SettingsDialog, "exec", accept)
    ws.show_settings()
    assert ws.assessment.fill_range == pytest.approx((0.20, 0.35))
    assert cement_fill_range(ws.settings) == pytest.approx((0.20, 0.35))
    ws.settings.setValue("assessment/fill_low_pct", "nonsense")
    assert cement_fill_range(ws.settings) == (0.15, 0.30)  # an edited file: the defaults


def test_uncertain_names_select_no_level(qtbot, demo, monkeypatch) -> None:
    """The same fractured L1, but the level names uncertain (no cue in view): nothing is
    picked by its name, and the status bar says why."""
    import dataclasses

    volume, _truth, anatomy = demo
    doubtful = dataclasses.replace(anatomy, levels={
        n: dataclasses.replace(g, confidence=0.3) for n, g in anatomy.levels.items()})
    win = _assessed_window(qtbot, monkeypatch, volume, doubtful)
    ws = win.workspace
    assert ws.levels_panel.rows()[0].fracture_grade == 2  # still found and listed first
    assert ws.levels_panel.selected_levels() == []
    assert ws.levels_panel.labels_uncertain()
    assert "UNCERTAIN" in win.statusBar().currentMessage()
