"""3-D view of the bone surface, the canal and the planned needles (pyvistaqt), in LPS mm.

VTK world coordinates are patient LPS millimetres; the orientation cube's faces are lettered
L/R, P/A, S/I. Actors are kept by name, so showing new state replaces the old one. Every
change only marks the scene dirty; one render per event-loop pass follows, because a render
costs tens of milliseconds without a GPU and a drag or a load changes the scene many times
in a row.

Two layers share one camera. Layer 0 (pyvista's renderer) holds what is seen as it is: the
opaque bone, the solid needles and the crosshair. Layer 1, the "x-ray" layer, is drawn over
it with its own depth buffer and holds what the surgeon must see *through* the bone: faint
ghosts of the needles (a needle inside a pedicle is hidden by the bone around it), the canal
(the structure the needle must not reach), the tint of the vertebra being edited, the drag
handles and the labels. So the visible part of a needle is solid, the hidden part faded,
and a handle can always be seen and grabbed.

The view is thin: it draws the `NeedleDisplay` values it is given and emits what the user
did (``needle_dragged``, ``needle_drag_finished``, ``needle_picked``); it never edits the plan.
"""

from __future__ import annotations

import time

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor
from vtkmodules.vtkCommonCore import vtkObject
from vtkmodules.vtkRenderingCore import vtkCoordinate, vtkProp

from planning.plan import Side
from planning.vocabulary import (
    CANAL_COLOR,
    CEMENT_COLOR,
    HIGHLIGHT_COLOR,
    REFERENCE_COLOR,
    VESSEL_COLOR,
)
from planning.volume import FloatArray
from widgets.needle_actors import NeedleActors, vtk_rgb, world_label
from widgets.needle_picking import Grab, display_to_world, pick_needle, px_per_mm, world_to_display
from widgets.orientation_marker import orientation_marker
from widgets.painting import triangle_mesh
from widgets.plan_display import NeedleDisplay
from widgets.xray_layer import XrayLayer

BONE_COLOR = (0.91, 0.87, 0.78)
CROSSHAIR_COLOR = (1.0, 0.85, 0.25)
BACKGROUND_TOP, BACKGROUND_BOTTOM = "#3a4150", "#0e1014"
TITLE_COLOR, STATUS_COLOR = "#7fb2ee", "#c8ced6"
# seen from behind the patient, a little from the left and from above: the spinous
# processes, laminae and pedicle entry points, which the needle passes, face the viewer
CAMERA_FROM_CENTRE = np.array([0.45, 1.0, 0.25])
TITLE = "3D bone surface"

CANAL_OPACITY = 0.35
HIGHLIGHT_OPACITY = 0.30
CEMENT_OPACITY = 0.65
VESSEL_OPACITY = 0.45
# the translucent surfaces of the x-ray layer: name → (colour, opacity)
XRAY_SURFACES = {"canal": (CANAL_COLOR, CANAL_OPACITY),
                 "highlight": (HIGHLIGHT_COLOR, HIGHLIGHT_OPACITY),
                 "cement": (CEMENT_COLOR, CEMENT_OPACITY),
                 "vessels": (VESSEL_COLOR, VESSEL_OPACITY)}
# level labels: beside the vertebra on the patient's right (−x) and a little anterior (−y),
# away from the posterior pedicle entries where the needles and their handles are
LEVEL_LABEL_OFFSET_LPS = np.array([-48.0, -10.0, 0.0])
LEVEL_LABEL_COLOR = (0.86, 0.89, 0.93)
DRAG_START_PX = 3.0  # a press that moves less than this before release is a click
EVENT_PRIORITY = 10.0  # above the interactor style's 0.0: we see mouse events first


def needle_name(level: str, side: Side) -> str:
    """The actor name of one needle ("needle:L1:left"); its parts add ":entry" etc."""
    return f"needle:{level}:{Side(side).value}"


