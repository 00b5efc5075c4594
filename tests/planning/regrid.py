"""Test helper: the same patient on another grid (rotated, resampled, cropped, mirrored).

Variants of a CT are how the tests show that nothing depends on the grid: each function
returns a new `Volume` whose voxels are interpolated from the old one through LPS, so the
anatomy stays where it was in the patient (except `mirror_patient`, which moves it on
purpose).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from planning.anatomy.model import Anatomy, crop_affine
from planning.volume import Volume


def rotation(z_deg: float, x_deg: float, y_deg: float = 0.0) -> np.ndarray:
    """3×3: a rotation about the patient's z axis, then about x, then about y."""
    rz, rx, ry = np.radians(z_deg), np.radians(x_deg), np.radians(y_deg)
    return (np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
            @ np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
            @ np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]]))


def regrid(volume: Volume, affine_lps: np.ndarray, shape_kji: tuple[int, int, int], *,
           labels: bool = False) -> Volume:
    """``volume`` sampled on the grid ``affine_lps`` / ``shape_kji``: linear for HU (air
    outside), nearest for label maps (0 outside)."""
    new_to_old = np.linalg.inv(volume.affine_lps) @ affine_lps
    reverse = np.eye(3)[::-1]
    matrix = reverse @ new_to_old[:3, :3] @ reverse
    offset = reverse @ new_to_old[:3, 3]
    out = ndimage.affine_transform(
        volume.array.astype(np.float32), matrix, offset, output_shape=shape_kji,
        order=0 if labels else 1, mode="constant", cval=0.0 if labels else -1000.0,
        prefilter=False)
    return Volume(np.rint(out).astype(np.int16), affine_lps, source=volume.source,
                  study_uid=volume.study_uid, series_uid=volume.series_uid,
                  frame_of_reference_uid=volume.frame_of_reference_uid)


def oblique_grid(volume: Volume, z_deg: float, x_deg: float, spacing_mm: float,
                 y_deg: float = 0.0) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A grid rotated by (z_deg, x_deg, y_deg) that covers the whole of ``volume``."""
    lo, hi = volume.bounds_lps()
    centre = (lo + hi) / 2.0
    r = rotation(z_deg, x_deg, y_deg)
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    local = (corners - centre) @ r  # coordinates along the new axes
    half = np.abs(local).max(axis=0)
    n = np.ceil(2 * half / spacing_mm).astype(int) + 1
    affine = np.eye(4)
    affine[:3, :3] = r * spacing_mm
    affine[:3, 3] = centre - affine[:3, :3] @ ((n - 1) / 2.0)
    return affine, (int(n[2]), int(n[1]), int(n[0]))


def crop(volume: Volume, box: tuple[slice, slice, slice]) -> Volume:
    """The voxels of ``box`` (``[k, j, i]`` slices), in the same place."""
    return Volume(np.ascontiguousarray(volume.array[box]), crop_affine(volume.affine_lps, box),
                  source=volume.source, study_uid=volume.study_uid,
                  series_uid=volume.series_uid,
                  frame_of_reference_uid=volume.frame_of_reference_uid)


def mirror_patient(volume: Volume) -> Volume:
    """The patient mirrored left ↔ right: the columns reversed under the same affine, so
    the anatomy itself moves (what was on the patient's left is now on the right). Meant
    for grids whose columns run along the patient's x axis."""
    assert abs(volume.affine_lps[0, 0]) > 0.99 * np.linalg.norm(volume.affine_lps[:3, 0])
    return Volume(np.ascontiguousarray(volume.array[:, :, ::-1]), volume.affine_lps,
                  source=volume.source, study_uid=volume.study_uid,
                  series_uid=volume.series_uid,
                  frame_of_reference_uid=volume.frame_of_reference_uid)


def _flipped_swapped_to_old(shape_kji: tuple[int, ...]) -> np.ndarray:
    """4×4 new index → old index of the grid flipped along k and i, rows and columns swapped."""
    nk, _, ni = shape_kji
    return np.array([[0, -1, 0, ni - 1], [1, 0, 0, 0], [0, 0, -1, nk - 1], [0, 0, 0, 1.0]])


def _flipped_swapped(a: np.ndarray) -> np.ndarray:
    """An array [k, j, i] on that grid (see `_flipped_swapped_to_old`)."""
    return np.ascontiguousarray(np.flip(a, axis=(0, 2)).swapaxes(1, 2))


def regridded(anatomy: Anatomy) -> Anatomy:
    """The same anatomy on a grid flipped in two axes with rows and columns swapped."""
    move = _flipped_swapped
    return Anatomy(
        affine_lps=anatomy.affine_lps @ _flipped_swapped_to_old(anatomy.labels.shape),
        labels=move(anatomy.labels),
        canal=move(anatomy.canal),
        bodies=move(anatomy.bodies),
        levels=anatomy.levels,
        discs=None if anatomy.discs is None else move(anatomy.discs),
    )


def regridded_volume(volume: Volume) -> Volume:
    """The same CT on the grid of `regridded` (flipped in two axes, rows and columns
    swapped), with its UIDs."""
    return Volume(_flipped_swapped(volume.array),
                  volume.affine_lps @ _flipped_swapped_to_old(volume.array.shape),
                  study_uid=volume.study_uid, series_uid=volume.series_uid,
                  frame_of_reference_uid=volume.frame_of_reference_uid)
