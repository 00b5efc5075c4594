"""The CT's HU where an anatomy's voxels are: one way for every module that judges the
anatomy by the image (the canal's soft border, its bony wall, the endplates).

Why one place: an `Anatomy` lies on a grid of its own (a crop of the CT's grid when found in
the CT, anything when imported), and each of those modules had its own way from that grid
to the CT's voxels; two of them worked on crops only. Nearest voxel throughout: the
decisions are thresholds on HU, and interpolating would invent values between bone and
soft tissue at exactly the walls being judged.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.volume import Volume, inverse_affine, kji_transform

OUTSIDE_HU = np.inf
"""Beyond the CT nothing is known to be soft tissue (callers may ask for another value)."""
Box = tuple[slice, slice, slice]


def hu_on_grid(ct: Volume, affine_lps: NDArray[np.float64], box: Box,
               shape: tuple[int, ...], outside_hu: float = OUTSIDE_HU
               ) -> NDArray[np.float32]:
    """The CT's HU at the voxel centres of ``box`` of the grid ``affine_lps`` (``shape``
    voxels [k, j, i] from the box's start; ``outside_hu`` beyond the CT). A crop of the CT's
    own grid, as an `Anatomy` found in the CT lies on, is sliced without resampling."""
    start = np.array([box[2].start, box[1].start, box[0].start], dtype=np.float64)
    to_ct = inverse_affine(ct.affine_lps) @ affine_lps  # grid (i, j, k) → CT (i, j, k)
    origin = to_ct[:3, :3] @ start + to_ct[:3, 3]
    corner = np.rint(origin).astype(int)
    within = bool(np.all(corner >= 0) and np.all(corner + np.array(shape[::-1]) <= ct.size))
    if within and np.allclose(to_ct[:3, :3], np.eye(3), atol=1e-6) and np.allclose(
            origin, corner, atol=1e-3):
        i, j, k = corner
        return ct.array[k:k + shape[0], j:j + shape[1], i:i + shape[2]].astype(np.float32)
    box_to_ct = to_ct.copy()
    box_to_ct[:3, 3] = origin  # the box's first voxel, not the grid's
    matrix, offset = kji_transform(box_to_ct)
    out = ndimage.affine_transform(ct.array, matrix, offset, output_shape=shape,
                                   output=np.float32, order=0, mode="constant",
                                   cval=outside_hu)
    return np.asarray(out, dtype=np.float32)


def hu_at_voxels(ct: Volume, affine_lps: NDArray[np.float64], kji: NDArray[np.integer],
                 outside_hu: float = OUTSIDE_HU) -> NDArray[np.float64]:
    """The CT's HU at the nearest CT voxel of each grid voxel ``kji`` (N × 3 indices of the
    grid ``affine_lps``); ``outside_hu`` for those beyond the CT."""
    grid_to_ct = inverse_affine(ct.affine_lps) @ affine_lps
    ijk = kji[:, ::-1].astype(np.float64)
    ct_ijk = np.rint(ijk @ grid_to_ct[:3, :3].T + grid_to_ct[:3, 3]).astype(np.intp)
    size = np.array(ct.array.shape[::-1])
    inside = np.all((ct_ijk >= 0) & (ct_ijk < size), axis=1)
    hu = np.full(len(kji), float(outside_hu))
    hu[inside] = ct.array[ct_ijk[inside, 2], ct_ijk[inside, 1], ct_ijk[inside, 0]]
    return hu
