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
from dataclasses import dataclass

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QColor, Qt
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor
from vtkmodules.vtkCommonCore import vtkObject
from vtkmodules.vtkFiltersCore import vtkTubeFilter
from vtkmodules.vtkFiltersSources import vtkLineSource, vtkSphereSource
from vtkmodules.vtkRenderingAnnotation import vtkAnnotatedCubeActor, vtkAxesActor
from vtkmodules.vtkRenderingCore import (
    vtkActor,
    vtkCoordinate,
    vtkPolyDataMapper,
    vtkProp,
    vtkPropAssembly,
    vtkRenderer,
    vtkTextActor,
)

from planning.plan import Side
from planning.vocabulary import (
    CANAL_COLOR,
    CEMENT_COLOR,
    HIGHLIGHT_COLOR,
    REFERENCE_COLOR,
    VESSEL_COLOR,
)
from planning.volume import FloatArray
from widgets.painting import triangle_mesh
from widgets.plan_display import NeedleDisplay

BONE_COLOR = (0.91, 0.87, 0.78)
CROSSHAIR_COLOR = (1.0, 0.85, 0.25)
BACKGROUND_TOP, BACKGROUND_BOTTOM = "#3a4150", "#0e1014"
TITLE_COLOR, STATUS_COLOR = "#7fb2ee", "#c8ced6"
# seen from behind the patient, a little from the left and from above: the spinous
# processes, laminae and pedicle entry points, which the needle passes, face the viewer
CAMERA_FROM_CENTRE = np.array([0.45, 1.0, 0.25])
TITLE = "3D bone surface"

NEEDLE_SIDES = 20  # facets of a needle tube: round at any zoom, 80 triangles a needle
GHOST_OPACITY = 0.6  # the part of a needle hidden by bone, seen through it
NEEDLE_AMBIENT = 0.4  # a thin tube is mostly lit at grazing angles: keep its colour true
CANAL_OPACITY = 0.35
HIGHLIGHT_OPACITY = 0.30
CEMENT_OPACITY = 0.65
VESSEL_OPACITY = 0.45
HALO_OPACITY = 0.35
HALO_EXTRA_MM = 1.4  # the selected needle's halo is this much wider than the needle
HANDLE_SCALE, HANDLE_MIN_EXTRA_MM = 1.7, 0.9  # handle radius: ≥ 1.7 × and ≥ +0.9 mm
HANDLE_ENTRY_COLOR = (0.97, 0.97, 0.97)
LABEL_GAP_PX = 6.0  # a needle's label sits on its axis' screen extension, this far past the handle
# level labels: beside the vertebra on the patient's right (−x) and a little anterior (−y),
# away from the posterior pedicle entries where the needles and their handles are
LEVEL_LABEL_OFFSET_LPS = np.array([-48.0, -10.0, 0.0])
LEVEL_LABEL_COLOR = (0.86, 0.89, 0.93)
PICK_TOLERANCE_PX = 5.0  # a press this close to a handle or a needle grabs it
DRAG_START_PX = 3.0  # a press that moves less than this before release is a click
EVENT_PRIORITY = 10.0  # above the interactor style's 0.0: we see mouse events first
# orientation marker: the patient direction each cube face and axis faces (LPS: +x L, +y P,
# +z S), with the axis colours
CUBE_FACES = {"x": ("L", "R", (0.95, 0.36, 0.36)), "y": ("P", "A", (0.40, 0.85, 0.45)),
              "z": ("S", "I", (0.45, 0.62, 1.0))}


def needle_name(level: str, side: Side) -> str:
    """The actor name of one needle ("needle:L1:left"); its parts add ":entry" etc."""
    return f"needle:{level}:{Side(side).value}"


def _rgb(color: QColor | str) -> tuple[float, float, float]:
    c = QColor(color)
    return (c.redF(), c.greenF(), c.blueF())


_polydata = triangle_mesh  # (widgets.painting)


