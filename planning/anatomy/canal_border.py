"""The soft-tissue border of an automatically found canal, where the canal may reach further.

The automatic canal is the hole that the vertebra labels enclose (`canal_from_vertebrae`),
and those labels are bone by a threshold (`spine_column.BONE_HU`). Where the canal meets
dense cortex its border is sure to a voxel; where it runs on into soft tissue it is not:
the lateral recesses beside the dural sac, the entries of the foramina along the back of
the body and the epidural fat are soft tissue that a ring of thresholded bone, one voxel
thicker or thinner, encloses or leaves out. The nerve roots run there. On the real
abdominal CT (3 mm) and its mirrored, oblique and 1 mm copies, the canal that
TotalSegmentator's labels enclose reached up to 4.5 mm beyond the automatic one, and where
it did, the tissue in between was below the bone threshold (median 55 HU).

The border stays at 3 mm (a voxel of a 3 mm scan), measured both ways: with 3 mm the
accuracy harness (`bench/accuracy.py`, both labelled CTs, 65 storings) found 9 automatic
needles within 1 mm of the labelled canal, each passing the lateral recess at the back
corner of a lumbar body, where the labels' canal reached 4–5 mm beyond the automatic one;
with 5 mm it found 2, but the thorax CT (narrow thoracic pedicles, no lateral recess) got
no proposal at all. A border per vertebra (deep at lumbar levels, known from the rib cue
rather than from names that may be uncertain) is the step this leaves.

`canal_with_soft_border` adds that tissue to the canal: voxels below the bone threshold
within `BORDER_MM` of it and joined to it through such voxels, so that a bony wall stops
the border where a plain dilation would jump it. The margin of automatic proposals grows
by the depth of that tissue where a path passes (`planning.canal_margin`); the anatomy's
canal itself is not changed, so the checks and the views still show what was found.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from planning.anatomy.ct_sampling import hu_on_grid
from planning.anatomy.model import Anatomy, BoolArray, FloatArray
from planning.anatomy.spine_column import BONE_HU
from planning.volume import Volume

BORDER_MM = 3.0  # a voxel of a 3 mm scan: how far beyond the canal soft tissue may still be it
POOL_MM = 1.0  # finer grids are pooled to about this: the border is no sharper than a voxel

Box = tuple[slice, slice, slice]
T = TypeVar("T", bound=np.generic)

__all__ = ["BORDER_MM", "canal_noise_hu", "canal_with_soft_border"]


def canal_with_soft_border(ct: Volume, anatomy: Anatomy, border_mm: float = BORDER_MM
                           ) -> tuple[BoolArray, FloatArray]:
    """The canal of ``anatomy`` and the soft tissue beside it, and the grid it lies on.

    Returns a bool ``[k, j, i]`` mask and its index→LPS affine: the anatomy's grid around
    the canal, in blocks of about `POOL_MM` where its voxels are finer (a block is canal
    where any of its voxels is, and soft tissue where none of its voxels is bone, so that
    a thin cortex still stops the border). The
    soft part is within ``border_mm`` of the canal and joined to it through soft tissue
    (6-connected). An empty canal gives an empty mask.
    """
    canal = anatomy.canal
    spacing_kji = anatomy.spacing_mm[::-1]
    factor = [max(1, int(POOL_MM // s)) for s in spacing_kji]
    if not canal.any():
        return np.zeros((1, 1, 1), dtype=bool), anatomy.affine_lps
    pad = [int(np.ceil(border_mm / s)) + f for s, f in zip(spacing_kji, factor, strict=True)]
    box = _pooled_box(canal, pad, factor)
    shape = tuple(b.stop - b.start for b in box)
    inside = _blocks(canal[box], factor).any(axis=(1, 3, 5))
    hu = _blocks(hu_on_grid(ct, anatomy.affine_lps, box, shape), factor).max(axis=(1, 3, 5))
    pooled_mm = [s * f for s, f in zip(spacing_kji, factor, strict=True)]
    near = ndimage.distance_transform_edt(~inside, sampling=pooled_mm) <= border_mm
    soft = near & ~inside & (hu < BONE_HU)
    parts, _ = ndimage.label(soft | inside)
    joined = np.unique(parts[inside])
    mask = np.isin(parts, joined[joined > 0])
    to_grid = np.eye(4)
    for col, axis in enumerate((2, 1, 0)):  # (i, j, k) columns ← (k, j, i) axes
        to_grid[col, col] = factor[axis]
        to_grid[col, 3] = box[axis].start + (factor[axis] - 1) / 2.0
    return mask, np.asarray(anatomy.affine_lps @ to_grid, dtype=np.float64)


def canal_noise_hu(ct: Volume, anatomy: Anatomy) -> float:
    """The CT's noise inside the canal, HU: the robust spread (1.4826 × median absolute
    deviation) of each voxel's difference from the mean of its 3 × 3 × 3 neighbours, over
    the canal less its outer voxel layer (CSF and the dural sac: nearly uniform tissue, so
    what varies there is noise). 0 when the canal has no inner voxel.

    Why: a noisy CT's thin cortex breaks up at the bone threshold, and the canal found
    inside it wanders by more where its wall is soft tissue (`planning.canal_margin`)."""
    canal = anatomy.canal
    if not canal.any():
        return 0.0
    box = _pooled_box(canal, [2, 2, 2], [1, 1, 1])
    shape = tuple(b.stop - b.start for b in box)
    hu = hu_on_grid(ct, anatomy.affine_lps, box, shape)
    inner = ndimage.binary_erosion(canal[box])
    inner &= np.isfinite(hu)
    if not inner.any():
        return 0.0
    residual = (hu - ndimage.uniform_filter(np.where(np.isfinite(hu), hu, 0.0), 3))[inner]
    return float(1.4826 * np.median(np.abs(residual - np.median(residual))))


def _pooled_box(mask: BoolArray, pad: list[int], factor: list[int]) -> Box:
    """The ``[k, j, i]`` bounding box of a non-empty mask grown by ``pad`` voxels, clipped,
    and trimmed to whole blocks of ``factor`` voxels (at least one)."""
    box = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero(mask.any(axis=other))
        start = max(0, int(idx[0]) - pad[axis])
        stop = min(mask.shape[axis], int(idx[-1]) + pad[axis] + 1)
        size = max(factor[axis], (stop - start) // factor[axis] * factor[axis])
        start = max(0, min(start, mask.shape[axis] - size))
        box.append(slice(start, start + min(size, mask.shape[axis])))
    return (box[0], box[1], box[2])


def _blocks(array: NDArray[T], factor: list[int]) -> NDArray[T]:
    """``array`` as blocks of ``factor`` voxels: axes (k, a, j, b, i, c), ready to reduce
    over (1, 3, 5); voxels beyond whole blocks are dropped."""
    n = [array.shape[a] // factor[a] for a in range(3)]
    return array[: n[0] * factor[0], : n[1] * factor[1], : n[2] * factor[2]].reshape(
        n[0], factor[0], n[1], factor[1], n[2], factor[2])