class View3D(QWidget):
    """Bone surface, canal, needles and their handles, crosshair and orientation cube.

    Left-drag on empty space rotates the camera; on a needle's handle moves that end, on
    the needle's shaft moves the whole needle (``needle_dragged``); a click on a needle
    selects it (``needle_picked``).
    """

    surface_shown = Signal()
    """Emitted once a new surface has been rendered (used for timing and tests)."""
    needle_dragged = Signal(str, object, str, object)
    """(level, Side, part, lps ndarray(3)) for each mouse move of a drag. ``part`` is
    "entry", "target" or "needle"; for "needle" the point is the new entry of the whole
    needle translated (the target moves by the same vector)."""
    needle_drag_finished = Signal()
    """The mouse was released after a drag (the end of one undo step)."""
    needle_picked = Signal(str, object)
    """(level, Side): a click without a drag on a needle, to select it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view3d")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        # no multisampling: with software OpenGL (no GPU) 4× MSAA makes every frame five
        # times slower (470 vs 95 ms for the demo spine); FXAA smooths edges for ~15 ms
        self.plotter = QtInteractor(self, auto_update=False, multi_samples=0)
        layout.addWidget(self.plotter)
        self.plotter.enable_anti_aliasing("fxaa")
        self.last_render_s = 0.0
        """Wall time of the last frame: the main window throttles live 3D updates by it."""
        self._render_started = 0.0
        self.plotter.ren_win.AddObserver("StartEvent", self._on_render_start)
        self.plotter.ren_win.AddObserver("EndEvent", self._on_render_end)
        # VTK and pyvista bind single keys to actions that make no sense here ("q" closes the
        # render window, "w" wireframe, "3" stereo, "e" exit); keys belong to the application
        self.plotter.iren.clear_key_event_callbacks()
        self.plotter.iren.interactor.RemoveObservers("CharEvent")
        self.plotter.set_background(BACKGROUND_BOTTOM, top=BACKGROUND_TOP)
        self._font_scale = max(1.0, float(self.devicePixelRatioF()))
        assert self.plotter.ren_win is not None  # the plotter was just made
        self._xray = XrayLayer(self.plotter.ren_win, self.plotter.renderer)
        # pyvista may give the main renderer a new camera object; follow it before each frame
        self._camera_observer = self.plotter.renderer.AddObserver(
            "StartEvent", self._before_frame)
        self._add_orientation_cube()
        self.plotter.add_text(TITLE, position="upper_left", font_size=10, color=TITLE_COLOR,
                              name="title", render=False)
        self._crosshair_lps: FloatArray | None = None
        self._has_surface = False
        self._announce_surface = False
        self._needles: dict[tuple[str, Side], NeedleActors] = {}
        self._reference_names: list[str] = []
        self._shown: dict[tuple[str, Side], NeedleDisplay] = {}
        self._level_anchors: dict[str, vtkCoordinate] = {}
        self._editable = True
        self._closed = False
        self._grab: Grab | None = None
        self._camera_press = False
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._render_now)
        iren = self.plotter.iren.interactor
        self._observers = {
            event: iren.AddObserver(event, handler, EVENT_PRIORITY)
            for event, handler in (("LeftButtonPressEvent", self._on_left_press),
                                   ("MouseMoveEvent", self._on_mouse_move),
                                   ("LeftButtonReleaseEvent", self._on_left_release))
        }
        # while the camera style rotates it holds the interactor's focus, and only passive
        # observers see the release: this one ends a press that the camera took
        self._passive_release = iren.AddObserver("LeftButtonReleaseEvent",
                                                 self._on_camera_release, EVENT_PRIORITY)
        iren.GetCommand(self._passive_release).SetPassiveObserver(1)
        self.set_status("No surface")

    def _before_frame(self, _caller: vtkObject, _event: str) -> None:
        """Each frame, before anything is drawn: share the camera, place needle labels
        (their place on screen depends on the camera, which the user turns at will)."""
        renderer = self.plotter.renderer
        self._xray.follow(renderer.GetActiveCamera())
        for props in self._needles.values():
            entry = np.array(props.handles["entry"].GetPosition())
            target = np.array(props.handles["target"].GetPosition())
            props.place_label(world_to_display(renderer, entry), world_to_display(renderer, target),
                              props.handle_radius_mm * px_per_mm(renderer, entry))

    def _add_orientation_cube(self) -> None:
        """The patient-direction cube (`widgets.orientation_marker`) in the lower left."""
        marker = orientation_marker(self._font_scale)
        self._orientation_widget = self.plotter.add_orientation_widget(
            marker, interactive=False, viewport=(0.0, 0.0, 0.2, 0.2))
        # the axes' bounds are symmetric though its arrows point one way: zoom onto them
        self._orientation_widget.SetZoom(1.45)
        # the marker goes above the x-ray layer, so labels never cover it
        renderers = self.plotter.ren_win.GetRenderers()
        renderers.InitTraversal()
        for _ in range(renderers.GetNumberOfItems()):
            renderer = renderers.GetNextItem()
            if renderer is not self.plotter.renderer and renderer is not self._xray.renderer:
                renderer.SetLayer(2)

    # ---- scene ---------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        """A short line in the lower-right corner (e.g. "Building the bone surface…")."""
        self.plotter.add_text(text, position="lower_right", font_size=9, color=STATUS_COLOR,
                              name="status", render=False)
        self._request_render()

    def show_surface(
        self,
        vertices_lps: NDArray[np.float32],
        faces: NDArray[np.int32],
        normals_lps: NDArray[np.float32] | None = None,
        *,
        reset_camera: bool = True,
    ) -> None:
        """Draw (or replace) the bone mesh; faces index ``vertices_lps``, all in LPS mm."""
        if self._closed:
            return
        if len(faces) == 0:
            self.clear_surface("No bone found above the threshold")
            return
        mesh = triangle_mesh(vertices_lps, faces, normals_lps)
        self.plotter.add_mesh(
            mesh, name="bone", color=BONE_COLOR, smooth_shading=normals_lps is None,
            specular=0.25, specular_power=20, ambient=0.12, diffuse=0.85,
            reset_camera=False, render=False,
        )
        if normals_lps is not None:
            self.plotter.actors["bone"].prop.interpolation = "gouraud"
        self._has_surface = True
        self.set_status(f"{len(faces):,} triangles · bone ≥ 200 HU")
        if reset_camera:
            self.reset_camera()
        self._announce_surface = True
        self._request_render()

    def clear_surface(self, message: str = "No surface") -> None:
        if self._closed:
            return
        self.plotter.remove_actor("bone", render=False)
        self._has_surface = False
        self.set_status(message)

    @property
    def has_surface(self) -> bool:
        return self._has_surface

    def show_canal(self, vertices_lps: NDArray[np.float32], faces: NDArray[np.int32],
                   normals_lps: NDArray[np.float32] | None = None) -> None:
        """Draw (or replace) the spinal canal, translucent, in the x-ray layer so it shows
        through the laminae; empty arrays clear it. LPS mm, faces wound outward."""
        self._show_xray_surface("canal", vertices_lps, faces, normals_lps)

    def show_highlight(self, vertices_lps: NDArray[np.float32], faces: NDArray[np.int32],
                       normals_lps: NDArray[np.float32] | None = None) -> None:
        """Tint the vertebra being edited (its surface, LPS mm); empty arrays clear it."""
        self._show_xray_surface("highlight", vertices_lps, faces, normals_lps)

    def show_cement(self, vertices_lps: NDArray[np.float32], faces: NDArray[np.int32],
                    normals_lps: NDArray[np.float32] | None = None) -> None:
        """The cement spread preview of the selected level (LPS mm); empty arrays clear it."""
        self._show_xray_surface("cement", vertices_lps, faces, normals_lps)

    def show_vessels(self, vertices_lps: NDArray[np.float32], faces: NDArray[np.int32],
                     normals_lps: NDArray[np.float32] | None = None) -> None:
        """The contrast-filled vessels near a needle (LPS mm); empty arrays clear them."""
        self._show_xray_surface("vessels", vertices_lps, faces, normals_lps)

    def _show_xray_surface(
        self, name: str, vertices_lps: NDArray[np.float32], faces: NDArray[np.int32],
        normals_lps: NDArray[np.float32] | None,
    ) -> None:
        """One of the `XRAY_SURFACES`, translucent in the x-ray layer (`XrayLayer`)."""
        if self._closed:
            return
        if len(faces) == 0:
            self._xray.remove(name)
            self._request_render()
            return
        mesh = triangle_mesh(vertices_lps, faces, normals_lps)
        if normals_lps is None:
            mesh = mesh.compute_normals(cell_normals=False, split_vertices=False)
        color, opacity = XRAY_SURFACES[name]
        self._xray.show_surface(name, mesh, vtk_rgb(color), opacity)
        self._request_render()

    def show_level_labels(self, labels: dict[str, NDArray[np.float64]]) -> None:
        """Level names ("L1") beside their vertebrae: ``labels`` maps a name to a point in
        the vertebra (LPS mm); the text sits 48 mm to the patient's right and 10 mm
        anterior of it, clear of the posterior entries where needles and handles are."""
        if self._closed:
            return
        for name in [n for n in self._level_anchors if n not in labels]:
            del self._level_anchors[name]
            self._xray.remove(f"level:{name}")
        for name, point_lps in labels.items():
            anchor = self._level_anchors.get(name)
            if anchor is None:
                text, anchor = world_label(int(15 * self._font_scale), LEVEL_LABEL_COLOR)
                text.SetInput(name)
                self._level_anchors[name] = anchor
                self._xray.add(f"level:{name}", text)
            anchor.SetValue(*(np.asarray(point_lps, dtype=np.float64)
                              + LEVEL_LABEL_OFFSET_LPS))
        self._request_render()

    def show_needles(self, needles: list[NeedleDisplay]) -> None:
        """Draw exactly these needles (LPS mm), replacing all others.

        Called on every mouse move of a drag in any view, so a needle already drawn keeps
        its VTK objects and only its points, radius and colour are updated.
        """
        if self._closed:
            return
        shown = {n.key: n for n in needles}
        for key in [k for k in self._needles if k not in shown]:
            self._remove_needle(key)
        added = False
        for key, needle in shown.items():
            props = self._needles.get(key)
            if props is None:
                props = NeedleActors(needle_name(*key), int(13 * self._font_scale))
                self._needles[key] = props
                self.plotter.add_actor(props.solid, name=props.name, reset_camera=False,
                                       pickable=False, render=False)
                for name, prop in props.overlay_props().items():
                    self._xray.add(name, prop)
                added = True
            props.update(needle, self._editable)
        self._shown = shown
        if added:
            # a ghost must be drawn before the canal and highlight for their depth test to
            # show which is in front (see `NeedleActors.overlay_props`)
            self._xray.move_to_end(("canal", "highlight"))
        self._request_render()

    def set_reference(self, needles: list[NeedleDisplay]) -> None:
        """Draw a reference plan's needles (training: the expert's, after Submit) as pink
        tubes beside the trainee's; an empty list removes them. Never picked or dragged."""
        if self._closed:
            return
        for name in self._reference_names:
            self.plotter.remove_actor(name, render=False)
        self._reference_names = []
        for n in needles:
            name = f"reference:{n.level}:{n.side.value}"
            tube = pv.Line(np.asarray(n.entry_lps, dtype=np.float64),
                           np.asarray(n.target_lps, dtype=np.float64)).tube(
                radius=float(n.radius_mm), n_sides=16, capping=True)
            self.plotter.add_mesh(tube, name=name, color=REFERENCE_COLOR, opacity=0.75,
                                  reset_camera=False, pickable=False, render=False)
            self._reference_names.append(name)
        self._request_render()

    def set_editable(self, editable: bool) -> None:
        """Show the entry and tip handles and let the user drag needles (default True);
        when False, needles can still be clicked (selected) but not moved."""
        self._editable = bool(editable)
        if not self._editable and self._grab is not None:
            self._end_grab()
        for key, props in self._needles.items():
            props.update(self._shown[key], self._editable)
        self._request_render()

    @property
    def editable(self) -> bool:
        return self._editable

    def prop(self, name: str) -> vtkProp | None:
        """The drawn prop called ``name`` in either layer ("bone", "needle:L1:left",
        "needle:L1:left:entry", "canal", "level:L1"…), or None; for tests and tools."""
        actor = self.plotter.actors.get(name)
        return actor if actor is not None else self._xray.get(name)

    def set_crosshair(self, point_lps: FloatArray) -> None:
        """Mark the linked crosshair point with a small sphere."""
        self._crosshair_lps = np.asarray(point_lps, dtype=np.float64).copy()
        if "crosshair" not in self.plotter.actors:
            sphere = pv.Sphere(radius=2.5, center=(0.0, 0.0, 0.0), theta_resolution=16,
                               phi_resolution=16)
            self.plotter.add_mesh(sphere, name="crosshair", color=CROSSHAIR_COLOR,
                                  reset_camera=False, pickable=False, lighting=False,
                                  render=False)
        self.plotter.actors["crosshair"].SetPosition(*self._crosshair_lps)
        self._request_render()

    @property
    def crosshair_lps(self) -> FloatArray | None:
        return None if self._crosshair_lps is None else self._crosshair_lps.copy()

    def reset_camera(self) -> None:
        """Look at the bone from posterior-left-oblique, head up, the whole surface in view."""
        actor = self.plotter.actors.get("bone")
        if actor is None:
            return
        bounds = np.asarray(actor.GetBounds(), dtype=np.float64)
        centre = (bounds[0::2] + bounds[1::2]) / 2.0
        direction = CAMERA_FROM_CENTRE / np.linalg.norm(CAMERA_FROM_CENTRE)
        # plain VTK calls: pyvista's camera helpers each trigger a render of their own
        renderer = self.plotter.renderer
        camera = renderer.GetActiveCamera()
        camera.SetFocalPoint(*centre)
        camera.SetPosition(*(centre + 1000.0 * direction))
        camera.SetViewUp(0.0, 0.0, 1.0)
        renderer.ResetCamera(*bounds)
        camera.Zoom(1.2)
        renderer.ResetCameraClippingRange()
        renderer.camera_set = True  # keep pyvista from resetting it again on first render
        self._request_render()

    # ---- needles ---------------------------------------------------------------------
    def _remove_needle(self, key: tuple[str, Side]) -> None:
        props = self._needles.pop(key)
        self.plotter.remove_actor(props.name, render=False)
        for name in props.overlay_props():
            self._xray.remove(name)

    # ---- picking and dragging ----------------------------------------------------------
    def _pick(self, x: float, y: float) -> tuple[tuple[str, Side], str, FloatArray] | None:
        """The needle part under display pixel (x, y) (`widgets.needle_picking`); handles
        only when editable (they are shown only then)."""
        handles = ({key: self._needles[key].handle_radius_mm for key in self._shown}
                   if self._editable else None)
        return pick_needle(self.plotter.renderer, self._shown, handles, x, y)

    def _abort(self, event: str) -> None:
        """Stop the interactor style from seeing this event (no camera motion)."""
        self.plotter.iren.interactor.GetCommand(self._observers[event]).SetAbortFlag(1)

    def _on_left_press(self, _caller: vtkObject, event: str) -> None:
        x, y = self.plotter.iren.interactor.GetEventPosition()
        hit = self._pick(x, y)
        if hit is None:
            self._camera_press = True
            return
        key, part, grabbed_lps = hit
        needle = self._shown[key]
        depth = float(world_to_display(self.plotter.renderer, grabbed_lps)[2])
        self._grab = Grab(
            key, part, np.asarray(needle.entry_lps, dtype=np.float64).copy(),
            np.asarray(needle.target_lps, dtype=np.float64).copy(), depth, (float(x), float(y)),
            owns_press=self._editable)
        if self._editable:
            self._abort(event)
            self.plotter.setCursor(Qt.CursorShape.ClosedHandCursor)
        else:
            self._camera_press = True

    def _on_mouse_move(self, _caller: vtkObject, event: str) -> None:
        x, y = self.plotter.iren.interactor.GetEventPosition()
        grab = self._grab
        if grab is None or not grab.owns_press:
            if not self._camera_press:
                self._update_hover_cursor(x, y)
            return
        self._abort(event)
        if not grab.dragging:
            if np.hypot(x - grab.press_xy[0], y - grab.press_xy[1]) < DRAG_START_PX:
                return
            grab.dragging = True
        renderer = self.plotter.renderer
        delta = (display_to_world(renderer, x, y, grab.depth)
                 - display_to_world(renderer, *grab.press_xy, grab.depth))
        entry, target = grab.entry_lps.copy(), grab.target_lps.copy()
        if grab.part in ("entry", "needle"):
            entry += delta
        if grab.part in ("target", "needle"):
            target += delta
        props = self._needles.get(grab.key)
        if props is not None:  # feedback now; the next show_needles draws the plan's truth
            props.set_path(entry, target)
            self._request_render()
        point = target if grab.part == "target" else entry
        self.needle_dragged.emit(grab.key[0], grab.key[1], grab.part, point)

    def _on_left_release(self, _caller: vtkObject, event: str) -> None:
        """The end of a press this view took (a drag or a click on a needle)."""
        grab = self._grab
        if grab is None or not grab.owns_press:
            return
        self._abort(event)
        x, y = self.plotter.iren.interactor.GetEventPosition()
        self._finish_press(grab, x, y)

    def _on_camera_release(self, _caller: vtkObject, _event: str) -> None:
        """The end of a press the camera took; a click on a needle that cannot be dragged
        (not editable) still selects it. Passive: it sees the event, never stops it."""
        self._camera_press = False
        grab = self._grab
        if grab is not None and not grab.owns_press:
            x, y = self.plotter.iren.interactor.GetEventPosition()
            self._finish_press(grab, x, y)

    def _finish_press(self, grab: Grab, x: float, y: float) -> None:
        moved = np.hypot(x - grab.press_xy[0], y - grab.press_xy[1]) >= DRAG_START_PX
        self._end_grab()
        if not grab.dragging and not moved:
            self.needle_picked.emit(grab.key[0], grab.key[1])
        self._update_hover_cursor(x, y)

    def _end_grab(self) -> None:
        """Forget the grab; redraw its needle as last shown (the plan's state, which a
        controller has updated during the drag) and announce the end of a drag."""
        grab, self._grab = self._grab, None
        if grab is None:
            return
        shown = self._shown.get(grab.key)
        if shown is not None:
            self._needles[grab.key].set_path(shown.entry_lps, shown.target_lps)
            self._request_render()
        if grab.dragging:
            self.needle_drag_finished.emit()

    def _update_hover_cursor(self, x: float, y: float) -> None:
        """An open hand over a handle, a move cursor over a shaft, a pointing hand over a
        needle that can only be selected: the user sees what a press would do."""
        hit = self._pick(x, y) if self._shown else None
        if hit is None:
            self.plotter.unsetCursor()
        elif not self._editable:
            self.plotter.setCursor(Qt.CursorShape.PointingHandCursor)
        elif hit[1] == "needle":
            self.plotter.setCursor(Qt.CursorShape.SizeAllCursor)
        else:
            self.plotter.setCursor(Qt.CursorShape.OpenHandCursor)

    # ---- rendering -----------------------------------------------------------------
    def _request_render(self) -> None:
        if not self._render_timer.isActive():
            self._render_timer.start()

    def _on_render_start(self, _obj: object, _event: str) -> None:
        self._render_started = time.perf_counter()

    def _on_render_end(self, _obj: object, _event: str) -> None:
        self.last_render_s = time.perf_counter() - self._render_started

    def _render_now(self) -> None:
        # a repaint of the GL widget renders once; plotter.render() would render here and
        # again in the repaint that the finished frame triggers
        self.plotter.update()
        if self._announce_surface:
            self._announce_surface = False
            self.surface_shown.emit()

    def close_view(self) -> None:
        """Release the VTK render window (call before the widget is destroyed)."""
        self._closed = True  # results of background work may still arrive: ignore them
        self._render_timer.stop()
        iren = self.plotter.iren.interactor if self.plotter.iren is not None else None
        if iren is not None:
            for tag in (*self._observers.values(), self._passive_release):
                iren.RemoveObserver(tag)
        self._observers.clear()
        self.plotter.renderer.RemoveObserver(self._camera_observer)
        if self.plotter.ren_win is not None:
            self._xray.close(self.plotter.ren_win)
        self.plotter.close()
