"""The CT's HU on an anatomy's grid (`planning.anatomy.ct_sampling`): a crop is a slice, any
other grid the nearest CT voxel, the same whichever of the two functions asks; beyond the
CT the caller's value."""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy.ct_sampling import OUTSIDE_HU, hu_at_voxels, hu_on_grid
from planning.volume import Volume


def _ct(rng: np.random.Generator) -> Volume:
    affine = np.diag([0.8, 0.9, 2.0, 1.0])
    affine[:3, 3] = (-30.0, 12.0, 80.0)
    return Volume(rng.integers(-1000, 1500, (20, 30, 40)).astype(np.int16), affine)


def test_a_crop_of_the_ct_grid_is_its_slice(rng) -> None:
    ct = _ct(rng)
    crop = ct.affine_lps.copy()
    crop[:3, 3] = ct.to_lps((5, 4, 3))  # the crop starts at CT voxel (i, j, k) = (5, 4, 3)
    box = (slice(2, 9), slice(1, 11), slice(6, 20))
    got = hu_on_grid(ct, crop, box, (7, 10, 14))
    assert np.array_equal(got, ct.array[5:12, 5:15, 11:25].astype(np.float32))


@pytest.mark.parametrize("angle_deg", [0.0, 17.0, 90.0])
def test_any_grid_gives_the_nearest_voxel_both_ways(rng, angle_deg: float) -> None:
    ct = _ct(rng)
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    grid = np.eye(4)
    grid[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ np.diag(
        [1.1, 1.1, 1.5])
    grid[:3, 3] = ct.to_lps((10.3, 8.2, 4.4))
    box = (slice(0, 6), slice(0, 8), slice(0, 9))
    on_grid = hu_on_grid(ct, grid, box, (6, 8, 9))
    kji = np.argwhere(np.ones((6, 8, 9), bool))
    at_voxels = hu_at_voxels(ct, grid, kji)
    assert np.array_equal(on_grid.ravel(), at_voxels.astype(np.float32))
    # and that is the CT voxel nearest each grid voxel's centre
    for k, j, i in ((0, 0, 0), (5, 7, 8), (3, 2, 6)):
        lps = grid[:3, :3] @ (i, j, k) + grid[:3, 3]
        ci, cj, ck = (int(v) for v in np.rint(ct.to_index(lps)))
        if 0 <= ck < 20 and 0 <= cj < 30 and 0 <= ci < 40:
            assert on_grid[k, j, i] == ct.array[ck, cj, ci]


def test_beyond_the_ct_is_the_callers_value(rng) -> None:
    ct = _ct(rng)
    grid = ct.affine_lps.copy()
    grid[:3, 3] = ct.to_lps((35, 25, 15))  # reaches past every edge
    box = (slice(0, 8), slice(0, 8), slice(0, 8))
    assert np.isinf(hu_on_grid(ct, grid, box, (8, 8, 8))[7, 7, 7])
    assert hu_on_grid(ct, grid, box, (8, 8, 8), outside_hu=-1000.0)[7, 7, 7] == -1000.0
    kji = np.array([[0, 0, 0], [7, 7, 7]])
    assert list(hu_at_voxels(ct, grid, kji, outside_hu=-1000.0)) == [
        float(ct.array[15, 25, 35]), -1000.0]
    assert np.isinf(OUTSIDE_HU)
