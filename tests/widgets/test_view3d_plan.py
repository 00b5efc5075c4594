"""The 3-D view's plan layer: needles, handles, canal, labels, and dragging like a user.

pytest-qt under Xvfb (VTK in Qt needs a real X display). Mouse input goes through Qt
(`QTest` on the plotter widget), the path a user's mouse takes into VTK.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("QT_API", "pyside6")

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtTest import QTest

from planning.checks import Status
from planning.mask_reslice import mask_mesh
from planning.plan import Side
from planning.vocabulary import CANAL_COLOR, STATUS_COLORS
from tests.on_screen import on_screen
from widgets.plan_display import NeedleDisplay
from widgets.view3d import CANAL_OPACITY, View3D, needle_name

pytestmark = pytest.mark.gui

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
RADIUS_MM = 1.5  # an 11 G needle's outer radius

# two needles seen from behind (camera at +y, posterior): the patient's left (+x) is on
# the screen's left
L1_LEFT = NeedleDisplay("L1", Side.LEFT, np.array([25.0, 40.0, 5.0]),
                        np.array([6.0, -5.0, 0.0]), RADIUS_MM, Status.SAFE)
L1_RIGHT = NeedleDisplay("L1", Side.RIGHT, np.array([-25.0, 40.0, 5.0]),
                         np.array([-6.0, -5.0, 0.0]), RADIUS_MM, Status.UNSAFE)
L2_LEFT = NeedleDisplay("L2", Side.LEFT, np.array([25.0, 40.0, -30.0]),
                        np.array([6.0, -5.0, -35.0]), RADIUS_MM, Status.CAUTION)


def _moved(needle: NeedleDisplay, entry_lps: np.ndarray | None = None,
           target_lps: np.ndarray | None = None, **changes) -> NeedleDisplay:
    return NeedleDisplay(
        needle.level, needle.side,
        needle.entry_lps if entry_lps is None else entry_lps,
        needle.target_lps if target_lps is None else target_lps,
        changes.get("radius_mm", needle.radius_mm), changes.get("status", needle.status),
        selected=changes.get("selected", needle.selected))


@pytest.fixture
def view(qtbot):
    widget = on_screen(qtbot, View3D(), 800, 600)
    yield widget
    widget.close_view()


def _look_from_behind(view: View3D, focal_lps=(0.0, 15.0, -10.0), distance_mm=320.0) -> None:
    """Camera posterior of the needles, head up, a little from above."""
    camera = view.plotter.renderer.GetActiveCamera()
    focal = np.asarray(focal_lps, dtype=float)
    camera.SetFocalPoint(*focal)
    camera.SetPosition(*(focal + distance_mm * np.array([0.0, 1.0, 0.12])))
    camera.SetViewUp(0.0, 0.0, 1.0)
    view.plotter.renderer.ResetCameraClippingRange()
    view.plotter.render()


def _settle(qtbot, view: View3D) -> None:
    """Let the queued render run, then render once more so the frame is current."""
    qtbot.wait(10)
    view.plotter.render()


def _widget_point(view: View3D, point_lps: np.ndarray) -> QPoint:
    """Where a world point (LPS mm) is in the plotter widget's Qt coordinates: VTK display
    pixels are physical and count from the bottom, Qt's are logical and count from the top."""
    from vtkmodules.vtkRenderingCore import vtkCoordinate

    coord = vtkCoordinate()
    coord.SetCoordinateSystemToWorld()
    coord.SetValue(*np.asarray(point_lps, dtype=float))
    x, y = coord.GetComputedDoubleDisplayValue(view.plotter.renderer)
    ratio = view.plotter.devicePixelRatioF()
    height_px = view.plotter.ren_win.GetSize()[1]
    return QPoint(round(x / ratio), round((height_px - 1 - y) / ratio))


def _mm_per_px(view: View3D, point_lps: np.ndarray) -> float:
    """Size of one Qt pixel at a point's depth, from the camera's view angle (perspective)."""
    camera = view.plotter.renderer.GetActiveCamera()
    position = np.array(camera.GetPosition())
    forward = np.array(camera.GetFocalPoint()) - position
    forward /= np.linalg.norm(forward)
    depth = float((np.asarray(point_lps) - position) @ forward)
    height_mm = 2.0 * depth * np.tan(np.radians(camera.GetViewAngle()) / 2.0)
    return height_mm / view.plotter.ren_win.GetSize()[1] * view.plotter.devicePixelRatioF()


