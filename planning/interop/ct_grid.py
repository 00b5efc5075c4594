"""Arrays on boxes of a CT's voxel grid: pasted from a crop of that grid, or resampled
nearest-neighbour from any other grid of the same Frame of Reference.

Why apart: writing a DICOM SEG places the anatomy's masks (on a crop of the CT) on the CT's
own grid, and reading one places its frames there too; both decide "same grid" by the same
tolerances, so a crop that pastes on writing also pastes on reading. Boxes are ``[k, j, i]``
slices of the CT array (slice, row, column), as `planning.volume.Volume` orders it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from planning.volume import Volume, inverse_affine

# Grid matching: an anatomy crop or a SEG frame is "on the CT grid" when its axes agree
# within this (mm per voxel step) and its origin lies within this fraction of a voxel of
# a CT voxel centre.
AXIS_TOLERANCE_MM = 1e-3
OFFSET_TOLERANCE_VOX = 0.02

BoolArray = NDArray[np.bool_]
FloatArray = NDArray[np.float64]
Box = tuple[slice, slice, slice]  # [k, j, i] of the CT grid


def tight_box(box: Box, mask: BoolArray) -> tuple[Box, BoolArray]:
    """The mask cut to its own bounding box (``box`` is where ``mask`` lies on the CT)."""
    if not mask.any():
        return box, mask
    inner = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        inner.append(slice(int(idx[0]), int(idx[-1]) + 1))
    out: Box = (
        slice(box[0].start + inner[0].start, box[0].start + inner[0].stop),
        slice(box[1].start + inner[1].start, box[1].start + inner[1].stop),
        slice(box[2].start + inner[2].start, box[2].start + inner[2].stop),
    )
    return out, np.ascontiguousarray(mask[inner[0], inner[1], inner[2]])


def on_ct_grid(ct: Volume, affine_lps: FloatArray, array: NDArray[Any]
                ) -> tuple[Box, NDArray[Any]]:
    """``array`` (on the grid ``affine_lps``) on a box of the CT grid.

    Pasted by its integer offset when the grid is the CT's own (a crop of it), else
    resampled nearest-neighbour through LPS; the part outside the CT is dropped.
    """
    offset = integer_offset(ct.affine_lps, affine_lps)
    size_kji = np.array(ct.array.shape)
    if offset is not None:
        start = offset[::-1]  # (k, j, i)
        lo = np.clip(start, 0, size_kji)
        hi = np.clip(start + np.array(array.shape), 0, size_kji)
        box: Box = (slice(lo[0], hi[0]), slice(lo[1], hi[1]), slice(lo[2], hi[2]))
        src = tuple(slice(lo[a] - start[a], hi[a] - start[a]) for a in range(3))
        return box, np.ascontiguousarray(array[src])
    return resample_nearest(ct, affine_lps, array)


def integer_offset(ct_affine: FloatArray, affine: FloatArray) -> NDArray[np.int_] | None:
    """(i, j, k) of the grid's first voxel on the CT grid when the grid is a crop of the
    CT's (same axes, whole-voxel offset), else None."""
    if not np.allclose(ct_affine[:3, :3], affine[:3, :3], atol=AXIS_TOLERANCE_MM):
        return None
    ijk = inverse_affine(ct_affine) @ affine[:, 3]
    rounded = np.rint(ijk[:3])
    if np.max(np.abs(ijk[:3] - rounded)) > OFFSET_TOLERANCE_VOX:
        return None
    return rounded.astype(int)


def resample_nearest(ct: Volume, affine_lps: FloatArray, array: NDArray[Any]
                      ) -> tuple[Box, NDArray[Any]]:
    """Nearest-neighbour resampling of ``array`` onto the CT voxels its grid covers,
    slice by slice (memory stays one CT slab)."""
    shape = np.array(array.shape)  # (k, j, i)
    corners = np.array([[i, j, k] for i in (-0.5, shape[2] - 0.5)
                        for j in (-0.5, shape[1] - 0.5) for k in (-0.5, shape[0] - 0.5)])
    on_ct = ct.to_index(corners @ affine_lps[:3, :3].T + affine_lps[:3, 3])
    size = np.array(ct.size)
    lo = np.clip(np.floor(on_ct.min(axis=0)).astype(int), 0, size)
    hi = np.clip(np.ceil(on_ct.max(axis=0)).astype(int) + 1, 0, size)
    box: Box = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
    out = np.zeros((hi[2] - lo[2], hi[1] - lo[1], hi[0] - lo[0]), dtype=array.dtype)
    if out.size == 0:
        return box, out
    ct_to_src = inverse_affine(affine_lps) @ ct.affine_lps
    j, i = np.meshgrid(np.arange(lo[1], hi[1]), np.arange(lo[0], hi[0]), indexing="ij")
    for n, k in enumerate(range(lo[2], hi[2])):
        src = [np.rint(ct_to_src[r, 0] * i + ct_to_src[r, 1] * j
                       + ct_to_src[r, 2] * k + ct_to_src[r, 3]).astype(int) for r in range(3)]
        inside = ((src[0] >= 0) & (src[0] < shape[2]) & (src[1] >= 0) & (src[1] < shape[1])
                  & (src[2] >= 0) & (src[2] < shape[0]))
        out[n][inside] = array[src[2][inside], src[1][inside], src[0][inside]]
    return box, out

