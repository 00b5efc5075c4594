"""The soft border of an automatic canal: soft tissue beside it, stopped by bone, on any grid.

A synthetic spinal canal along the patient's z axis: CSF inside 8.5 mm of the axis, a bony
ring from 8.5 to 10 mm, soft tissue outside. The canal "found" stops 1 mm short of the
ring (as an automatic canal leaves a lateral recess out); its soft border must take that
rim, and must not take the soft tissue beyond the ring even when it reaches that far.
Shown on an axial grid, a flipped one, a fine one (pooled) and an oblique anatomy grid
(resampled).
"""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy import Anatomy
from planning.anatomy.canal_border import BORDER_MM, POOL_MM, canal_with_soft_border
from planning.volume import Volume
from tests.planning.grids import cube_grid, voxel_lps
from tests.planning.regrid import rotation

TRUE_RADIUS_MM, RING_MM, FOUND_RADIUS_MM = 8.5, 10.0, 7.5
REACH_MM = 4.0  # a border reaching past the ring: only the bone can stop it
CSF_HU, BONE_HU_HERE, SOFT_HU = 10, 600, 40
SIZE_MM = 30.0


def _radius(affine: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """Distance (mm) of each voxel centre ``[k, j, i]`` from the canal's axis (LPS z)."""
    lps = voxel_lps(affine, shape)
    return np.asarray(np.hypot(lps[..., 0], lps[..., 1]))


def _ct(spacing_mm: float, axes: np.ndarray) -> Volume:
    affine, shape = cube_grid(spacing_mm, axes, SIZE_MM)
    r = _radius(affine, shape)
    hu = np.where(r < TRUE_RADIUS_MM, CSF_HU, np.where(r < RING_MM, BONE_HU_HERE, SOFT_HU))
    return Volume(hu.astype(np.int16), affine)


def _anatomy(affine: np.ndarray, shape: tuple[int, int, int]) -> Anatomy:
    canal = _radius(affine, shape) < FOUND_RADIUS_MM
    empty = np.zeros(shape, dtype=bool)
    return Anatomy(affine_lps=affine, labels=np.zeros(shape, dtype=np.int16), canal=canal,
                   bodies=empty, levels={})


IDENTITY = np.eye(3)
FLIPPED = np.diag([-1.0, -1.0, 1.0])
OBLIQUE = rotation(20.0, 12.0)


@pytest.mark.parametrize(("ct_spacing", "ct_axes", "anatomy_axes", "anatomy_spacing"), [
    (1.0, IDENTITY, None, None),  # the anatomy on the CT's own grid
    (1.0, FLIPPED, None, None),
    (0.5, IDENTITY, None, None),  # fine voxels, pooled to POOL_MM
    (0.5, IDENTITY, OBLIQUE, 0.8),  # the anatomy on another, rotated grid
], ids=["identity", "flipped", "fine", "oblique"])
def test_the_soft_rim_is_taken_and_the_tissue_beyond_the_bone_is_not(
        ct_spacing: float, ct_axes: np.ndarray, anatomy_axes: np.ndarray | None,
        anatomy_spacing: float | None) -> None:
    ct = _ct(ct_spacing, ct_axes)
    if anatomy_axes is None:
        affine, shape = ct.affine_lps, ct.array.shape
    else:
        affine, shape = cube_grid(anatomy_spacing or ct_spacing, anatomy_axes, SIZE_MM - 6.0)
    anatomy = _anatomy(affine, shape)
    mask, mask_affine = canal_with_soft_border(ct, anatomy)
    assert np.linalg.norm(mask_affine[:3, :3], axis=0).min() >= min(
        POOL_MM, float(np.linalg.norm(affine[:3, :3], axis=0).min())) - 1e-9
    r, middle = _radius_and_middle(mask_affine, mask.shape)
    rim = middle & (r <= TRUE_RADIUS_MM - 0.6)
    assert rim.any() and mask[rim].all()  # the canal and the 1 mm rim of CSF around it
    assert not mask[middle & (r > FOUND_RADIUS_MM + BORDER_MM + 1.0)].any()
    # a border long enough to pass the ring takes none of the tissue behind it
    far, far_affine = canal_with_soft_border(ct, anatomy, border_mm=REACH_MM)
    r, middle = _radius_and_middle(far_affine, far.shape)
    beyond = middle & (r >= RING_MM + 0.3) & (r <= FOUND_RADIUS_MM + REACH_MM - 1.0)
    assert beyond.any() and not far[beyond].any()
    assert not far[middle & (np.abs(r - (TRUE_RADIUS_MM + RING_MM) / 2) < 0.3)].any()
    assert far[middle & (r <= TRUE_RADIUS_MM - 0.6)].all()


def _radius_and_middle(affine: np.ndarray, shape: tuple[int, ...]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Each voxel's distance from the axis, and whether it lies away from the cylinder's
    cut ends (|z| < 6 mm)."""
    lps = voxel_lps(affine, shape)
    return np.hypot(lps[..., 0], lps[..., 1]), np.abs(lps[..., 2]) < 6.0


def test_an_empty_canal_gives_an_empty_border() -> None:
    ct = _ct(1.0, IDENTITY)
    shape = ct.array.shape
    anatomy = Anatomy(affine_lps=ct.affine_lps, labels=np.zeros(shape, dtype=np.int16),
                      canal=np.zeros(shape, dtype=bool), bodies=np.zeros(shape, dtype=bool),
                      levels={})
    mask, _ = canal_with_soft_border(ct, anatomy)
    assert not mask.any()