def _screen_axes(view: View3D) -> tuple[np.ndarray, np.ndarray]:
    """Unit LPS vectors of the screen's right and up."""
    camera = view.plotter.renderer.GetActiveCamera()
    forward = np.array(camera.GetFocalPoint()) - np.array(camera.GetPosition())
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array(camera.GetViewUp()))
    right /= np.linalg.norm(right)
    return right, np.cross(right, forward)


def _drag(view: View3D, start: QPoint, delta: QPoint, steps: int = 6) -> None:
    """Press, move in steps and release the left button, like a hand on a mouse."""
    QTest.mouseMove(view.plotter, start)
    QTest.mousePress(view.plotter, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     start)
    for i in range(1, steps + 1):
        QTest.mouseMove(view.plotter, start + delta * (i / steps))
    QTest.mouseRelease(view.plotter, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier, start + delta)


def _record(view: View3D) -> dict[str, list]:
    events: dict[str, list] = {"dragged": [], "finished": [], "picked": []}
    view.needle_dragged.connect(lambda *args: events["dragged"].append(args))
    view.needle_drag_finished.connect(lambda: events["finished"].append(True))
    view.needle_picked.connect(lambda *args: events["picked"].append(args))
    return events


def _rgb(image: QImage) -> np.ndarray:
    img = image.convertToFormat(QImage.Format.Format_RGB32)
    arr = np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), -1, 4)
    return arr[:, : img.width(), 2::-1].astype(int)  # BGRA → RGB


