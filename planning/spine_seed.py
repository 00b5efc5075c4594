"""Where the spine is, roughly, so the views open on it instead of the volume's centre.

The vertebral column is the one bone structure present in (almost) every axial slice of a
spine CT at the same place: projecting "bone" along the patient's head–foot axis and taking
the strongest spot near the midline finds the vertebral bodies. Ribs, pelvis, sternum and
contrast-filled vessels run for fewer slices or lie away from it. Only a starting point
for the crosshair — the anatomy module does the real work.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from planning.volume import FloatArray, Volume

BONE_HU = (200, 1800)  # bone, without metal (stents, wires, implants)
STEP_MM = 3.0  # subsampling: the seed needs no more
SMOOTH_MM = 9.0  # favours the wide vertebral bodies over thin columns (spinous processes)


def spine_seed_lps(volume: Volume) -> FloatArray:
    """An LPS point inside the vertebral column (its middle along the body axis), or the
    volume's centre when no bone column is found."""
    step = [max(1, round(float(STEP_MM / s))) for s in volume.spacing_mm[::-1]]  # k, j, i
    sub = volume.array[:: step[0], :: step[1], :: step[2]]
    bone = (sub >= BONE_HU[0]) & (sub <= BONE_HU[1])
    if not bone.any():
        return volume.center_lps()
    # which array axis runs head–foot: the one whose direction has the largest |z|
    axis_kji = 2 - int(np.argmax(np.abs(volume.direction[2])))  # i, j, k → array axis
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
