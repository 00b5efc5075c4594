"""The automatic canal's wall moved out to the CT's bone edge (`canal_wall`).

A synthetic canal along the patient's z axis, as the automatic labels leave it: CSF inside
8.5 mm of the axis; a partial-volume fringe (8.5–10 mm, 100 HU) that the filling rules
labelled as vertebra; a cortex (10–11.5 mm, 600 HU) with one weak sector (150 HU, below the
bone threshold); cancellous bone behind it (11.5–16 mm, 110 HU, labelled, porotic). The
anterior half is the vertebral body. The canal found is the hole the labels leave
(r < 8.5 mm). The fringe behind the body must become canal, the weak cortex may, and the
cancellous bone behind the cortex's crest must stay vertebra even behind the weak sector;
the body keeps its fringe. Shown on an axial, a mirrored and a fine grid, the anatomy on a
crop of each.
"""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy import Anatomy
from planning.anatomy.canal_wall import WIDEN_MM, widen_canal_to_bone
from planning.anatomy.model import crop_affine
from planning.volume import Volume
from tests.planning.regrid import rotation

CSF_HU, FRINGE_HU, CORTEX_HU, WEAK_HU, CANCELLOUS_HU, SOFT_HU = 10, 100, 600, 150, 110, 40
CANAL_MM, FRINGE_MM, CORTEX_MM, BONE_MM = 8.5, 10.0, 11.5, 16.0
WEAK = (0.85, 1.55)  # the weak sector of the cortex, radians from the patient's left towards
# posterior (LPS +x towards +y): beside the canal, behind the body
SIZE_MM = 40.0
CODE = 20


def _ct_and_fields(spacing_mm: float, axes: np.ndarray
                   ) -> tuple[Volume, np.ndarray, np.ndarray]:
    """The CT, and each voxel's distance from the canal's axis and angle about it."""
    n = round(SIZE_MM / spacing_mm) + 1
    affine = np.eye(4)
    affine[:3, :3] = axes * spacing_mm
    affine[:3, 3] = -affine[:3, :3] @ np.full(3, (n - 1) / 2.0)
    k, j, i = np.indices((n, n, n))
    lps = np.stack([i, j, k], axis=-1) @ affine[:3, :3].T + affine[:3, 3]
    r, angle = np.hypot(lps[..., 0], lps[..., 1]), np.arctan2(lps[..., 1], lps[..., 0])
    weak = (angle > WEAK[0]) & (angle < WEAK[1])
    hu = np.select([r < CANAL_MM, r < FRINGE_MM, (r < CORTEX_MM) & weak, r < CORTEX_MM,
                    r < BONE_MM], [CSF_HU, FRINGE_HU, WEAK_HU, CORTEX_HU, CANCELLOUS_HU],
                   SOFT_HU)
    return Volume(hu.astype(np.int16), affine), r, angle


def _anatomy_on_crop(ct: Volume, r: np.ndarray, angle: np.ndarray, margin: int
                     ) -> tuple[Anatomy, tuple]:
    """The automatic anatomy as the labels leave it, on a crop of the CT's grid; the body
    is the anterior half (LPS y < 0)."""
    box = tuple(slice(margin, s - margin) for s in ct.array.shape)
    rr = r[box]
    labels = np.where((rr >= CANAL_MM) & (rr < BONE_MM), CODE, 0).astype(np.int16)
    anatomy = Anatomy(affine_lps=crop_affine(ct.affine_lps, box), labels=labels,
                      canal=rr < CANAL_MM, bodies=(labels > 0) & (np.sin(angle[box]) < 0),
                      levels={})
    return anatomy, box


@pytest.mark.parametrize(("spacing", "axes"), [
    (1.0, np.eye(3)), (1.0, np.diag([-1.0, -1.0, 1.0])), (0.6, np.eye(3)),
], ids=["axial", "mirrored", "fine"])
def test_the_fringe_becomes_canal_and_the_bone_behind_the_crest_does_not(
        spacing: float, axes: np.ndarray) -> None:
    ct, r_ct, angle_ct = _ct_and_fields(spacing, axes)
    anatomy, box = _anatomy_on_crop(ct, r_ct, angle_ct, margin=2)
    r, hu, y = r_ct[box], ct.array[box], r_ct[box] * np.sin(angle_ct[box])
    body = anatomy.bodies.copy()
    middle = np.abs(np.indices(r.shape)[0] - r.shape[0] // 2) * spacing < 10.0
    moved = widen_canal_to_bone(anatomy, ct)

    fringe = middle & (r >= CANAL_MM + 0.3) & (r <= FRINGE_MM - 0.3)
    beside = fringe & (y > spacing)
    assert moved > 0 and anatomy.canal[beside].all()
    assert not (anatomy.labels[beside] > 0).any()
    assert np.array_equal(anatomy.bodies, body)  # the body keeps its wall …
    assert not anatomy.canal[fringe & (y < -spacing)].any()
    crest = middle & (r >= FRINGE_MM + 0.3) & (r <= CORTEX_MM - 0.3)
    weak = hu == WEAK_HU
    assert not anatomy.canal[crest & ~weak].any()  # the cortex is bone
    behind = middle & (r >= CORTEX_MM + 0.3)
    assert not anatomy.canal[behind].any()  # porotic bone behind the crest stays bone …
    assert (anatomy.labels[behind & (r < BONE_MM - 0.3)] == CODE).all()
    assert anatomy.canal[crest & weak].any()  # … even where the cortex is weak
    assert not anatomy.canal[r > CANAL_MM + WIDEN_MM + spacing].any()


def test_an_anatomy_on_another_grid_is_left_as_it_is() -> None:
    ct, r_ct, angle_ct = _ct_and_fields(1.0, np.eye(3))
    anatomy, _ = _anatomy_on_crop(ct, r_ct, angle_ct, margin=2)
    tilted = Volume(ct.array, ct.affine_lps @ np.block(
        [[rotation(0.0, 15.0), np.zeros((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]]))
    canal = anatomy.canal.copy()
    assert widen_canal_to_bone(anatomy, tilted) == 0
    assert np.array_equal(anatomy.canal, canal)