def _hue_deg(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hue (degrees), saturation and value of RGB pixels (0–255)."""
    x = rgb.astype(float) / 255.0
    top, low = x.max(axis=-1), x.min(axis=-1)
    chroma = top - low
    safe = np.where(chroma > 0, chroma, 1.0)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    hue = np.select([top == r, top == g], [((g - b) / safe) % 6, (b - r) / safe + 2],
                    (r - g) / safe + 4) * 60.0
    return hue, np.where(top > 0, chroma / np.where(top > 0, top, 1.0), 0.0), top


def _tinted(rgb: np.ndarray, color: str, hue_tolerance_deg: float = 14.0,
            min_saturation: float = 0.4, min_value: float = 0.25) -> np.ndarray:
    """Pixels of ``color``'s hue, saturated and bright enough not to be background or bone:
    lighting changes a surface's brightness along it, not its hue."""
    c = QColor(color)
    target_hue = _hue_deg(np.array([[c.red(), c.green(), c.blue()]]))[0][0]
    hue, saturation, value = _hue_deg(rgb)
    diff = np.abs((hue - target_hue + 180.0) % 360.0 - 180.0)
    return (diff <= hue_tolerance_deg) & (saturation > min_saturation) & (value > min_value)


def _tube_mask(shape=(60, 50, 50), radius_vox=6.0) -> np.ndarray:
    """A canal-like tube along k (superior–inferior), centred in i and j."""
    k, j, i = np.indices(shape)
    return ((i - 25) ** 2 + (j - 25) ** 2 <= radius_vox**2) & (k > 4) & (k < shape[0] - 5)


# ---- drawing ---------------------------------------------------------------------------
def test_needles_are_tubes_of_their_radius_between_entry_and_target(qtbot, view):
    view.show_needles([L1_LEFT, L1_RIGHT, L2_LEFT])
    _look_from_behind(view)
    _settle(qtbot, view)
    for needle in (L1_LEFT, L1_RIGHT, L2_LEFT):
        name = needle_name(needle.level, needle.side)
        actor = view.plotter.actors[name]
        bounds = np.array(actor.GetBounds()).reshape(3, 2)
        ends = np.stack([needle.entry_lps, needle.target_lps])
        # a tube's bounds reach at most one radius past its axis' ends, at least a little
        assert np.all(bounds[:, 0] >= ends.min(axis=0) - RADIUS_MM - 0.5)
        assert np.all(bounds[:, 0] <= ends.min(axis=0) + 0.5)
        assert np.all(bounds[:, 1] <= ends.max(axis=0) + RADIUS_MM + 0.5)
        assert np.all(bounds[:, 1] >= ends.max(axis=0) - 0.5)
        np.testing.assert_allclose(actor.GetProperty().GetColor(),
                                   QColor(STATUS_COLORS[needle.status]).getRgbF()[:3],
                                   atol=0.01)
        for part, point in (("entry", needle.entry_lps), ("target", needle.target_lps)):
            handle = view.prop(f"{name}:{part}")
            assert handle is not None and handle.GetVisibility()
            np.testing.assert_allclose(handle.GetPosition(), point, atol=1e-9)
            handle_radius = (handle.GetBounds()[1] - handle.GetBounds()[0]) / 2
            assert RADIUS_MM < handle_radius < 3 * RADIUS_MM  # bigger than the needle
        label = view.prop(f"{name}:label")
        assert label.GetInput() == needle.label
        # the label is beside the entry handle on screen, not on it nor on the needle
        entry_px = _widget_point(view, needle.entry_lps)
        target_px = _widget_point(view, needle.target_lps)
        label_x, label_y = label.GetPosition()
        label_px = np.array([label_x, view.plotter.ren_win.GetSize()[1] - 1 - label_y])
        outward = np.array([entry_px.x() - target_px.x(), entry_px.y() - target_px.y()])
        offset = label_px - np.array([entry_px.x(), entry_px.y()])
        assert 8.0 < np.linalg.norm(offset) < 40.0
        assert offset @ outward > 0.9 * np.linalg.norm(offset) * np.linalg.norm(outward)


def test_showing_a_moved_needle_moves_the_same_actor(qtbot, view):
    view.show_needles([L1_LEFT, L1_RIGHT])
    _settle(qtbot, view)
    actor = view.plotter.actors["needle:L1:left"]
    handle = view.prop("needle:L1:left:entry")
    count = view.plotter.renderer.GetActors().GetNumberOfItems()
    shift = np.array([0.0, 0.0, 12.0])
    view.show_needles([_moved(L1_LEFT, L1_LEFT.entry_lps + shift, L1_LEFT.target_lps + shift),
                       L1_RIGHT])
    _settle(qtbot, view)
    assert view.plotter.actors["needle:L1:left"] is actor
    assert view.prop("needle:L1:left:entry") is handle
    assert view.plotter.renderer.GetActors().GetNumberOfItems() == count
    z_min, z_max = actor.GetBounds()[4:6]
    assert z_min == pytest.approx(L1_LEFT.target_lps[2] + 12.0 - RADIUS_MM, abs=0.5)
    assert z_max == pytest.approx(L1_LEFT.entry_lps[2] + 12.0 + RADIUS_MM, abs=0.5)
    np.testing.assert_allclose(handle.GetPosition(), L1_LEFT.entry_lps + shift)

    view.show_needles([L1_RIGHT])  # a needle left out of the list is gone, parts and all
    assert "needle:L1:left" not in view.plotter.actors
    assert view.prop("needle:L1:left:entry") is None
    assert view.prop("needle:L1:left:label") is None
    assert view.plotter.actors["needle:L1:right"] is not None


def test_selected_needle_is_brighter_and_has_a_halo(qtbot, view):
    view.show_needles([_moved(L1_LEFT, selected=True), L1_RIGHT])
    _settle(qtbot, view)
    selected = np.array(view.plotter.actors["needle:L1:left"].GetProperty().GetColor())
    plain = np.array(QColor(STATUS_COLORS[Status.SAFE]).getRgbF()[:3])
    assert selected.sum() > plain.sum() + 0.1
    assert view.prop("needle:L1:left:halo").GetVisibility()
    assert not view.prop("needle:L1:right:halo").GetVisibility()


def test_screenshot_shows_safe_green_left_and_unsafe_red_right(qtbot, view):
    thick = [_moved(L1_LEFT, radius_mm=3.0), _moved(L1_RIGHT, radius_mm=3.0)]
    view.show_needles(thick)
    _look_from_behind(view, focal_lps=(0.0, 15.0, 0.0), distance_mm=200.0)
    _settle(qtbot, view)
    rgb = _rgb(view.grab().toImage())
    green = _tinted(rgb, STATUS_COLORS[Status.SAFE])
    red = _tinted(rgb, STATUS_COLORS[Status.UNSAFE])
    assert green.sum() > 200 and red.sum() > 200, (green.sum(), red.sum())
    half = rgb.shape[1] // 2  # seen from behind, the patient's left is the screen's left
    assert green[:, :half].sum() > 0.9 * green.sum()
    assert red[:, half:].sum() > 0.9 * red.sum()


def test_canal_from_a_tube_mask_is_a_translucent_surface(qtbot, view):
    affine = np.diag([0.8, 0.8, 1.0, 1.0])
    affine[:3, 3] = [-20.0, -20.0, -30.0]
    vertices, faces, normals = mask_mesh(_tube_mask(), affine)
    view.show_canal(vertices, faces, normals)
    _settle(qtbot, view)
    canal = view.prop("canal")
    assert canal is not None
    assert canal.GetProperty().GetOpacity() == pytest.approx(CANAL_OPACITY)
    assert canal.GetProperty().GetOpacity() < 1.0
    np.testing.assert_allclose(canal.GetProperty().GetColor(),
                               QColor(CANAL_COLOR).getRgbF()[:3], atol=0.01)
    x_min, x_max = canal.GetBounds()[:2]
    assert x_min == pytest.approx(-20.0 + 0.8 * 19, abs=1.0)  # tube of 6 voxels around i=25
    assert x_max == pytest.approx(-20.0 + 0.8 * 31, abs=1.0)

    view.show_highlight(vertices, faces, normals)
    assert view.prop("highlight").GetProperty().GetOpacity() < 1.0
    empty = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
    view.show_canal(*empty)
    view.show_highlight(*empty)
    assert view.prop("canal") is None and view.prop("highlight") is None


def test_level_labels_are_replaced_by_name(qtbot, view):
    view.show_level_labels({"L1": np.array([0.0, 0.0, 0.0]), "L2": np.array([0.0, 0.0, -30.0])})
    assert view.prop("level:L1").GetInput() == "L1"
    view.show_level_labels({"L2": np.array([0.0, 0.0, -31.0])})
    assert view.prop("level:L1") is None
    assert view.prop("level:L2").GetInput() == "L2"


# ---- dragging and picking ----------------------------------------------------------------
@pytest.mark.parametrize(("part", "fraction"), [("entry", 0.0), ("target", 1.0),
                                                ("needle", 0.5)])
def test_drag_moves_a_point_in_the_screen_plane_and_not_the_camera(qtbot, view, part,
                                                                   fraction):
    needle = L1_LEFT
    view.show_needles([needle, L1_RIGHT])
    _look_from_behind(view)
    events = _record(view)
    grabbed = needle.entry_lps + fraction * (needle.target_lps - needle.entry_lps)
    camera = view.plotter.renderer.GetActiveCamera()
    before = (camera.GetPosition(), camera.GetFocalPoint(), camera.GetViewUp())
    delta = QPoint(36, -24)  # right and up on the screen
    start = _widget_point(view, grabbed)
    QTest.mouseMove(view.plotter, start)
    QTest.mousePress(view.plotter, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     start)
    for i in range(1, 7):
        QTest.mouseMove(view.plotter, start + delta * (i / 6))
    # while dragging, the view has moved its own needle already
    moving_end = "target" if part == "target" else "entry"
    np.testing.assert_allclose(view.prop(f"needle:L1:left:{moving_end}").GetPosition(),
                               events["dragged"][-1][3], atol=1e-6)
    QTest.mouseRelease(view.plotter, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier, start + delta)

    assert len(events["dragged"]) == 6 and events["finished"] == [True]
    assert not events["picked"]
    level, side, got_part, lps = events["dragged"][-1]
    assert (level, side, got_part) == ("L1", Side.LEFT, part)
    right, up = _screen_axes(view)
    expected = (delta.x() * right - delta.y() * up) * _mm_per_px(view, grabbed)
    start_lps = needle.target_lps if part == "target" else needle.entry_lps
    moved = np.asarray(lps) - start_lps
    assert np.linalg.norm(moved - expected) < 0.05 * np.linalg.norm(expected) + 0.2, (
        moved, expected)
    assert (camera.GetPosition(), camera.GetFocalPoint(), camera.GetViewUp()) == before
    # no controller answered with show_needles: the view shows the plan as given again
    np.testing.assert_allclose(view.prop("needle:L1:left:entry").GetPosition(),
                               needle.entry_lps)


def test_a_controller_that_redraws_on_each_move_keeps_the_needle_where_dropped(qtbot, view):
    shown = {L1_LEFT.key: L1_LEFT, L1_RIGHT.key: L1_RIGHT}

    def controller(level: str, side: Side, part: str, lps: np.ndarray) -> None:
        old = shown[(level, side)]
        shown[(level, side)] = _moved(old, entry_lps=np.asarray(lps))
        view.show_needles(list(shown.values()))

    view.needle_dragged.connect(controller)
    view.show_needles(list(shown.values()))
    _look_from_behind(view)
    _drag(view, _widget_point(view, L1_LEFT.entry_lps), QPoint(-30, 0))
    final = shown[L1_LEFT.key].entry_lps
    assert np.linalg.norm(final - L1_LEFT.entry_lps) > 5.0
    assert final[0] > L1_LEFT.entry_lps[0]  # screen left, seen from behind: patient left
    np.testing.assert_allclose(view.prop("needle:L1:left:entry").GetPosition(), final)
    np.testing.assert_allclose(view.prop("needle:L1:right:entry").GetPosition(),
                               L1_RIGHT.entry_lps)


def test_click_on_a_needle_picks_it_and_a_drag_elsewhere_turns_the_camera(qtbot, view):
    view.show_needles([L1_LEFT, L1_RIGHT])
    _look_from_behind(view)
    events = _record(view)
    middle = (L1_RIGHT.entry_lps + L1_RIGHT.target_lps) / 2
    QTest.mouseClick(view.plotter, Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, _widget_point(view, middle))
    assert events["picked"] == [("L1", Side.RIGHT)]
    assert not events["dragged"] and not events["finished"]

    camera = view.plotter.renderer.GetActiveCamera()
    before = np.array(camera.GetPosition())
    _drag(view, QPoint(60, 60), QPoint(80, 0))  # empty corner: no needle there
    assert np.linalg.norm(np.array(camera.GetPosition()) - before) > 10.0
    assert events["picked"] == [("L1", Side.RIGHT)] and not events["dragged"]


def test_not_editable_hides_handles_and_a_drag_on_a_needle_turns_the_camera(qtbot, view):
    view.show_needles([L1_LEFT])
    view.set_editable(False)
    _look_from_behind(view)
    events = _record(view)
    assert not view.prop("needle:L1:left:entry").GetVisibility()
    assert not view.prop("needle:L1:left:target").GetVisibility()
    camera = view.plotter.renderer.GetActiveCamera()
    before = np.array(camera.GetPosition())
    _drag(view, _widget_point(view, L1_LEFT.entry_lps), QPoint(60, 0))
    assert not events["dragged"] and not events["finished"]
    assert np.linalg.norm(np.array(camera.GetPosition()) - before) > 10.0
    _look_from_behind(view)
    middle = (L1_LEFT.entry_lps + L1_LEFT.target_lps) / 2
    QTest.mouseClick(view.plotter, Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, _widget_point(view, middle))
    assert events["picked"] == [("L1", Side.LEFT)]
    view.set_editable(True)
    assert view.prop("needle:L1:left:entry").GetVisibility()


# ---- the demo spine ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_scene(shared_demo_ct):
    """Bone surface, canal mesh and level truth of the demo CT (built once per module)."""
    from planning.anatomy.from_demo import anatomy_from_demo_truth
    from planning.surface import extract_bone_surface

    volume, truth = shared_demo_ct
    bone = extract_bone_surface(volume)
    anatomy = anatomy_from_demo_truth(truth)
    canal = mask_mesh(anatomy.canal, anatomy.affine_lps)
    return bone, canal, truth


def _pedicle_needles(truth, levels: list[str], statuses: list[Status]) -> list[NeedleDisplay]:
    """Needles along the demo's designed pedicle axes, entry to anterior cortex − 5 mm."""
    by_name = {lv.name: lv for lv in truth.levels}
    needles = []
    for i, (name, side) in enumerate((n, s) for n in levels for s in (Side.LEFT, Side.RIGHT)):
        p = by_name[name].pedicle(side)
        needles.append(NeedleDisplay(name, side, p.entry_lps.copy(),
                                     p.anterior_cortex_lps - 5.0 * p.direction_lps,
                                     RADIUS_MM, statuses[i % len(statuses)]))
    return needles


@pytest.mark.slow
def test_demo_spine_screenshot_shows_needles_canal_and_labels(qtbot, view, demo_scene):
    bone, canal, truth = demo_scene
    view.resize(900, 760)
    view.show_surface(bone.vertices_lps, bone.faces, bone.normals_lps)
    view.show_canal(*canal)
    needles = _pedicle_needles(truth, ["L1", "L2"],
                               [Status.SAFE, Status.UNSAFE, Status.CAUTION, Status.SAFE])
    needles[0] = _moved(needles[0], selected=True)
    view.show_needles(needles)
    view.show_level_labels({lv.name: lv.centroid_lps for lv in truth.levels})
    # zoom onto L1–L2 from the default posterior-left-oblique direction
    camera = view.plotter.renderer.GetActiveCamera()
    centre = np.mean([n.entry_lps for n in needles], axis=0) + np.array([0.0, -15.0, 0.0])
    direction = np.array(camera.GetPosition()) - np.array(camera.GetFocalPoint())
    camera.SetFocalPoint(*centre)
    camera.SetPosition(*(centre + 260.0 * direction / np.linalg.norm(direction)))
    view.plotter.renderer.ResetCameraClippingRange()
    _settle(qtbot, view)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    image = view.grab().toImage()
    image.save(str(ARTIFACTS / "view3d_plan.png"))
    rgb = _rgb(image)
    ratio = image.devicePixelRatio()
    # the needles lie inside the bone: along each one's pedicle part its x-ray ghost shows,
    # in its status colour (the bone's ivory is far less saturated); nearer the tip, the
    # canal, in front of the body seen from behind, tints it
    for needle in needles:
        samples = [_widget_point(view, needle.entry_lps + t * (needle.target_lps
                                                               - needle.entry_lps))
                   for t in np.linspace(0.1, 0.4, 11)]
        pixels = np.array([rgb[round(p.y() * ratio), round(p.x() * ratio)] for p in samples])
        tinted = _tinted(pixels[None], needle.color.name(), hue_tolerance_deg=20.0,
                         min_saturation=0.3)
        assert tinted.mean() >= 0.7, f"{needle.label} not seen along its axis: {pixels}"
    # the canal tints the ivory bone it shows through: weakly saturated, bright, canal hue
    # (the blue-grey background has a hue 25° away and is dark)
    cyan = _tinted(rgb, CANAL_COLOR, min_saturation=0.12, min_value=0.45)
    assert cyan.mean() > 0.03, f"canal covers only {cyan.mean():.1%} of the view"


@pytest.mark.slow
def test_redrawing_ten_needles_over_the_demo_bone_is_cheap(qtbot, view, demo_scene):
    """show_needles runs on every mouse move of a drag; it must cost far less than the
    render that follows. Prints the timings (seen with pytest -s)."""
    bone, canal, truth = demo_scene
    view.show_surface(bone.vertices_lps, bone.faces, bone.normals_lps)
    view.show_canal(*canal)
    needles = _pedicle_needles(truth, ["T12", "L1", "L2", "L3", "L4"], [Status.SAFE])
    view.show_needles(needles)
    _settle(qtbot, view)
    update_s, frame_s = [], []
    for step in range(12):
        shift = np.array([0.0, 0.0, 0.25 * (step % 4)])
        moved = [_moved(n, n.entry_lps + shift) for n in needles]
        t0 = time.perf_counter()
        view.show_needles(moved)
        t1 = time.perf_counter()
        view.plotter.render()
        t2 = time.perf_counter()
        update_s.append(t1 - t0)
        frame_s.append(t2 - t0)
    bone_only = []
    view.show_needles([])
    view.show_canal(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
    for _ in range(6):
        t0 = time.perf_counter()
        view.plotter.render()
        bone_only.append(time.perf_counter() - t0)
    print(f"\n{'10 needles, demo bone (' + format(len(bone.faces), ',') + ' triangles)':48s}"
          f" median    min")
    for label, values in (("show_needles (update only)", update_s),
                          ("show_needles + render (bone, canal, needles)", frame_s),
                          ("render, bone only (reference)", bone_only)):
        print(f"{label:48s} {1000 * np.median(values):6.1f} {1000 * min(values):6.1f} ms")
    assert np.median(update_s) < 0.005
