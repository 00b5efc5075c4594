"""A CT too coarse for the automatic anatomy's measured envelope, in the window: the spine
is shown with its names marked uncertain, Propose leaves every level out with one reason,
and the bodies carry no grade (`planning.anatomy.resolution`)."""

from __future__ import annotations

import pytest

from app.plan_workspace import omitted_text
from bench.accuracy import DATA, _as_volume
from bench.accuracy_storings import thick_slices
from planning.anatomy.from_ct import anatomy_from_ct
from planning.io.nifti import load_nifti
from tests.app.gui_helpers import open_window, screenshot

CT = DATA / "ct-abdomen-3mm" / "ct.nii.gz"


def test_levels_left_out_for_one_reason_are_named_together() -> None:
    text = omitted_text({"L1": "L1: too coarse.", "L2": "L2: too coarse", "S1": "S1: sacrum"})
    assert text == "Left out L1, L2: too coarse; S1: sacrum."


def test_a_five_millimetre_ct_is_shown_but_not_planned_automatically(qtbot, monkeypatch
                                                                     ) -> None:
    if not CT.exists():
        pytest.skip("shared data absent")
    volume = thick_slices(_as_volume(load_nifti(CT)), 5.0)
    window = open_window(qtbot, monkeypatch, volume, anatomy_from_ct(volume))
    ws = window.workspace
    assert ws.levels_panel.labels_uncertain()
    assert "3.0 × 3.0 × 5.0 mm" in ws.levels_panel.warning_label.toolTip()  # says why
    said: list[str] = []  # what the window writes in its status bar (other slots may follow)
    shown = ws._status
    monkeypatch.setattr(ws, "_status", lambda text, ms: (said.append(text), shown(text, ms)))
    # the checks' context comes with the anatomy (set at once here; an anatomy found in the
    # background brings it later), and without it there is nothing to propose with
    qtbot.waitUntil(lambda: window.controller.check_context is not None, timeout=60000)
    ws.propose([], "11G")  # nothing selected: every level
    qtbot.waitUntil(lambda: any(t.startswith("Proposed") for t in said), timeout=60000)
    assert ws.document.plan.trajectories == ()
    message = next(t for t in said if t.startswith("Proposed"))
    assert message.startswith("Proposed 0 needles")
    assert message.count("thin-slice reconstruction") == 1  # one reason, said once
    assert "3.0 × 3.0 × 5.0 mm" in message
    ws.levels_dock.raise_()
    screenshot(qtbot, window, "coarse_ct_not_proposed.png")