def _text(font_px: int, color: tuple[float, float, float]) -> vtkTextActor:
    """A bold 2-D label on a dark backing, readable over bone, canal and background. 2-D
    text is drawn after all 3-D geometry, so bone never hides it."""
    text = vtkTextActor()
    prop = text.GetTextProperty()
    prop.SetFontSize(font_px)
    prop.SetColor(*color)
    prop.SetBold(True)
    prop.SetShadow(True)
    prop.SetBackgroundColor(0.05, 0.06, 0.08)
    prop.SetBackgroundOpacity(0.55)
    prop.SetVerticalJustificationToCentered()
    return text


def _world_text(font_px: int, color: tuple[float, float, float]) -> tuple[vtkTextActor,
                                                                          vtkCoordinate]:
    """A label centred on a world point, which is set on the returned coordinate."""
    anchor = vtkCoordinate()
    anchor.SetCoordinateSystemToWorld()
    text = _text(font_px, color)
    text.GetTextProperty().SetJustificationToCentered()
    position = text.GetPositionCoordinate()
    position.SetCoordinateSystemToDisplay()
    position.SetReferenceCoordinate(anchor)
    position.SetValue(0.0, 0.0, 0.0)
    return text, anchor


class _NeedleProps:
    """The VTK objects of one drawn needle, updated in place on every redraw.

    One line source feeds the tube and its halo; the solid tube (layer 0) and its ghost
    (x-ray layer) share one mapper. A redraw during a drag only moves two points and two
    handles, so it costs microseconds instead of rebuilding a pipeline.
    """

    def __init__(self, name: str, font_px: int) -> None:
        self.name = name
        self.line = vtkLineSource()
        self.tube = vtkTubeFilter()
        self.tube.SetInputConnection(self.line.GetOutputPort())
        self.tube.SetNumberOfSides(NEEDLE_SIDES)
        self.tube.CappingOn()
        mapper = vtkPolyDataMapper()
        mapper.SetInputConnection(self.tube.GetOutputPort())
        self.solid = vtkActor()
        self.solid.SetMapper(mapper)
        self.ghost = vtkActor()
        self.ghost.SetMapper(mapper)
        self.ghost.GetProperty().SetOpacity(GHOST_OPACITY)
        self.ghost.GetProperty().BackfaceCullingOn()
        for actor in (self.solid, self.ghost):  # colour reads as the status at any angle
            actor.GetProperty().SetAmbient(NEEDLE_AMBIENT)
            actor.GetProperty().SetDiffuse(1.0 - NEEDLE_AMBIENT)
            actor.GetProperty().SetSpecular(0.3)
            actor.GetProperty().SetSpecularPower(30.0)
        self.halo_tube = vtkTubeFilter()
        self.halo_tube.SetInputConnection(self.line.GetOutputPort())
        self.halo_tube.SetNumberOfSides(NEEDLE_SIDES)
        self.halo_tube.CappingOn()
        halo_mapper = vtkPolyDataMapper()
        halo_mapper.SetInputConnection(self.halo_tube.GetOutputPort())
        self.halo = vtkActor()
        self.halo.SetMapper(halo_mapper)
        self.halo.GetProperty().SetColor(1.0, 1.0, 1.0)
        self.halo.GetProperty().SetOpacity(HALO_OPACITY)
        self.halo.GetProperty().BackfaceCullingOn()
        self.spheres: dict[str, vtkSphereSource] = {}
        self.handles: dict[str, vtkActor] = {}
        for part in ("entry", "target"):
            sphere = vtkSphereSource()
            sphere.SetThetaResolution(20)
            sphere.SetPhiResolution(14)
            handle_mapper = vtkPolyDataMapper()
            handle_mapper.SetInputConnection(sphere.GetOutputPort())
            handle = vtkActor()
            handle.SetMapper(handle_mapper)
            handle.GetProperty().SetSpecular(0.3)
            self.spheres[part], self.handles[part] = sphere, handle
        self.handles["entry"].GetProperty().SetColor(*HANDLE_ENTRY_COLOR)
        self.label = _text(font_px, (1.0, 1.0, 1.0))
        self.label.GetPositionCoordinate().SetCoordinateSystemToDisplay()
        self._state: tuple[object, ...] | None = None
        self.handle_radius_mm = 0.0

    def overlay_props(self) -> dict[str, vtkProp]:
        """The x-ray layer's props by name, ghost first: translucent props are drawn in
        the order they were added, and a ghost must be drawn before the canal for the
        canal's depth test to show which is in front."""
        return {f"{self.name}:ghost": self.ghost, f"{self.name}:halo": self.halo,
                f"{self.name}:entry": self.handles["entry"],
                f"{self.name}:target": self.handles["target"],
                f"{self.name}:label": self.label}

    def set_path(self, entry_lps: FloatArray, target_lps: FloatArray) -> None:
        """Move the needle (tube, halo, handles, label) to a new entry and target, LPS mm."""
        entry = np.asarray(entry_lps, dtype=np.float64)
        target = np.asarray(target_lps, dtype=np.float64)
        self.line.SetPoint1(*entry)
        self.line.SetPoint2(*target)
        self.handles["entry"].SetPosition(*entry)
        self.handles["target"].SetPosition(*target)

    def place_label(self, entry_px: NDArray[np.float64], target_px: NDArray[np.float64],
                    handle_px: float) -> None:
        """Put the label past the entry handle on the screen line target → entry, VTK
        display pixels: outside the body, off the needle and its handle from any angle."""
        outward = entry_px[:2] - target_px[:2]
        length = float(np.hypot(*outward))
        outward = outward / length if length > 1.0 else np.array([1.0, 0.0])
        x, y = entry_px[:2] + outward * (handle_px + LABEL_GAP_PX)
        text = self.label.GetTextProperty()
        if abs(outward[0]) >= 0.5:  # mostly sideways: the text extends away from the needle
            text.SetJustification(0 if outward[0] > 0 else 2)  # left / right
            text.SetVerticalJustificationToCentered()
        else:  # mostly up or down: centred above or below the handle
            text.SetJustificationToCentered()
            text.SetVerticalJustification(0 if outward[1] > 0 else 2)  # bottom / top
        self.label.SetPosition(float(x), float(y))

    def update(self, needle: NeedleDisplay, editable: bool) -> None:
        """Draw ``needle``: path, radius, colour, selection, label; skip what is unchanged."""
        radius = float(needle.radius_mm)
        self.handle_radius_mm = max(radius * HANDLE_SCALE, radius + HANDLE_MIN_EXTRA_MM)
        self.set_path(needle.entry_lps, needle.target_lps)
        state = (radius, needle.color.name(), needle.selected, needle.label, editable)
        if state == self._state:
            return
        self._state = state
        self.tube.SetRadius(radius)
        self.halo_tube.SetRadius(radius + HALO_EXTRA_MM)
        for sphere in self.spheres.values():
            sphere.SetRadius(self.handle_radius_mm)
        color = QColor(needle.color)
        if needle.selected:
            color = color.lighter(135)
        rgb = _rgb(color)
        self.solid.GetProperty().SetColor(*rgb)
        self.ghost.GetProperty().SetColor(*rgb)
        self.halo.SetVisibility(needle.selected)
        tip = 0.55 * np.array(rgb) + 0.45
        self.handles["target"].GetProperty().SetColor(*tip)
        for handle in self.handles.values():
            handle.SetVisibility(editable)
        self.label.SetInput(needle.label)
        text = self.label.GetTextProperty()
        text.SetColor(*_rgb(QColor(needle.color).lighter(140)))


