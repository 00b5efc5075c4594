"""Plain geometry of a needle path: its angles in a frame, its samples, its distance to another.

Why apart from `planning.checks`: these are pure functions of points and unit vectors (LPS
mm), with no CT or anatomy, so they can be read and tested on their own. They run on every
mouse move, so the small ones use plain floats rather than numpy.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from planning.anatomy.model import VertebraGeometry
from planning.plan import Point, Side

FloatArray = NDArray[np.float64]

PATH_STEP_MM = 0.5  # labels along the path: finer than any voxel of a planning CT
AHEAD_MM = 60.0  # how far beyond the tip the anterior cortex is looked for
PATIENT_AXES = (np.array([1.0, 0, 0]), np.array([0, -1.0, 0]), np.array([0, 0, 1.0]))


def angles(
    direction: tuple[float, float, float],
    left: FloatArray,
    anterior: FloatArray,
    superior: FloatArray,
    side: Side,
) -> tuple[float, float]:
    """(medial, craniocaudal) angles in degrees of a unit direction in a frame.

    medial: angle from the sagittal plane in the axial plane, positive when the needle
    advances towards the midline (convergent). craniocaudal: angle from the axial plane,
    positive when the needle advances caudally (towards the feet). Plain floats: it runs
    on every mouse move.
    """
    dx, dy, dz = direction

    def dot(axis: FloatArray) -> float:
        return dx * float(axis[0]) + dy * float(axis[1]) + dz * float(axis[2])

    lt, an, su = dot(left), dot(anterior), dot(superior)
    towards_midline = -lt * side.lps_sign
    medial = math.degrees(math.atan2(towards_midline, an))
    cc = math.degrees(math.asin(min(1.0, max(-1.0, -su))))
    return medial, cc


def segment_distance(p0: Point, p1: Point, q0: Point, q1: Point) -> float:
    """Smallest distance between two segments (mm); plain floats — it runs per mouse move."""
    d1 = [float(p1[i] - p0[i]) for i in range(3)]
    d2 = [float(q1[i] - q0[i]) for i in range(3)]
    r = [float(p0[i] - q0[i]) for i in range(3)]

    def dot(u: list[float], v: list[float]) -> float:
        return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]

    a, e, f, c, b = dot(d1, d1), dot(d2, d2), dot(d2, r), dot(d1, r), dot(d1, d2)
    denom = a * e - b * b
    s = min(max((b * f - c * e) / denom, 0.0), 1.0) if denom > 1e-12 else 0.0
    t = (b * s + f) / e
    if t < 0.0:
        t, s = 0.0, min(max(-c / a, 0.0), 1.0)
    elif t > 1.0:
        t, s = 1.0, min(max((b - c) / a, 0.0), 1.0)
    gap = [r[i] + s * d1[i] - t * d2[i] for i in range(3)]
    return math.sqrt(dot(gap, gap))


def line_samples(
    entry: FloatArray, direction: FloatArray, length_mm: float
) -> tuple[FloatArray, FloatArray, int]:
    """Samples along the needle from the entry to the tip (both included, at most
    ``PATH_STEP_MM`` apart) and on, at the same spacing, ``AHEAD_MM`` beyond the tip:
    (points, distance from the entry, number of samples up to and including the tip).
    One array serves the labels, the disc mask and the anterior cortex."""
    n_path = max(2, math.ceil(length_mm / PATH_STEP_MM) + 1)
    step = length_mm / (n_path - 1)
    n_ahead = math.ceil(AHEAD_MM / step) if step > 0 else 0
    s = np.arange(n_path + n_ahead, dtype=np.float64) * step
    return entry + s[:, None] * direction, s, n_path


def wall_name(normal: FloatArray, geo: VertebraGeometry, side: Side) -> str:
    """Which pedicle wall an outward normal belongs to, in the vertebra's frame."""
    lateral = float(normal @ geo.left_lps) * side.lps_sign  # + = away from the midline
    vertical = float(normal @ geo.superior_lps)
    if abs(lateral) >= abs(vertical):
        return "lateral" if lateral > 0 else "medial"
    return "superior" if vertical > 0 else "inferior"
