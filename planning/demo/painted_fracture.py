"""Fractures painted into a real vertebra label map, so that their truth is exact.

Why: the labelled real CTs hold one fractured vertebra between them, so the fracture grades
could only be measured for false positives. A label map whose vertebral body is cut down —
a wedge (the front lower), a biconcave body (both endplates sunk in the middle) or a crush
(the whole body lower) — and painted (`planning.demo.painted.paint_from_labels`) has a real
patient's shapes around a fracture of known shape and height loss: the fracture grades are
measured for what they find, not only for what they invent.

The cut is made in the vertebra's own frame (`VertebraGeometry`: left, anterior, superior),
on the grid the phantom is painted on (`painting_grid`); what is cut away becomes
background (the disc above then looks taller, as it does over a collapsed endplate). The
posterior elements are untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planning.anatomy.from_labels import anatomy_from_label_map
from planning.anatomy.label_tables import LabelTable
from planning.assessment.fracture import SHAPE_BICONCAVE, SHAPE_CRUSH, SHAPE_WEDGE
from planning.assessment.genant import genant_grade
from planning.demo.painted import painting_grid, resample_nearest
from planning.volume import Volume

SHAPES = (SHAPE_WEDGE, SHAPE_BICONCAVE, SHAPE_CRUSH)
EXTENT_PERCENTILES = (2.0, 98.0)  # the body's extent across, robust to stray voxels


@dataclass(frozen=True)
class PaintedFracture:
    """What was painted: the level, the deformity and its height loss (0–1)."""

    level: str
    shape: str
    loss: float

    @property
    def grade(self) -> int:
        """The Genant grade this loss is (the truth the assessment is held to)."""
        return genant_grade(self.loss)


def fractured_labels(labels: Volume, table: LabelTable, fracture: PaintedFracture,
                     spacing_mm: float = 1.5) -> Volume:
    """``labels`` with the body of ``fracture.level`` cut down to ``fracture.shape``, on an
    LPS-aligned grid of ``spacing_mm`` (the grid `paint_from_labels` paints on: a 3 mm
    label map would cut a biconcave endplate by whole 3 mm voxels).

    The loss is of the body's height: at its front for a wedge, in its middle for a
    biconcave body (half from each endplate), everywhere for a crush.
    """
    if fracture.shape not in SHAPES:
        raise ValueError(f"unknown fracture shape {fracture.shape!r}; one of {SHAPES}")
    grid = painting_grid(labels, spacing_mm)
    labels = Volume(resample_nearest(labels, grid), grid.affine_lps, source=labels.source)
    bare = Volume(np.full(labels.array.shape, -1000, dtype=np.int16), labels.affine_lps)
    truth = anatomy_from_label_map(bare, labels, table)
    if fracture.level not in truth.levels:
        raise ValueError(f"{fracture.level} is not a level of this label map")
    geo = truth.levels[fracture.level]
    body = truth.bodies & (truth.labels == geo.code)
    k, j, i = np.nonzero(body)
    local = geo.to_local(truth.to_lps(np.stack([i, j, k], 1).astype(np.float64)))
    lo_l, hi_l = np.percentile(local[:, 0], EXTENT_PERCENTILES)
    lo_a, hi_a = np.percentile(local[:, 1], EXTENT_PERCENTILES)
    top, bottom = _column_extent(local)  # of each voxel's column, along the superior axis
    height = top - bottom
    front = np.clip((local[:, 1] - lo_a) / (hi_a - lo_a), 0.0, 1.0)  # 0 back … 1 front
    radial = np.hypot((local[:, 0] - (lo_l + hi_l) / 2) / ((hi_l - lo_l) / 2),
                      (local[:, 1] - (lo_a + hi_a) / 2) / ((hi_a - lo_a) / 2))
    s = local[:, 2]
    if fracture.shape == SHAPE_WEDGE:
        cut = s > top - fracture.loss * height * front
    elif fracture.shape == SHAPE_CRUSH:
        cut = s > top - fracture.loss * height
    else:
        sink = 0.5 * fracture.loss * height * np.clip(1.0 - radial**2, 0.0, 1.0)
        cut = (s > top - sink) | (s < bottom + sink)
    out = labels.array.copy()
    box = _crop_box(truth.affine_lps, labels.affine_lps)
    out[k[cut] + box[0], j[cut] + box[1], i[cut] + box[2]] = 0
    return Volume(out, labels.affine_lps, source=f"{labels.source or 'labels'} with a "
                  f"painted {fracture.shape} fracture of {fracture.level}")


def _column_extent(local: np.ndarray, bin_mm: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Per voxel, the top and bottom (superior coordinate, mm) of the body in its column:
    the voxels binned by their (left, anterior) position. Why per column: the endplates
    are neither flat nor square to the frame (concave, tilted with the lordosis), so one
    global top would cut the corners and spare the middle."""
    cells = np.floor(local[:, :2] / bin_mm).astype(np.int64)
    _, cell = np.unique(cells, axis=0, return_inverse=True)
    cell = cell.ravel()
    n = int(cell.max()) + 1
    top = np.full(n, -np.inf)
    bottom = np.full(n, np.inf)
    np.maximum.at(top, cell, local[:, 2])
    np.minimum.at(bottom, cell, local[:, 2])
    return top[cell], bottom[cell]


def _crop_box(crop_affine_lps: np.ndarray, full_affine_lps: np.ndarray) -> tuple[int, int, int]:
    """The (k, j, i) offset of a crop of a grid (an `Anatomy` lies on a crop of its CT's
    grid, here the label map's own)."""
    ijk = np.linalg.inv(full_affine_lps) @ crop_affine_lps[:, 3]
    k0, j0, i0 = (round(float(x)) for x in ijk[2::-1])
    return k0, j0, i0
