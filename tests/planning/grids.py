"""Test helper: the grids a geometric test runs on (identity, flipped, oblique), and a CT
with one ball in it, for the functions that must show the patient the same way whatever
the series' stored orientation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from planning.volume import Volume


def _oblique_affine() -> np.ndarray:
    th = np.radians(30)
    rot = np.array([[1, 0, 0], [0, np.cos(th), -np.sin(th)], [0, np.sin(th), np.cos(th)]])
    a = np.eye(4)
    a[:3, :3] = rot @ np.diag([0.8, 0.9, 2.5])
    a[:3, 3] = [12.0, -40.0, 150.0]
    return a


AFFINES = {
    "identity": np.eye(4),
    "flipped": np.array([[-0.7, 0, 0, 100], [0, -0.7, 0, 80], [0, 0, -3, 50], [0, 0, 0, 1.0]]),
    "oblique": _oblique_affine(),
}
"""Index → LPS affines of three grids: the identity, one flipped on x and y with thick
slices stored top-down, and one turned 30° about x with anisotropic voxels."""


def centred_affine(direction: np.ndarray, spacing_ijk: Sequence[float] | np.ndarray,
                   shape_kji: tuple[int, int, int], centre_lps: Sequence[float] | np.ndarray
                   ) -> np.ndarray:
    """Index → LPS affine whose grid's centre lands on ``centre_lps`` for any ``direction``
    (3×3, columns along i, j, k), voxels ``spacing_ijk`` mm apart along i, j, k."""
    a = np.eye(4)
    a[:3, :3] = direction * np.asarray(spacing_ijk)
    a[:3, 3] = np.asarray(centre_lps) - a[:3, :3] @ ((np.array(shape_kji[::-1]) - 1) / 2)
    return a


BOX_SHAPE_KJI = (40, 50, 60)
BOX_SPACING = np.array([1.0, 1.2, 1.5])  # along i, j, k
BOX_CENTRE_LPS = np.array([10.0, -20.0, 30.0])
"""A small anisotropic CT grid (the DRR and MPR tests'), stored in any direction by
`box_affine` with its centre always at the same LPS point."""


def box_affine(direction: np.ndarray) -> np.ndarray:
    """The index → LPS affine of the box grid stored along ``direction`` (3×3)."""
    return centred_affine(direction, BOX_SPACING, BOX_SHAPE_KJI, BOX_CENTRE_LPS)


def ball_volume(affine: np.ndarray, shape_kji: tuple[int, int, int], ball_lps: np.ndarray,
                radius_mm: float, *, ball_hu: int, background_hu: int) -> Volume:
    """A CT of ``background_hu`` with a ball of ``ball_hu`` of ``radius_mm`` around
    ``ball_lps``: voxels whose centre is within the radius, in LPS, whatever the grid."""
    array = np.full(shape_kji, background_hu, dtype=np.int16)
    vol = Volume(array, affine)
    k, j, i = np.indices(shape_kji)
    lps = vol.to_lps(np.stack([i, j, k], axis=-1).reshape(-1, 3)).reshape(*shape_kji, 3)
    array[np.linalg.norm(lps - ball_lps, axis=-1) <= radius_mm] = ball_hu
    return vol


def cube_grid(spacing_mm: float, axes: np.ndarray, size_mm: float
              ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A cube ``size_mm`` wide centred on the LPS origin: its index→LPS affine (columns
    ``axes``, unit vectors, × ``spacing_mm``) and its shape."""
    n = round(size_mm / spacing_mm) + 1
    affine = np.eye(4)
    affine[:3, :3] = axes * spacing_mm
    affine[:3, 3] = -affine[:3, :3] @ np.full(3, (n - 1) / 2.0)
    return affine, (n, n, n)


def voxel_lps(affine: np.ndarray, shape_kji: tuple[int, ...]) -> np.ndarray:
    """LPS (mm) of every voxel centre of a grid, shape (nk, nj, ni, 3)."""
    k, j, i = np.indices(shape_kji)
    return np.stack([i, j, k], axis=-1) @ affine[:3, :3].T + affine[:3, 3]
