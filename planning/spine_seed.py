"""Where the spine is, roughly, so the views open on it instead of the volume's centre.

The vertebral column is the one bone structure present in (almost) every axial slice of a
spine CT at the same place: projecting "bone" along the patient's head–foot axis and taking
the strongest spot near the midline finds the vertebral bodies. Ribs, pelvis and sternum run
for fewer slices or lie away from it; contrast-filled blood (the aorta runs as long as the
spine, beside it) is taken out first. Only a starting point
for the crosshair — the anatomy module does the real work.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import binary_dilation, find_objects, gaussian_filter, label
from scipy.ndimage import uniform_filter as ndimage_uniform

from planning.vessels import (
    BLOOD_HU,
    HOMOGENEITY_FLOOR_HU,
    HOMOGENEITY_NOISE_FACTOR,
    MIN_CHAMBER_ML,
    MIN_LENGTH_MM,
    local_mean_sd,
    noise_sd_hu,
)
from planning.volume import FloatArray, Volume

BONE_HU = (200, 1800)  # bone, without metal (stents, wires, implants)
STEP_MM = 3.0  # subsampling: the seed needs no more
SMOOTH_MM = 9.0  # favours the wide vertebral bodies over thin columns (spinous processes)


def _blood(sub: NDArray[np.int16], axis_kji: int, step_mm: NDArray[np.float64]
           ) -> NDArray[np.bool_]:
    """Contrast-filled blood on the coarse grid, grown by a voxel: `planning.vessels`' local
    test (bright and homogeneous across the body axis) and its size test (as long as
    `MIN_LENGTH_MM` or as large as `MIN_CHAMBER_ML`: a vertebral body is cut short by its
    discs). The aorta is a column of "bone" as long as the spine and the heart a larger
    one; the crosshair must not open on them (nor on their walls: two voxels)."""
    mean, sd = local_mean_sd(sub.astype(np.float32), axis_kji)
    limit = max(HOMOGENEITY_FLOOR_HU, HOMOGENEITY_NOISE_FACTOR * noise_sd_hu(mean, sd))
    blood = (mean >= BLOOD_HU[0]) & (mean <= BLOOD_HU[1]) & (sd <= limit)
    pieces, n = label(blood)
    if n == 0:
        return blood
    boxes = find_objects(pieces)
    along = np.array([(b[axis_kji].stop - b[axis_kji].start) for b in boxes if b is not None])
    size = np.bincount(pieces.ravel(), minlength=n + 1)[1:]
    length_mm = along * step_mm[axis_kji]
    ml = size * float(np.prod(step_mm)) / 1000.0
    big = np.concatenate([[False], (length_mm >= MIN_LENGTH_MM) | (ml >= MIN_CHAMBER_ML)])
    return np.asarray(binary_dilation(big[pieces], iterations=2))


COLUMN_GRID_MM = 3.0  # the canal finder's grid for the seed: coarse, tenths of a second
BODY_REACH_MM = 16.0  # the seed is looked for this far above and below the column's middle


def spine_seed_lps(volume: Volume) -> FloatArray:
    """An LPS point inside the vertebral column (its middle along the body axis), or the
    volume's centre when no bone column is found.

    First the spinal canal is followed on a coarse grid (`planning.anatomy.spine_column`:
    soft tissue walled by a symmetric bony ring, slice after slice), and the seed is the
    middle of the body in front of it (`SpineColumn.body_ij`, with blood already taken out
    of the bone): no aorta, heart or table has a canal. Where
    no canal is found, the densest column of bone near the midline (`_projection_seed`).
    """
    from planning.anatomy.spine_column import (
        SpineNotFoundError,
        find_column,
        working_grid,
    )

    try:
        grid = working_grid(volume, max(COLUMN_GRID_MM, float(volume.spacing_mm.min())))
        column = find_column(grid)
    except SpineNotFoundError:
        return _projection_seed(volume)
    known = np.flatnonzero(np.isfinite(column.body_ij[:, 0]))
    if not len(known):
        return _projection_seed(volume)
    # near the middle of the column, on the bodies' centre line, the slice whose darkest
    # neighbour within ±2 slices is brightest: a body's middle (its cancellous bone all
    # round), not a disc nor an endplate beside one (bright, but a disc next to it)
    middle = known[len(known) // 2]
    reach = round(BODY_REACH_MM / grid.spacing_mm)
    ks = known[np.abs(known - middle) <= reach]
    ij = np.rint(column.body_ij[ks]).astype(np.intp)
    shape = np.array(grid.hu.shape)
    ok = (ij[:, 0] >= 0) & (ij[:, 0] < shape[2]) & (ij[:, 1] >= 0) & (ij[:, 1] < shape[1])
    if not ok.any():
        return _projection_seed(volume)
    ks, ij = ks[ok], ij[ok]
    plate = ndimage_uniform(grid.hu, (1, 3, 3))
    depth = np.stack([plate[np.clip(ks + d, 0, shape[0] - 1), ij[:, 1], ij[:, 0]]
                      for d in range(-2, 3)])
    best = int(np.argmax(depth.min(axis=0)))
    k, (i, j) = ks[best], ij[best]
    return grid.to_lps(np.array([i, j, k], dtype=np.float64))


def _projection_seed(volume: Volume) -> FloatArray:
    """The densest column of bone (contrast-filled blood left out) near the midline."""
    step = [max(1, round(float(STEP_MM / s))) for s in volume.spacing_mm[::-1]]  # k, j, i
    sub = volume.array[:: step[0], :: step[1], :: step[2]]
    # which array axis runs head–foot: the one whose direction has the largest |z|
    axis_kji = 2 - int(np.argmax(np.abs(volume.direction[2])))  # i, j, k → array axis
    step_mm = volume.spacing_mm[::-1] * np.array(step)  # k, j, i
    bone = (sub >= BONE_HU[0]) & (sub <= BONE_HU[1]) & ~_blood(sub, axis_kji, step_mm)
    if not bone.any():
        return volume.center_lps()
    counts = bone.sum(axis=axis_kji).astype(np.float64)
    counts = gaussian_filter(counts, SMOOTH_MM / STEP_MM)
    # favour the middle of the body's width and its posterior part: the spine lies near
    # the midline at about 62 % of the body's depth (the sternum and aorta lie in front)
    in_plane = [a for a in range(3) if a != axis_kji]
    body = (sub > -400).any(axis=axis_kji)
    for dim, a in enumerate(in_plane):
        n = counts.shape[dim]
        other = 1 - dim
        occupied = np.flatnonzero(np.any(body, axis=other))
        if n < 3 or not len(occupied):
            continue
        lo, hi = occupied[0], occupied[-1]
        rel = (np.arange(n) - lo) / max(hi - lo, 1)  # 0…1 across the body along this axis
        shape = [1, 1]
        shape[dim] = n
        if abs(volume.direction[0, 2 - a]) > 0.7:  # left–right: near the middle
            counts = counts * np.exp(-(((rel - 0.5) / 0.25) ** 2)).reshape(shape)
        elif abs(volume.direction[1, 2 - a]) > 0.7:  # anterior–posterior: towards the back
            posterior = rel if volume.direction[1, 2 - a] > 0 else 1.0 - rel
            counts = counts * np.exp(-(((posterior - 0.62) / 0.25) ** 2)).reshape(shape)
    best = np.unravel_index(int(np.argmax(counts)), counts.shape)
    # along the body axis: the middle of the slices where that spot is bone
    index = [0, 0, 0]
    for dim, a in enumerate(in_plane):
        index[a] = int(best[dim])
    line = np.take(np.take(bone, index[in_plane[1]], axis=in_plane[1]), index[in_plane[0]],
                   axis=in_plane[0])
    hits = np.flatnonzero(line)
    index[axis_kji] = int(hits[len(hits) // 2]) if len(hits) else sub.shape[axis_kji] // 2
    k, j, i = (index[a] * step[a] for a in range(3))
    return volume.to_lps([float(i), float(j), float(k)])
