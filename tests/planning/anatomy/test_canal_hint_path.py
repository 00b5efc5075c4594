"""A canal hint lays the canal's path, also where it does not reach (`derive_canal`).

A synthetic column on a 1 mm grid, slices along LPS z: a bony ring around the canal
(radius 7 mm) on every slice, and in front of it a porotic "body" whose interior is a
larger hole (a ring of radius 14 mm, 30 mm anterior). The hint (the automatic column's canal
core) covers only the upper half of the slices. Without it the canal would be the largest
hole, the body's; with it the canal must stay in the ring behind, on the lower half too,
where the hint does not reach, on an axial and a mirrored grid.
"""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy.canal_from_vertebrae import derive_canal

SIZE = (60, 90, 70)  # k (z), j (y, posterior +), i (x)
CANAL_CENTRE = (60.0, 35.0)  # (j, i) mm
BODY_CENTRE = (30.0, 35.0)


def _ring(j: np.ndarray, i: np.ndarray, centre: tuple[float, float], inner: float,
          outer: float) -> np.ndarray:
    r = np.hypot(j - centre[0], i - centre[1])
    return (r >= inner) & (r <= outer)


def _column() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    k, j, i = np.indices(SIZE).astype(float)
    bone = _ring(j, i, CANAL_CENTRE, 7.0, 10.0) | _ring(j, i, BODY_CENTRE, 14.0, 17.0)
    canal = np.hypot(j - CANAL_CENTRE[0], i - CANAL_CENTRE[1]) < 7.0
    body_hole = np.hypot(j - BODY_CENTRE[0], i - BODY_CENTRE[1]) < 14.0
    hint = (np.hypot(j - CANAL_CENTRE[0], i - CANAL_CENTRE[1]) <= 3.0) & (k < SIZE[0] // 2)
    return bone, canal, body_hole, hint


@pytest.mark.parametrize("mirrored", [False, True], ids=["axial", "mirrored"])
def test_the_hint_keeps_the_canal_out_of_a_larger_hole_in_front(mirrored: bool) -> None:
    bone, canal, body_hole, hint = _column()
    affine = np.eye(4)
    if mirrored:  # stored right to left and anterior to posterior
        bone, canal, body_hole, hint = (a[:, ::-1, ::-1] for a in (bone, canal, body_hole, hint))
        affine = np.diag([-1.0, -1.0, 1.0, 1.0])
        affine[:3, 3] = [SIZE[2] - 1, SIZE[1] - 1, 0.0]
    unhinted = derive_canal(bone, affine, across_patient=False)
    assert (unhinted.mask & body_hole).sum() > 0.5 * unhinted.mask.sum()  # the trap is real
    found = derive_canal(bone, affine, hint, across_patient=False).mask
    lower = np.zeros(SIZE, dtype=bool)
    lower[SIZE[0] // 2:] = True
    if mirrored:
        lower = lower[:, ::-1, ::-1]
    assert not (found & body_hole).any()
    assert (found & canal & lower).sum() >= 0.9 * (canal & lower).sum()
