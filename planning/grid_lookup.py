"""Nearest-voxel look-ups of LPS points in a grid, as flat indices.

Checks run on every mouse move, so the masks, labels and HU along a needle are read by
flat index into contiguous arrays: one small matrix product and one gather per array.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def nearest_voxels(
    index_from_lps: NDArray[np.float64], shape_kji: tuple[int, ...], points_lps: NDArray
) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Flat indices (into a C-ordered ``[k, j, i]`` array of ``shape_kji``) of the voxels
    nearest to (N, 3) LPS points, and which points fall inside the grid (their index is 0
    otherwise, so it is safe to gather and then mask)."""
    m = index_from_lps
    ijk = np.rint(np.atleast_2d(points_lps) @ m[:3, :3].T + m[:3, 3]).astype(np.intp)
    nk, nj, ni = shape_kji
    ok: NDArray[np.bool_] = np.all((ijk >= 0) & (ijk < (ni, nj, nk)), axis=1)
    flat: NDArray[np.intp] = ijk @ np.array((1, ni, ni * nj), dtype=np.intp)
    flat[~ok] = 0
    return flat, ok