@dataclass
class _Grab:
    """A left press on a needle, until release. Points in LPS mm, positions in VTK display
    pixels (origin bottom-left, physical pixels)."""

    key: tuple[str, Side]
    part: str  # "entry" | "target" | "needle"
    entry_lps: FloatArray  # the needle as shown at the press: moves are relative to it
    target_lps: FloatArray
    depth: float  # display depth of the grabbed point: the drag plane, parallel to screen
    press_xy: tuple[float, float]
    owns_press: bool  # False: not editable, the camera got the press; only a click counts
    dragging: bool = False


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
        self._overlay = self._add_xray_layer()
        self._add_orientation_cube()
        self.plotter.add_text(TITLE, position="upper_left", font_size=10, color=TITLE_COLOR,
                              name="title", render=False)
        self._crosshair_lps: FloatArray | None = None
        self._has_surface = False
        self._announce_surface = False
        self._needles: dict[tuple[str, Side], _NeedleProps] = {}
        self._reference_names: list[str] = []
        self._shown: dict[tuple[str, Side], NeedleDisplay] = {}
        self._overlay_props: dict[str, vtkProp] = {}
        self._level_anchors: dict[str, vtkCoordinate] = {}
        self._editable = True
        self._closed = False
        self._grab: _Grab | None = None
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

    def _add_xray_layer(self) -> vtkRenderer:
        """Layer 1: drawn after the bone with a cleared depth buffer, same camera."""
        ren_win = self.plotter.ren_win
        assert ren_win is not None  # the plotter was just made
        ren_win.SetNumberOfLayers(max(3, ren_win.GetNumberOfLayers()))
        overlay = vtkRenderer()
        overlay.SetLayer(1)
        overlay.SetInteractive(False)  # the camera style works on the main renderer only
        overlay.SetActiveCamera(self.plotter.renderer.GetActiveCamera())
        ren_win.AddRenderer(overlay)
        # pyvista may give the main renderer a new camera object; follow it before each frame
        self._camera_observer = self.plotter.renderer.AddObserver(
            "StartEvent", self._before_frame)
        return overlay

    def _before_frame(self, _caller: vtkObject, _event: str) -> None:
        """Each frame, before anything is drawn: share the camera, place needle labels
        (their place on screen depends on the camera, which the user turns at will)."""
        camera = self.plotter.renderer.GetActiveCamera()
        if self._overlay.GetActiveCamera() is not camera:
            self._overlay.SetActiveCamera(camera)
        for props in self._needles.values():
            entry = np.array(props.handles["entry"].GetPosition())
            target = np.array(props.handles["target"].GetPosition())
            props.place_label(self._world_to_display(entry), self._world_to_display(target),
                              props.handle_radius_mm * self._px_per_mm(entry))

    def _add_orientation_cube(self) -> None:
        """Axes labelled L, P, S around a cube lettered with all six patient directions,
        as radiology viewers use: from any side the letters say which is the patient's
        left, which a bare axis tripod leaves to be worked out."""
        cube = vtkAnnotatedCubeActor()
        for axis, (plus, minus, _color) in CUBE_FACES.items():
            getattr(cube, f"Set{axis.upper()}PlusFaceText")(plus)
            getattr(cube, f"Set{axis.upper()}MinusFaceText")(minus)
            for sign in ("Plus", "Minus"):
                text = getattr(cube, f"Get{axis.upper()}{sign}FaceProperty")()
                text.SetColor(1.0, 1.0, 1.0)
                text.SetInterpolationToFlat()
        cube.SetFaceTextScale(0.7)
        cube.GetCubeProperty().SetColor(0.30, 0.34, 0.40)
        cube.GetTextEdgesProperty().SetColor(1.0, 1.0, 1.0)
        cube.GetTextEdgesProperty().SetLineWidth(1.0)
        axes = vtkAxesActor()
        axes.SetTotalLength(1.25, 1.25, 1.25)
        axes.SetShaftTypeToCylinder()
        axes.SetCylinderRadius(0.03)
        axes.SetConeRadius(0.45)
        for axis, caption in zip("XYZ", (axes.GetXAxisCaptionActor2D(),
                                        axes.GetYAxisCaptionActor2D(),
                                        axes.GetZAxisCaptionActor2D()), strict=True):
            axes_key = axis.lower()
            getattr(axes, f"Set{axis}AxisLabelText")(CUBE_FACES[axes_key][0])
            getattr(axes, f"Get{axis}AxisShaftProperty")().SetColor(*CUBE_FACES[axes_key][2])
            getattr(axes, f"Get{axis}AxisTipProperty")().SetColor(*CUBE_FACES[axes_key][2])
            text = caption.GetCaptionTextProperty()
            text.SetColor(*CUBE_FACES[axes_key][2])
            text.SetFontSize(int(15 * self._font_scale))
            text.SetBold(True)
            text.SetItalic(False)
            text.SetShadow(True)
            caption.GetTextActor().SetTextScaleModeToNone()
        marker = vtkPropAssembly()
        marker.AddPart(cube)
        marker.AddPart(axes)
        self._orientation_widget = self.plotter.add_orientation_widget(
            marker, interactive=False, viewport=(0.0, 0.0, 0.2, 0.2))
        # the axes' bounds are symmetric though its arrows point one way: zoom onto them
        self._orientation_widget.SetZoom(1.45)
        # the marker goes above the x-ray layer, so labels never cover it
        renderers = self._overlay.GetRenderWindow().GetRenderers()
        renderers.InitTraversal()
        for _ in range(renderers.GetNumberOfItems()):
            renderer = renderers.GetNextItem()
            if renderer is not self.plotter.renderer and renderer is not self._overlay:
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
        mesh = _polydata(vertices_lps, faces, normals_lps)
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

    def show_canal(
        self,
        vertices_lps: NDArray[np.float32],
        faces: NDArray[np.int32],
        normals_lps: NDArray[np.float32] | None = None,
    ) -> None:
        """Draw (or replace) the spinal canal, translucent, in the x-ray layer so it shows
        through the laminae; empty arrays clear it. LPS mm, faces wound outward."""
        if self._closed:
            return
        self._show_xray_surface("canal", vertices_lps, faces, normals_lps,
                                _rgb(CANAL_COLOR), CANAL_OPACITY)

    def show_highlight(
        self,
        vertices_lps: NDArray[np.float32],
        faces: NDArray[np.int32],
        normals_lps: NDArray[np.float32] | None = None,
    ) -> None:
        """Tint the vertebra being edited (its surface, LPS mm); empty arrays clear it."""
        if self._closed:
            return
        self._show_xray_surface("highlight", vertices_lps, faces, normals_lps,
                                _rgb(HIGHLIGHT_COLOR), HIGHLIGHT_OPACITY)

    def show_cement(
        self,
        vertices_lps: NDArray[np.float32],
        faces: NDArray[np.int32],
        normals_lps: NDArray[np.float32] | None = None,
    ) -> None:
        """The cement spread preview of the selected level (LPS mm); empty arrays clear it."""
        if self._closed:
            return
        self._show_xray_surface("cement", vertices_lps, faces, normals_lps,
                                _rgb(CEMENT_COLOR), CEMENT_OPACITY)

    def show_vessels(
        self,
        vertices_lps: NDArray[np.float32],
        faces: NDArray[np.int32],
        normals_lps: NDArray[np.float32] | None = None,
    ) -> None:
        """The contrast-filled vessels near a needle (LPS mm); empty arrays clear them."""
        if self._closed:
            return
        self._show_xray_surface("vessels", vertices_lps, faces, normals_lps,
                                _rgb(VESSEL_COLOR), VESSEL_OPACITY)

    def _show_xray_surface(
        self, name: str, vertices_lps: NDArray[np.float32], faces: NDArray[np.int32],
        normals_lps: NDArray[np.float32] | None, color: tuple[float, float, float],
        opacity: float,
    ) -> None:
        """A translucent surface in the x-ray layer. Back faces are culled: a translucent
        closed surface drawn without sorting would otherwise show its far wall through the
        near one in triangle order, a speckle that changes as the camera turns."""
        if len(faces) == 0:
            self._remove_overlay_prop(name)
            self._request_render()
            return
        mesh = _polydata(vertices_lps, faces, normals_lps)
        if normals_lps is None:
            mesh = mesh.compute_normals(cell_normals=False, split_vertices=False)
        actor = self._overlay_props.get(name)
        mapper = actor.GetMapper() if isinstance(actor, vtkActor) else None
        if not isinstance(actor, vtkActor) or not isinstance(mapper, vtkPolyDataMapper):
            mapper = vtkPolyDataMapper()
            mapper.ScalarVisibilityOff()
            actor = vtkActor()
            actor.SetMapper(mapper)
            prop = actor.GetProperty()
            prop.SetColor(*color)
            prop.SetOpacity(opacity)
            prop.BackfaceCullingOn()
            prop.SetInterpolationToGouraud()
            prop.SetSpecular(0.2)
            self._add_overlay_prop(name, actor)
        mapper.SetInputData(mesh)
        self._request_render()

    def show_level_labels(self, labels: dict[str, NDArray[np.float64]]) -> None:
        """Level names ("L1") beside their vertebrae: ``labels`` maps a name to a point in
        the vertebra (LPS mm); the text sits 48 mm to the patient's right and 10 mm
        anterior of it, clear of the posterior entries where needles and handles are."""
        if self._closed:
            return
        for name in [n for n in self._level_anchors if n not in labels]:
            del self._level_anchors[name]
            self._remove_overlay_prop(f"level:{name}")
        for name, point_lps in labels.items():
            anchor = self._level_anchors.get(name)
            if anchor is None:
                text, anchor = _world_text(int(15 * self._font_scale), LEVEL_LABEL_COLOR)
                text.SetInput(name)
                self._level_anchors[name] = anchor
                self._add_overlay_prop(f"level:{name}", text)
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
                props = _NeedleProps(needle_name(*key), int(13 * self._font_scale))
                self._needles[key] = props
                self.plotter.add_actor(props.solid, name=props.name, reset_camera=False,
                                       pickable=False, render=False)
                for name, prop in props.overlay_props().items():
                    self._add_overlay_prop(name, prop)
                added = True
            props.update(needle, self._editable)
        self._shown = shown
        if added:
            self._raise_xray_surfaces()
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
        return actor if actor is not None else self._overlay_props.get(name)

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

    # ---- layer bookkeeping -----------------------------------------------------------
    def _add_overlay_prop(self, name: str, prop: vtkProp) -> None:
        self._remove_overlay_prop(name)
        self._overlay.AddViewProp(prop)
        self._overlay_props[name] = prop

    def _remove_overlay_prop(self, name: str) -> None:
        prop = self._overlay_props.pop(name, None)
        if prop is not None:
            self._overlay.RemoveViewProp(prop)

    def _raise_xray_surfaces(self) -> None:
        """Re-add the canal and highlight after newly added needle ghosts (see
        `_NeedleProps.overlay_props`)."""
        for name in ("canal", "highlight"):
            prop = self._overlay_props.get(name)
            if prop is not None:
                self._overlay.RemoveViewProp(prop)
                self._overlay.AddViewProp(prop)

    def _remove_needle(self, key: tuple[str, Side]) -> None:
        props = self._needles.pop(key)
        self.plotter.remove_actor(props.name, render=False)
        for name in props.overlay_props():
            self._remove_overlay_prop(name)

    # ---- picking and dragging ----------------------------------------------------------
    def _world_to_display(self, point_lps: FloatArray) -> NDArray[np.float64]:
        """(x, y, depth) in VTK display pixels (origin bottom-left) of a point, LPS mm."""
        renderer = self.plotter.renderer
        renderer.SetWorldPoint(*np.asarray(point_lps, dtype=np.float64), 1.0)
        renderer.WorldToDisplay()
        return np.array(renderer.GetDisplayPoint(), dtype=np.float64)

    def _display_to_world(self, x: float, y: float, depth: float) -> NDArray[np.float64]:
        renderer = self.plotter.renderer
        renderer.SetDisplayPoint(float(x), float(y), float(depth))
        renderer.DisplayToWorld()
        w = np.array(renderer.GetWorldPoint(), dtype=np.float64)
        return w[:3] / w[3]

    def _px_per_mm(self, point_lps: FloatArray) -> float:
        """Screen pixels per mm at a point's depth (perspective: nearer is larger)."""
        m = self.plotter.renderer.GetActiveCamera().GetViewTransformMatrix()
        right = np.array([m.GetElement(0, i) for i in range(3)])
        a = self._world_to_display(point_lps)
        b = self._world_to_display(np.asarray(point_lps, dtype=np.float64) + right)
        return float(np.hypot(*(b[:2] - a[:2])))

    def _pick(self, x: float, y: float) -> tuple[tuple[str, Side], str, FloatArray] | None:
        """The needle part under display pixel (x, y): (key, part, grabbed point LPS).

        Picking is done on screen against the needles' known geometry rather than with a
        ray picker: the handles are drawn on top of the bone, so what must be grabbed is
        what is seen, and a tolerance in pixels is exact at any zoom. Handles (shown only
        when editable) win over shafts; among equals the nearest on screen wins.
        """
        click = np.array([x, y], dtype=np.float64)
        best: tuple[int, float, tuple[str, Side], str, FloatArray] | None = None
        for key, needle in self._shown.items():
            entry = np.asarray(needle.entry_lps, dtype=np.float64)
            target = np.asarray(needle.target_lps, dtype=np.float64)
            a, b = self._world_to_display(entry), self._world_to_display(target)
            if self._editable:
                handle_mm = self._needles[key].handle_radius_mm
                for part, point, screen in (("entry", entry, a), ("target", target, b)):
                    dist = float(np.linalg.norm(screen[:2] - click))
                    if dist <= handle_mm * self._px_per_mm(point) + PICK_TOLERANCE_PX:
                        cand = (0, dist, key, part, point)
                        best = cand if best is None or cand[:2] < best[:2] else best
            ab = b[:2] - a[:2]
            t = float(np.clip(np.dot(click - a[:2], ab) / max(np.dot(ab, ab), 1e-12), 0, 1))
            dist = float(np.linalg.norm(a[:2] + t * ab - click))
            near = entry + t * (target - entry)
            if dist <= needle.radius_mm * self._px_per_mm(near) + PICK_TOLERANCE_PX:
                cand = (1, dist, key, "needle", self._point_on_axis(x, y, entry, target))
                best = cand if best is None or cand[:2] < best[:2] else best
        return None if best is None else (best[2], best[3], best[4])

    def _point_on_axis(self, x: float, y: float, entry: FloatArray,
                       target: FloatArray) -> NDArray[np.float64]:
        """The point of the segment entry–target nearest to the ray under pixel (x, y)."""
        origin = self._display_to_world(x, y, 0.0)
        ray = self._display_to_world(x, y, 1.0) - origin
        axis = target - entry
        w = entry - origin
        aa, bb, cc = float(ray @ ray), float(ray @ axis), float(axis @ axis)
        dd, ee = float(ray @ w), float(axis @ w)
        denom = aa * cc - bb * bb
        s = 0.0 if denom < 1e-12 else (bb * dd - aa * ee) / denom
        return entry + float(np.clip(s, 0.0, 1.0)) * axis

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
        self._grab = _Grab(
            key, part, np.asarray(needle.entry_lps, dtype=np.float64).copy(),
            np.asarray(needle.target_lps, dtype=np.float64).copy(),
            float(self._world_to_display(grabbed_lps)[2]), (float(x), float(y)),
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
        delta = (self._display_to_world(x, y, grab.depth)
                 - self._display_to_world(*grab.press_xy, grab.depth))
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

    def _finish_press(self, grab: _Grab, x: float, y: float) -> None:
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
            self._overlay.RemoveAllViewProps()
            self.plotter.ren_win.RemoveRenderer(self._overlay)
        self.plotter.close()
