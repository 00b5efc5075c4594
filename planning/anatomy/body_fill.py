"""The cancellous interior of each vertebral body, on the working grid.

Why: the bone threshold (180 HU) keeps the cortical shell of a body but not its inside;
in osteoporotic bone the cancellous core is 80–160 HU (on the real abdominal CT only 30–50 %
of the body voxels passed the threshold). A vertebra whose body is a hollow shell has its
centroid pulled back towards the posterior elements (17 mm at T12 on that CT) and no
interior for the needle tips to aim at.

Per axial slice of a vertebra, the shell anterior of the canal is taken with its convex
hull (a body's cross-section is convex but for a shallow posterior dip), and the hull's
voxels that are not fat, gas nor CSF join the vertebra. The cut at the canal's anterior
wall keeps the pedicles and laminae out of the hull, so the canal is never filled.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage
from skimage.morphology import convex_hull_image

from planning.anatomy.spine_column import SpineColumn

INTERIOR_MIN_HU = 20.0  # inside a body's shell everything but fat, gas and CSF is the body:
# the posterior body of an osteoporotic vertebra, with its venous plexus, measured 66–131 HU
BODY_REACH_MM = 40.0  # bone farther than this from the body centre line is not its shell
# (the line runs in the front part of the body: a 38 mm deep lumbar body reached 30 mm)
CANAL_WALL_FRACTION = 0.3  # canal centre → body centre, where the canal's front wall lies
# when the canal was not seen in a slice (a canal of ~16 mm across, a body ~35 mm deep)
MIN_SHELL_PIXELS = 12  # a slice with less of the body's bone is a disc's rim: not filled

IntArray = NDArray[np.int32]
BoolArray = NDArray[np.bool_]


def fill_bodies(column: SpineColumn, labels: IntArray) -> IntArray:
    """Working-grid voxels of each body: inside its shell, shell included, but not fat,
    gas nor CSF.

    ``labels`` is the working-grid vertebra map (1…n). Returns the bodies as a map of the
    same codes (0 elsewhere); ``labels`` is not modified. On the CT's grid these voxels
    are the vertebra whatever their HU (above `INTERIOR_MIN_HU`), where elsewhere only
    bone is: a thin, partial-volumed posterior wall is bone all the same.
    """
    s = column.grid.spacing_mm
    hu = column.grid.hu
    out = np.zeros(labels.shape, dtype=np.int32)
    jj, ii = np.ogrid[: labels.shape[1], : labels.shape[2]]
    reach2 = (BODY_REACH_MM / s) ** 2
    valid = np.isfinite(column.body_ij[:, 0]) & np.isfinite(column.canal_ij[:, 0])
    for k in np.flatnonzero(valid & labels.any(axis=(1, 2))):
        ci, cj = column.canal_ij[k]
        bi, bj = column.body_ij[k]
        u = np.array([bi - ci, bj - cj])
        depth = float(np.hypot(*u))
        if depth < 1e-6:
            continue
        u /= depth
        along = (ii - ci) * u[0] + (jj - cj) * u[1]
        wall = _canal_front(column.canal[k], ii, jj, along, ci, cj, s, depth)
        front = (along > wall) & (((ii - bi) ** 2 + (jj - bj) ** 2) <= reach2)
        dense = (hu[k] >= INTERIOR_MIN_HU) & ~column.vessels.lumen[k]
        row = labels[k]
        codes, counts = np.unique(row[front], return_counts=True)
        # the vertebra with the most shell here fills first: in a slice that crosses a
        # tilted disc a neighbour's rim must not overwrite the body
        for code, count in sorted(zip(codes, counts, strict=True), key=lambda c: -c[1]):
            if code == 0 or count < MIN_SHELL_PIXELS:
                continue
            hull = _hull((row == code) & front)
            out[k][hull & front & dense & ~column.canal[k] & (out[k] == 0)] = code
    return out


def _canal_front(canal: BoolArray, ii: IntArray, jj: IntArray, along: NDArray[np.float64],
                 ci: float, cj: float, s: float, depth: float) -> float:
    """How far towards the body the canal reaches in this slice (its anterior wall), in
    working voxels, from the canal voxels near the centre line, or a typical fraction
    where none were seen."""
    near = canal & (((ii - ci) ** 2 + (jj - cj) ** 2) <= (15.0 / s) ** 2)
    if near.any():
        return float(along[near].max())
    return CANAL_WALL_FRACTION * depth


def _hull(shell: BoolArray) -> BoolArray:
    """The convex hull of the shell, computed on its bounding box only."""
    where = ndimage.find_objects(shell.astype(np.int8))[0]
    hull = np.zeros_like(shell)
    hull[where] = convex_hull_image(shell[where])
    return hull
