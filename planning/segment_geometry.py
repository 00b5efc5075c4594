"""Nearest points on a needle's segment: to a point, and to a line (a viewing ray).

Why here and not in the 3-D view: grabbing a needle is decided by these distances, which are
plain geometry in any frame (LPS mm, or screen pixels for a projected needle) and are
testable without a display.
"""

from __future__ import annotations

import numpy as np

from planning.volume import FloatArray


def nearest_on_segment(point: FloatArray, start: FloatArray, end: FloatArray
                       ) -> tuple[float, float]:
    """(t, distance): the point ``start + t (end − start)``, t in [0, 1], nearest to
    ``point``, and how far it is; any dimension, one frame for all three arguments."""
    ab = end - start
    t = float(np.clip(np.dot(point - start, ab) / max(np.dot(ab, ab), 1e-12), 0, 1))
    return t, float(np.linalg.norm(start + t * ab - point))


def segment_point_nearest_line(line_origin: FloatArray, line_direction: FloatArray,
                               start: FloatArray, end: FloatArray) -> FloatArray:
    """The point of the segment start–end nearest to the line ``origin + s direction``
    (e.g. the ray under a mouse click); a segment parallel to the line gives ``start``."""
    axis = end - start
    w = start - line_origin
    aa, bb = float(line_direction @ line_direction), float(line_direction @ axis)
    cc = float(axis @ axis)
    dd, ee = float(line_direction @ w), float(axis @ w)
    denom = aa * cc - bb * bb
    s = 0.0 if denom < 1e-12 else (bb * dd - aa * ee) / denom
    result: FloatArray = start + float(np.clip(s, 0.0, 1.0)) * axis
    return result
