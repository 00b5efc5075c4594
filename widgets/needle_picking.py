"""Which needle part a press in the 3-D view grabs, and where the screen meets the world.

Kept apart from `view3d` (the scene and the mouse events) so each stays small. Picking is
done on screen against the needles' known geometry rather than with a ray picker: the
handles are drawn on top of the bone, so what must be grabbed is what is seen, and a
tolerance in pixels is exact at any zoom. Positions are VTK display pixels (origin
bottom-left, physical pixels); points are LPS mm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from vtkmodules.vtkRenderingCore import vtkRenderer

from planning.plan import Side
from planning.segment_geometry import nearest_on_segment, segment_point_nearest_line
from planning.volume import FloatArray
from widgets.plan_display import NeedleDisplay

PICK_TOLERANCE_PX = 5.0  # a press this close to a handle or a needle grabs it

NeedleKey = tuple[str, Side]


@dataclass
class Grab:
    """A left press on a needle, until release. Points in LPS mm, positions in VTK display
    pixels (origin bottom-left, physical pixels)."""

    key: NeedleKey
    part: str  # "entry" | "target" | "needle"
    entry_lps: FloatArray  # the needle as shown at the press: moves are relative to it
    target_lps: FloatArray
    depth: float  # display depth of the grabbed point: the drag plane, parallel to screen
    press_xy: tuple[float, float]
    owns_press: bool  # False: not editable, the camera got the press; only a click counts
    dragging: bool = False


def world_to_display(renderer: vtkRenderer, point_lps: FloatArray) -> NDArray[np.float64]:
    """(x, y, depth) in VTK display pixels (origin bottom-left) of a point, LPS mm."""
    renderer.SetWorldPoint(*np.asarray(point_lps, dtype=np.float64), 1.0)
    renderer.WorldToDisplay()
    return np.array(renderer.GetDisplayPoint(), dtype=np.float64)


def display_to_world(renderer: vtkRenderer, x: float, y: float,
                     depth: float) -> NDArray[np.float64]:
    """The world point (LPS mm) at display pixel (x, y) and display depth (0 near, 1 far)."""
    renderer.SetDisplayPoint(float(x), float(y), float(depth))
    renderer.DisplayToWorld()
    w = np.array(renderer.GetWorldPoint(), dtype=np.float64)
    return w[:3] / w[3]


def px_per_mm(renderer: vtkRenderer, point_lps: FloatArray) -> float:
    """Screen pixels per mm at a point's depth (perspective: nearer is larger)."""
    m = renderer.GetActiveCamera().GetViewTransformMatrix()
    right = np.array([m.GetElement(0, i) for i in range(3)])
    a = world_to_display(renderer, point_lps)
    b = world_to_display(renderer, np.asarray(point_lps, dtype=np.float64) + right)
    return float(np.hypot(*(b[:2] - a[:2])))


def pick_needle(renderer: vtkRenderer, needles: dict[NeedleKey, NeedleDisplay],
                handle_radius_mm: dict[NeedleKey, float] | None, x: float, y: float
                ) -> tuple[NeedleKey, str, FloatArray] | None:
    """The needle part under display pixel (x, y): (key, part, grabbed point LPS).

    ``handle_radius_mm`` is None when the handles are hidden (not editable). Handles win
    over shafts; among equals the nearest on screen wins.
    """
    click = np.array([x, y], dtype=np.float64)
    best: tuple[int, float, NeedleKey, str, FloatArray] | None = None
    for key, needle in needles.items():
        entry = np.asarray(needle.entry_lps, dtype=np.float64)
        target = np.asarray(needle.target_lps, dtype=np.float64)
        a, b = world_to_display(renderer, entry), world_to_display(renderer, target)
        if handle_radius_mm is not None:
            handle_mm = handle_radius_mm[key]
            for part, point, screen in (("entry", entry, a), ("target", target, b)):
                dist = float(np.linalg.norm(screen[:2] - click))
                if dist <= handle_mm * px_per_mm(renderer, point) + PICK_TOLERANCE_PX:
                    cand = (0, dist, key, part, point)
                    best = cand if best is None or cand[:2] < best[:2] else best
        t, dist = nearest_on_segment(click, a[:2], b[:2])
        near = entry + t * (target - entry)
        if dist <= needle.radius_mm * px_per_mm(renderer, near) + PICK_TOLERANCE_PX:
            cand = (1, dist, key, "needle", point_on_axis(renderer, x, y, entry, target))
            best = cand if best is None or cand[:2] < best[:2] else best
    return None if best is None else (best[2], best[3], best[4])


def point_on_axis(renderer: vtkRenderer, x: float, y: float, entry: FloatArray,
                  target: FloatArray) -> NDArray[np.float64]:
    """The point of the segment entry–target nearest to the ray under pixel (x, y)."""
    origin = display_to_world(renderer, x, y, 0.0)
    ray = display_to_world(renderer, x, y, 1.0) - origin
    return segment_point_nearest_line(origin, ray, entry, target)
