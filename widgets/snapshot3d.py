"""An off-screen 3-D picture of one level for the PDF report: bone, canal and needles.

The scene is drawn the way the workstation's 3-D view draws it (`widgets.view3d`): opaque
bone in layer 0, and an "x-ray" layer over it with its own depth buffer holding what must
be seen *through* the bone: the translucent canal and faint ghosts of the needles (a
needle inside its pedicle would otherwise be hidden by the bone around it). The solid part
of a needle that lies outside the bone is drawn in layer 0, in its status colour.

Off-screen rendering needs no display: VTK's Linux wheels (≥ 9.4) try X first and, when
there is no X server, fall back to EGL (Mesa's software llvmpipe on a machine without a
GPU). The fallback prints one "bad X server connection" warning; setting
``VTK_DEFAULT_OPENGL_WINDOW=vtkEGLRenderWindow`` (or ``vtkOSOpenGLRenderWindow`` for
OSMesa) in the environment before VTK is imported skips the X attempt. All three were
checked to give the same picture on the development machine (Mesa llvmpipe). Call it from
the GUI thread when a Qt VTK view is open: OpenGL contexts are per thread.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pyvista as pv
from numpy.typing import NDArray
from PIL import Image
from vtkmodules.vtkRenderingCore import vtkRenderer

from planning.plan import Side
from planning.vocabulary import CANAL_COLOR, STATUS_COLORS
from planning.volume import FloatArray
from widgets.painting import triangle_mesh
from widgets.plan_display import NeedleDisplay

BONE_COLOR = (0.91, 0.87, 0.78)
BACKGROUND_TOP, BACKGROUND_BOTTOM = "#3a4150", "#0e1014"
# from behind the patient, a little from the left and from above: the laminae and pedicle
# entries face the viewer and a convergent pair reads as a "V". Not View3D's
# (0.45, 1, 0.25): a left needle of a typical pair (medial 20°, a little caudal) runs
# almost along that line and is seen end-on, as a dot.
CAMERA_FROM_FOCUS = np.array([0.2, 1.0, 0.5])
CAMERA_DISTANCE_MM = 120.0
VIEW_ANGLE_DEG = 38.0  # at 120 mm: a field ~80 mm high, one level and half its neighbours
NEEDLE_SIDES = 24
NEEDLE_AMBIENT = 0.4  # a thin tube is mostly lit at grazing angles: keep its colour true
GHOST_OPACITY = 0.6
CANAL_OPACITY = 0.25  # lighter than View3D's 0.35: a still must show the laminae too
SUPERSAMPLE = 2  # rendered at this multiple of the size, then reduced: smooth edges
LETTER_COLOR = (1.0, 1.0, 1.0)


MeshArrays = tuple[NDArray[np.float32], NDArray[np.int32], NDArray[np.float32] | None]


_polydata = triangle_mesh  # (widgets.painting)


def _hex_rgb(color: str) -> tuple[float, float, float]:
    h = color.lstrip("#")
    return (int(h[0:2], 16) / 255.0, int(h[2:4], 16) / 255.0, int(h[4:6], 16) / 255.0)


def _needle_tube(needle: NeedleDisplay) -> pv.PolyData:
    line = pv.Line(np.asarray(needle.entry_lps, float), np.asarray(needle.target_lps, float))
    return line.tube(radius=float(needle.radius_mm), n_sides=NEEDLE_SIDES, capping=True)


def render_level_snapshot(
    surface_vertices: NDArray[np.float32],
    faces: NDArray[np.int32],
    normals: NDArray[np.float32] | None,
    needles: Sequence[NeedleDisplay],
    focus_lps: FloatArray,
    *,
    canal_mesh: MeshArrays | None = None,
    size: tuple[int, int] = (600, 450),
) -> bytes:
    """A PNG of the bone surface, canal and needles seen from posterior-left-superior.

    Parameters
    ----------
    surface_vertices, faces, normals
        The bone mesh in LPS mm (`planning.surface.BoneSurface`); ``normals`` may be None.
    needles
        Drawn as tubes of their radius in their status colours (`STATUS_COLORS`).
    focus_lps
        The point looked at (LPS mm), usually the level's needles' midpoint; the camera is
        `CAMERA_DISTANCE_MM` away from it, head up.
    canal_mesh
        (vertices, faces, normals) of the spinal canal (`planning.mask_reslice.mask_mesh`),
        drawn translucent through the bone.
    size
        (width, height) of the picture in pixels.

    The patient's left and right are lettered at the picture's sides ("L", "R"), on the
    side where the camera sees them.
    """
    width, height = int(size[0]), int(size[1])
    if width < 16 or height < 16:
        raise ValueError(f"size must be at least 16×16 pixels, got {size!r}")
    focus = np.asarray(focus_lps, dtype=np.float64).reshape(3)
    s = SUPERSAMPLE
    plotter = pv.Plotter(off_screen=True, window_size=[width * s, height * s])
    try:
        ren_win = plotter.ren_win
        assert ren_win is not None
        ren_win.SetMultiSamples(0)  # supersampled instead: MSAA is slow on software OpenGL
        plotter.set_background(BACKGROUND_BOTTOM, top=BACKGROUND_TOP)
        ren_win.SetNumberOfLayers(2)
        overlay = vtkRenderer()
        overlay.SetLayer(1)
        overlay.SetInteractive(False)
        ren_win.AddRenderer(overlay)

        if len(faces):
            plotter.add_mesh(
                _polydata(surface_vertices, faces, normals), color=BONE_COLOR,
                specular=0.25, specular_power=20, ambient=0.12, diffuse=0.85,
                smooth_shading=True, name="bone", reset_camera=False,
            )
        # the x-ray layer: needle ghosts first, then the canal (translucent props are drawn
        # in the order they are added; the canal's depth test then shows which is in front)
        ghosts = []
        for needle in needles:
            color = _hex_rgb(STATUS_COLORS[needle.status])
            tube = _needle_tube(needle)
            actor = plotter.add_mesh(
                tube, color=color, ambient=NEEDLE_AMBIENT, diffuse=1.0 - NEEDLE_AMBIENT,
                specular=0.3, specular_power=30.0, smooth_shading=True,
                name=f"needle:{needle.level}:{Side(needle.side).value}", reset_camera=False,
            )
            ghost = pv.Actor(mapper=actor.mapper)
            ghost.prop.color = color
            ghost.prop.opacity = GHOST_OPACITY
            ghost.prop.ambient = NEEDLE_AMBIENT
            ghost.prop.diffuse = 1.0 - NEEDLE_AMBIENT
            ghost.prop.backface_culling = True
            overlay.AddActor(ghost)
            ghosts.append(ghost)
            tip = pv.Sphere(radius=float(needle.radius_mm) * 1.25,
                            center=np.asarray(needle.target_lps, float))
            tip_actor = pv.Actor(mapper=pv.DataSetMapper(tip))
            tip_actor.prop.color = tuple(0.55 * np.array(color) + 0.45)
            overlay.AddActor(tip_actor)
        if canal_mesh is not None and len(canal_mesh[1]):
            canal = pv.Actor(mapper=pv.DataSetMapper(_polydata(*canal_mesh)))
            canal.mapper.scalar_visibility = False
            canal.prop.color = _hex_rgb(CANAL_COLOR)
            canal.prop.opacity = CANAL_OPACITY
            canal.prop.backface_culling = True
            canal.prop.interpolation = "gouraud"
            canal.prop.specular = 0.2
            overlay.AddActor(canal)

        camera = plotter.renderer.GetActiveCamera()
        direction = CAMERA_FROM_FOCUS / np.linalg.norm(CAMERA_FROM_FOCUS)
        camera.SetFocalPoint(*focus)
        camera.SetPosition(*(focus + CAMERA_DISTANCE_MM * direction))
        camera.SetViewUp(0.0, 0.0, 1.0)
        camera.OrthogonalizeViewUp()
        camera.SetViewAngle(VIEW_ANGLE_DEG)
        camera.SetClippingRange(CAMERA_DISTANCE_MM * 0.2, CAMERA_DISTANCE_MM * 4.0)
        plotter.renderer.camera_set = True
        overlay.SetActiveCamera(camera)
        overlay.LightFollowCameraOn()
        for light in plotter.renderer.GetLights():
            overlay.AddLight(light)

        _add_side_letters(plotter, overlay, camera, height * s)
        image = plotter.screenshot(return_img=True)
    finally:
        plotter.close()
        plotter.deep_clean()
    picture = Image.fromarray(np.asarray(image, dtype=np.uint8)[..., :3], mode="RGB")
    picture = picture.resize((width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG", compress_level=4)  # ~3× faster than 9, ~10 % larger
    return out.getvalue()


def side_letters(camera_from_focus: FloatArray, view_up: FloatArray) -> tuple[str, str]:
    """The letters for the picture's (left, right) edges: where the patient's left (+x) and
    right appear for a camera placed along ``camera_from_focus`` with ``view_up`` up."""
    forward = -np.asarray(camera_from_focus, dtype=np.float64)
    screen_right = np.cross(forward, np.asarray(view_up, dtype=np.float64))
    return ("R", "L") if float(screen_right[0]) > 0.0 else ("L", "R")


def _add_side_letters(
    plotter: pv.Plotter, overlay: vtkRenderer, camera: object, height: int
) -> None:
    """"L" and "R" at the picture's side edges (see `side_letters`), and a note saying from
    where the picture is seen; in the x-ray layer, so the translucent canal (drawn in that
    layer) does not tint them."""
    position = np.array(camera.GetPosition())  # type: ignore[attr-defined]
    focal = np.array(camera.GetFocalPoint())  # type: ignore[attr-defined]
    up = np.array(camera.GetViewUp())  # type: ignore[attr-defined]
    font = max(12, height // 26)
    left, right = side_letters(position - focal, up)
    for text, on_left in ((left, True), (right, False)):
        actor = plotter.add_text(text, position="left_edge" if on_left else "right_edge",
                                 font_size=font, color=LETTER_COLOR, shadow=True,
                                 name=f"side:{text}")
        _backed(actor)
        _move_to(actor, plotter, overlay)
    caption = plotter.add_text("Seen from behind, left and above", position="lower_left",
                               font_size=max(8, height // 48), color=(0.85, 0.88, 0.92),
                               name="caption")
    _backed(caption)
    _move_to(caption, plotter, overlay)


def _move_to(actor: object, plotter: pv.Plotter, renderer: vtkRenderer) -> None:
    """Take a 2-D actor pyvista added to its renderer over to another (a later layer)."""
    plotter.renderer.RemoveActor(actor)
    renderer.AddActor(actor)


def _backed(actor: object) -> None:
    """Bold text on a dark backing: readable over bone, canal and background."""
    prop = actor.GetTextProperty()  # type: ignore[attr-defined]
    prop.SetBold(True)
    prop.SetBackgroundColor(0.05, 0.06, 0.08)
    prop.SetBackgroundOpacity(0.8)
