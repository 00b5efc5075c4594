"""3-D view of the bone surface (pyvistaqt), in patient LPS millimetres.

VTK world coordinates are LPS mm, so the orientation marker's axes are labelled L, P, S
(+x, +y, +z). Actors are added by name, so showing a new surface replaces the old one.
Every change only marks the scene dirty; one render per event-loop pass follows, because a
render costs tens of milliseconds without a GPU and a drag or a load changes the scene many
times in a row.
"""

from __future__ import annotations

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget
from pyvistaqt import QtInteractor

from planning.volume import FloatArray

BONE_COLOR = (0.91, 0.87, 0.78)
CROSSHAIR_COLOR = (1.0, 0.85, 0.25)
BACKGROUND_TOP, BACKGROUND_BOTTOM = "#3a4150", "#0e1014"
TITLE_COLOR, STATUS_COLOR = "#7fb2ee", "#c8ced6"
# seen from behind the patient, a little from the left and from above: the spinous
# processes, laminae and pedicle entry points, which the needle passes, face the viewer
CAMERA_FROM_CENTRE = np.array([0.45, 1.0, 0.25])
TITLE = "3D bone surface"


class View3D(QWidget):
    """Bone surface, crosshair marker and orientation axes; rotate with the left mouse."""

    surface_shown = Signal()
    """Emitted once a new surface has been rendered (used for timing and tests)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("view3d")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.plotter = QtInteractor(self, auto_update=False, multi_samples=4)
        layout.addWidget(self.plotter)
        # VTK and pyvista bind single keys to actions that make no sense here ("q" closes the
        # render window, "w" wireframe, "3" stereo, "e" exit); keys belong to the application
        self.plotter.iren.clear_key_event_callbacks()
        self.plotter.iren.interactor.RemoveObservers("CharEvent")
        self.plotter.set_background(BACKGROUND_BOTTOM, top=BACKGROUND_TOP)
        self.plotter.add_axes(
            xlabel="L", ylabel="P", zlabel="S", line_width=3, color="white",
            viewport=(0.0, 0.0, 0.22, 0.22),
        )
        self.plotter.add_text(TITLE, position="upper_left", font_size=10, color=TITLE_COLOR,
                              name="title", render=False)
        self._crosshair_lps: FloatArray | None = None
        self._has_surface = False
        self._announce_surface = False
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(0)
        self._render_timer.timeout.connect(self._render_now)
        self.set_status("No surface")

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
        if len(faces) == 0:
            self.clear_surface("No bone found above the threshold")
            return
        cells = np.empty((len(faces), 4), dtype=np.int64)
        cells[:, 0] = 3
        cells[:, 1:] = faces
        mesh = pv.PolyData(np.asarray(vertices_lps, dtype=np.float32), cells.ravel())
        if normals_lps is not None:
            mesh.point_data["Normals"] = np.asarray(normals_lps, dtype=np.float32)
            mesh.point_data.active_normals_name = "Normals"
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
        self.plotter.remove_actor("bone", render=False)
        self._has_surface = False
        self.set_status(message)

    @property
    def has_surface(self) -> bool:
        return self._has_surface

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

    # ---- rendering -----------------------------------------------------------------
    def _request_render(self) -> None:
        if not self._render_timer.isActive():
            self._render_timer.start()

    def _render_now(self) -> None:
        self.plotter.render()
        if self._announce_surface:
            self._announce_surface = False
            self.surface_shown.emit()

    def close_view(self) -> None:
        """Release the VTK render window (call before the widget is destroyed)."""
        self._render_timer.stop()
        self.plotter.close()
