"""A hand-placed needle into the aorta in the window: unsafe, with the vessel drawn in the
slices and in 3D; moved away, the vessel goes (pytest-qt, Xvfb).

The CT is a phantom painted from the shared real label map with an aorta and a vena cava of
300/200 HU pressed against the bodies; the anatomy comes from its labels, which know nothing
of vessels: the checks find them in the image.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pytest

from app.controller import Controller
from app.main_window import MainWindow
from planning.checks import Status
from planning.plan import Side, Trajectory
from tests.app.gui_helpers import ARTIFACTS
from tests.on_screen import on_screen
from tests.planning import painted_cases as pc

pytestmark = pytest.mark.gui



@pytest.fixture(scope="module")
def phantom():
    return pc.abdomen_phantom()


def _window_beside_the_aorta(qtbot, phantom, monkeypatch):  # type: ignore[no-untyped-def]
    """The window on the phantom; L2's geometry, a point in the aorta beside it, and an
    entry behind L2's left pedicle."""
    win = on_screen(qtbot, MainWindow(Controller(auto_anatomy=False)), 1600, 960)
    win.controller.set_volume(phantom.ct)
    win.controller.set_anatomy(phantom.anatomy)
    monkeypatch.setattr(win.workspace.files, "confirm_discard", lambda _doing: True)
    geo = phantom.anatomy.levels["L2"]
    pts = pc.truth_vessel_points(phantom)
    near = pts[(np.abs(pts[:, 2] - geo.centroid_lps[2]) < 2.0) & (pts[:, 0] > geo.centroid_lps[0])]
    entry = geo.centroid_lps + 25.0 * geo.left_lps - 45.0 * geo.anterior_lps
    return win, geo, near.mean(axis=0), entry


def test_needle_into_the_aorta_shows_the_vessel(qtbot, phantom, monkeypatch) -> None:
    win, geo, aorta, entry = _window_beside_the_aorta(qtbot, phantom, monkeypatch)
    ws = win.workspace
    ws.document.edit(ws.document.plan.with_trajectory(
        Trajectory("L2", Side.LEFT, tuple(entry), tuple(aorta))), "Place")
    qtbot.waitUntil(lambda: ws.editor.result(("L2", Side.LEFT)) is not None, timeout=5000)
    result = ws.editor.result(("L2", Side.LEFT))
    assert result.status is Status.UNSAFE
    assert any("contrast-filled vessel" in r for r in result.reasons)
    # the vessel in every slice view and in 3D
    for view in win.mpr_views:
        assert any(o.name == "vessels" for o in view._outlines)
    assert win.view3d.prop("vessels") is not None
    win.controller.set_crosshair(aorta)
    qtbot.wait(300)
    ARTIFACTS.mkdir(exist_ok=True)
    win.grab().save(str(ARTIFACTS / "needle_into_aorta.png"))
    # pixels of the vessel colour in the axial view, around the aorta
    image = win.axial_view.grab().toImage()
    centre = win.axial_view.lps_to_widget(aorta)
    pink = 0
    for dx in range(-40, 41, 2):
        for dy in range(-40, 41, 2):
            c = image.pixelColor(int(centre.x()) + dx, int(centre.y()) + dy)
            pink += c.red() > 200 and c.green() < 140 and c.blue() > 110
    assert pink > 5
    # a safe needle far from it: the vessel is no longer shown
    safe_tip = geo.centroid_lps + 4.0 * geo.left_lps + 6.0 * geo.anterior_lps
    ws.document.edit(ws.document.plan.with_trajectory(
        Trajectory("L2", Side.LEFT, tuple(entry), tuple(safe_tip))), "Move")
    qtbot.waitUntil(lambda: not any(o.name == "vessels" for o in win.axial_view._outlines),
                    timeout=5000)
    assert win.view3d.prop("vessels") is None


def test_a_drag_near_the_aorta_draws_it_in_the_slices_at_once_and_in_3d_at_the_pause(
        qtbot, phantom, monkeypatch) -> None:
    """While a needle is dragged towards the aorta, the slices show the vessel on the move
    that brings it near; the 3D view (a surface and a 3D frame, ~0.1 s without a GPU) waits
    for the mouse to pause, as the needles do, and then shows it."""
    win, geo, aorta, entry = _window_beside_the_aorta(qtbot, phantom, monkeypatch)
    ws = win.workspace
    safe_tip = geo.centroid_lps + 4.0 * geo.left_lps + 6.0 * geo.anterior_lps
    ws.document.edit(ws.document.plan.with_trajectory(
        Trajectory("L2", Side.LEFT, tuple(entry), tuple(safe_tip))), "Place")
    qtbot.waitUntil(lambda: ws.editor.result(("L2", Side.LEFT)) is not None, timeout=5000)
    assert win.view3d.prop("vessels") is None
    ws.editor._dragging = True  # as `PlanEditor.drag` marks a drag under way
    try:
        ws.document.edit(ws.document.plan.with_trajectory(
            Trajectory("L2", Side.LEFT, tuple(entry), tuple(aorta))), "Move")
        qtbot.waitUntil(lambda: any(o.name == "vessels" for o in win.axial_view._outlines),
                        timeout=5000)
        assert win.view3d.prop("vessels") is None  # not on the move
        ws.scene.flush_3d()  # the mouse pauses
        assert win.view3d.prop("vessels") is not None
    finally:
        ws.editor._dragging = False
