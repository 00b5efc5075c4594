"""Where a mask's boundary crosses a view's slice: polylines in the slice's pixels.

Why here and not in the views: cutting a mask (on its own grid) by an oblique plane and
tracing its boundary is geometry, LPS → grid → contour, the same for every picture; a view
only turns the polylines into paths in its own pixels. Coordinates are the slice's pixel
``(x, y)`` of `planning.reslice.SliceGeometry` (pixel centres at integers).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter
from skimage.measure import find_contours

from planning.mask_reslice import reslice_labels
from planning.reslice import SliceGeometry
from planning.volume import FloatArray


def coarse_slice(geometry: SliceGeometry, min_sample_mm: float) -> SliceGeometry:
    """``geometry``'s plane, centre and field, sampled no finer than ``min_sample_mm``:
    a zoomed-in view need not trace a mask finer than its voxels (speed)."""
    sample_mm = max(geometry.pixel_mm, min_sample_mm)
    scale = sample_mm / geometry.pixel_mm
    w = max(2, math.ceil(geometry.width_px / scale))
    h = max(2, math.ceil(geometry.height_px / scale))
    return SliceGeometry(geometry.plane, geometry.center_lps, w, h, sample_mm)


def outline_contours_px(
    mask: NDArray[np.bool_], affine_lps: FloatArray, geometry: SliceGeometry
) -> list[FloatArray]:
    """Closed contours ``(N, 2)`` of the voxels of ``mask`` ([k, j, i], index→LPS
    ``affine_lps``) cut by ``geometry``, in its pixels; a region touching the image's
    edge is closed along it (the cut is padded), so it can be filled."""
    cut = reslice_labels(mask.view(np.uint8), affine_lps, geometry)
    if not cut.any():
        return []
    padded = np.pad(cut.astype(np.float32), 1)
    # (row, col) of the padded image → (x, y) pixels
    return [contour[:, ::-1] - 1.0 for contour in find_contours(padded, 0.5)]


def smoothed_contours_px(
    mask: NDArray[np.bool_], affine_lps: FloatArray, geometry: SliceGeometry
) -> list[FloatArray] | None:
    """Contours ``(N, 2)`` of ``mask`` cut by ``geometry``, in its pixels, sub-pixel and
    rounded; None where the slice misses the mask.

    A light blur (half a voxel) rounds the voxel staircase the way the 3-D surface of a
    mask is rounded, and moves the outline by less than half a voxel.
    """
    cut = reslice_labels(mask, affine_lps, geometry)
    if not cut.any():
        return None
    affine = np.asarray(affine_lps, dtype=np.float64)
    sigma = 0.5 * float(np.linalg.norm(affine[:3, :3], axis=0).min()) / geometry.pixel_mm
    field = gaussian_filter(cut.astype(np.float32), sigma) if sigma > 0.3 else cut
    return [contour[:, ::-1] for contour in find_contours(np.asarray(field, dtype=np.float32), 0.5)]
