"""Per-vertebra local frames and vertebral bodies, in LPS mm.

The frame of a vertebra follows the spine, not the scanner:

- ``superior``: along the spine's curve towards the head — the direction from the caudal
  neighbour's centroid to the cranial neighbour's (central difference); at the two ends of
  the labelled spine the canal's centreline tangent, or the one-sided difference where the
  canal does not reach. Between neighbours it comes from the level *names*, so a label
  table that runs the wrong way shows up as a superior axis pointing to the feet, which
  is reported.
- ``anterior``: from the canal's centre at the vertebra's height towards the body's
  centroid, made orthogonal to superior.
- ``left`` = superior × anterior: with superior = +z and anterior = −y this is +x, the
  patient's left.

Without a separate body label, the body is the part of the vertebra anterior to the
canal's anterior border (the body's posterior wall), measured along the anterior axis. The
anterior axis itself depends on the body's centroid, so the split starts from the patient's
anterior and is refined once.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from planning.anatomy.model import VertebraGeometry

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

LEVEL_BAND_FRACTION = 0.3  # half-height of the band around the centroid, of the height
MIDLINE_HALF_WIDTH_MM = 5.0  # the canal's anterior border is measured near the midline
SPLIT_ITERATIONS = 2
PATIENT_ANTERIOR_LPS = np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True, eq=False)
class VertebraVoxels:
    """One vertebra's voxel centres in LPS mm (N, 3), with its name and code.

    ``body_lps`` is given when a separate body label exists; otherwise the body is split off
    at the canal and ``body_lps`` is None.
    """

    name: str
    code: int
    points_lps: FloatArray
    body_lps: FloatArray | None = None

    @cached_property
    def centroid_lps(self) -> FloatArray:
        """Centroid of the whole vertebra (body and posterior elements), LPS mm."""
        return np.asarray(self.points_lps.mean(axis=0))


def unit(v: FloatArray) -> FloatArray:
    """``v`` scaled to length 1 (a zero vector stays zero)."""
    n = float(np.linalg.norm(v))
    return np.asarray(v / n) if n > 0 else np.asarray(v, dtype=np.float64)


def superior_axes(centroids_lps: list[FloatArray], centreline_lps: FloatArray
                  ) -> list[FloatArray]:
    """Unit superior axis per vertebra, given their centroids from cranial to caudal.

    Between two neighbours: the central difference of the centroids (on the demo CT within
    0.5° of the design). At either end of the labelled spine, the canal's centreline
    tangent when the canal reaches that vertebra (one neighbour is too far to follow the
    curve: 7° off at the demo's L5), else the one-sided difference.
    """
    c = np.asarray(centroids_lps, dtype=np.float64)
    axes = []
    for n in range(len(c)):
        cranial, caudal = c[max(n - 1, 0)], c[min(n + 1, len(c) - 1)]
        one_sided = unit(cranial - caudal)
        if 0 < n < len(c) - 1:
            axes.append(one_sided)
            continue
        tangent = centreline_tangent(centreline_lps, c[n])
        if len(c) == 1 or canal_reaches(centreline_lps, c[n], tangent):
            axes.append(tangent)
        else:
            axes.append(one_sided)
    return axes


def centreline_tangent(centreline_lps: FloatArray, near_lps: FloatArray,
                       half_span_mm: float = 15.0) -> FloatArray:
    """Unit direction of a cranial-first centreline around a point, towards the head: the
    chord between the centreline points ``half_span_mm`` above and below it (in LPS z)."""
    if len(centreline_lps) < 2:
        return np.array([0.0, 0.0, 1.0])
    d = np.linalg.norm(centreline_lps - near_lps, axis=1)
    n = int(np.argmin(d))
    z = centreline_lps[:, 2]
    cranial = int(np.argmin(np.abs(z - (z[n] + half_span_mm))))
    caudal = int(np.argmin(np.abs(z - (z[n] - half_span_mm))))
    if cranial == caudal:
        return np.array([0.0, 0.0, 1.0])
    return unit(centreline_lps[cranial] - centreline_lps[caudal])


def centreline_point_at(centreline_lps: FloatArray, point_lps: FloatArray,
                        superior: FloatArray) -> FloatArray:
    """The centreline point at the same height as ``point_lps`` along ``superior``.

    Linear interpolation between centreline points; past either end (a vertebra at the
    edge of the scan, the sacrum below the canal's end), the line is extended along its
    end tangent.
    """
    height = (centreline_lps - point_lps) @ superior
    order = np.argsort(height)
    h, pts = height[order], centreline_lps[order]
    if h[0] <= 0.0 <= h[-1]:
        return np.array([np.interp(0.0, h, pts[:, a]) for a in range(3)])
    end = pts[0] if h[0] > 0.0 else pts[-1]
    tangent = centreline_tangent(centreline_lps, end)
    along = float(tangent @ superior)
    if abs(along) < 1e-3:
        return np.asarray(end)
    return np.asarray(end + ((point_lps - end) @ superior / along) * tangent)


def orthonormal_frame(superior: FloatArray, anterior_hint: FloatArray
                      ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(superior, anterior, left): anterior made orthogonal to superior, left = sup × ant."""
    sup = unit(superior)
    ant = unit(anterior_hint - (anterior_hint @ sup) * sup)
    if not np.any(ant):  # degenerate hint: fall back to the patient's anterior
        ant = unit(PATIENT_ANTERIOR_LPS - (PATIENT_ANTERIOR_LPS @ sup) * sup)
    return sup, ant, np.cross(sup, ant)


def canal_anterior_border_mm(canal_lps: FloatArray, centre_lps: FloatArray,
                             superior: FloatArray, anterior: FloatArray, left: FloatArray,
                             half_height_mm: float) -> float:
    """How far anterior of ``centre_lps`` the canal reaches at this level (mm), i.e. where
    the body's posterior wall is, from the canal voxels near the midline of the level."""
    d = canal_lps - centre_lps
    near = (np.abs(d @ superior) <= half_height_mm) & (np.abs(d @ left) <= MIDLINE_HALF_WIDTH_MM)
    if not near.any():
        return 0.0
    return float(np.max(d[near] @ anterior))


def split_body(points_lps: FloatArray, canal_lps: FloatArray, canal_centre_lps: FloatArray,
               superior: FloatArray, *, refine: bool = True) -> tuple[BoolArray, FloatArray]:
    """Which vertebra points are body (anterior of the canal's anterior border), and the
    anterior axis that goes with that body.

    The first cut is made along the patient's anterior (LPS −y, whatever the patient's
    position on the table); with ``refine`` a second one along the direction from the canal
    to the first body's centroid, which follows an axially rotated (scoliotic) vertebra.
    Why not start from the whole vertebra's centroid: in the sacrum, with its wide alae, it
    lies almost level with the canal and gives no direction.
    """
    offsets = points_lps - canal_centre_lps
    half_height = LEVEL_BAND_FRACTION * float(np.ptp(offsets @ superior))
    anterior_hint = PATIENT_ANTERIOR_LPS
    body = np.ones(len(points_lps), dtype=bool)
    for _ in range(SPLIT_ITERATIONS if refine else 1):
        sup, anterior, left = orthonormal_frame(superior, anterior_hint)
        border = canal_anterior_border_mm(canal_lps, canal_centre_lps, sup, anterior, left,
                                          half_height)
        candidate = offsets @ anterior > border
        if not candidate.any():
            break
        body = candidate
        if refine:
            anterior_hint = offsets[body].mean(axis=0)
    return body, orthonormal_frame(superior, anterior_hint)[1]


def canal_reaches(centreline_lps: FloatArray, point_lps: FloatArray,
                  superior: FloatArray) -> bool:
    """Whether the canal's centreline spans the height of ``point_lps`` along ``superior``."""
    if len(centreline_lps) < 2:
        return False
    heights = (centreline_lps - point_lps) @ superior
    return bool(heights.min() <= 0.0 <= heights.max())


def vertebra_geometries(vertebrae: list[VertebraVoxels], canal_lps: FloatArray,
                        centreline_lps: FloatArray
                        ) -> tuple[list[VertebraGeometry], list[BoolArray], list[str]]:
    """Geometry of each vertebra (given cranial to caudal), its body as a mask over its
    ``points_lps`` (all False when the body came separately), and warnings.

    Where the canal does not reach a vertebra's centroid (the sacrum below the end of the
    canal in view), the canal's centre there is extrapolated and would tilt the anterior
    axis; the patient's anterior is used instead and ``confidence`` is 0.5.
    """
    superiors = superior_axes([v.centroid_lps for v in vertebrae], centreline_lps)
    geometries, bodies, warnings = [], [], []
    for v, sup in zip(vertebrae, superiors, strict=True):
        centre = centreline_point_at(centreline_lps, v.centroid_lps, sup)
        reached = canal_reaches(centreline_lps, v.centroid_lps, sup)
        if v.body_lps is not None and len(v.body_lps):
            body_mask = np.zeros(len(v.points_lps), dtype=bool)
            body_points = v.body_lps
            anterior_hint = body_points.mean(axis=0) - centre
        else:
            body_mask, anterior_hint = split_body(v.points_lps, canal_lps, centre, sup,
                                                  refine=reached)
            body_points = v.points_lps[body_mask]
        if not reached:
            anterior_hint = PATIENT_ANTERIOR_LPS
            warnings.append(f"The spinal canal in view does not reach {v.name}: its axes "
                            "are approximate.")
        sup, ant, left = orthonormal_frame(sup, anterior_hint)
        if sup[2] < 0:
            warnings.append(f"{v.name}'s superior axis points towards the feet: the labels "
                            "may run the wrong way (check the label table).")
        geometries.append(VertebraGeometry(v.name, v.code, body_points.mean(axis=0), sup, ant,
                                           left, confidence=1.0 if reached else 0.5))
        bodies.append(body_mask)
    return geometries, bodies, warnings
