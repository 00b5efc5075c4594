"""Test helper: copies of the demo CT edited to show one finding (a gas pocket, a wall
pushed into the canal, a notch in an endplate), for the fracture and the leakage tests.

Edits are made on the anatomy's grid, in the level's local frame (l, a, s mm: the level's
own left, anterior and superior axes), and painted into the CT at the same LPS points.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from planning.anatomy import Anatomy
from planning.assessment.fracture import FractureAssessment
from planning.demo import DemoTruth
from planning.volume import Volume

Demo = tuple[Volume, DemoTruth, Anatomy]
Box = tuple[slice, slice, slice]


def local_voxels(anatomy: Anatomy, level: str, pad: int = 12) -> tuple[Box, np.ndarray]:
    """A box of the anatomy grid around a level and its voxels' local (l, a, s) mm."""
    k, j, i = np.nonzero(anatomy.vertebra_mask(level))
    box = tuple(slice(max(0, int(x.min()) - pad), min(n, int(x.max()) + pad + 1))
                for x, n in zip((k, j, i), anatomy.labels.shape, strict=True))
    kk, jj, ii = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")
    ijk = np.stack([ii, jj, kk], -1).reshape(-1, 3).astype(float)
    local = anatomy.levels[level].to_local(anatomy.to_lps(ijk)).reshape(*kk.shape, 3)
    return (box[0], box[1], box[2]), local


def paint_ct(volume: Volume, anatomy: Anatomy, box: Box, where: np.ndarray, hu: float) -> None:
    """Set CT voxels at the anatomy-grid voxels ``where`` (within ``box``) to ``hu``."""
    k, j, i = np.nonzero(where)
    ijk = np.stack([i + box[2].start, j + box[1].start, k + box[0].start], 1).astype(float)
    c = np.rint(volume.to_index(anatomy.to_lps(ijk))).astype(int)
    volume.array[c[:, 2], c[:, 1], c[:, 0]] = hu


def demo_copy(demo: Demo) -> tuple[Volume, Anatomy]:
    """The demo's CT and anatomy with their own arrays (the shared demo is read-only)."""
    volume, _, anatomy = demo
    return (Volume(volume.array.copy(), volume.affine_lps.copy()),
            dataclasses.replace(anatomy, labels=anatomy.labels.copy(),
                                bodies=anatomy.bodies.copy(), canal=anatomy.canal.copy()))


def editable_copy(demo: Demo, level: str, pad: int = 12
                  ) -> tuple[Volume, Anatomy, Box, np.ndarray]:
    """A copy of the demo to edit at ``level``: its CT and anatomy (`demo_copy`), the box of
    the anatomy grid around the level and its voxels' local (l, a, s) mm (`local_voxels`)."""
    volume, anatomy = demo_copy(demo)
    box, local = local_voxels(anatomy, level, pad)
    return volume, anatomy, box, local


def gas_pocket(demo: Demo, level: str = "L2",
               hu: float = -900.0, radius_mm: float = 4.0) -> tuple[Volume, Anatomy]:
    """A copy of the demo with a sphere of ``hu`` at the level's body centre."""
    volume, anatomy, box, local = editable_copy(demo, level)
    sphere = (np.linalg.norm(local, axis=-1) <= radius_mm) & anatomy.bodies[box]
    paint_ct(volume, anatomy, box, sphere, hu)
    return volume, anatomy


def retropulsed(demo: Demo, a: FractureAssessment,
                shift_mm: float = 5.0) -> tuple[Volume, Anatomy]:
    """A copy with a bone fragment of the posterior wall pushed ``shift_mm`` into the canal."""
    level = a.level
    volume, anatomy, box, local = editable_copy(demo, level)
    half_h = 0.5 * a.heights.posterior_mm
    s_mid = float(anatomy.levels[level].to_local(a.foramen_lps)[2])
    frag = ((np.abs(local[..., 0]) < 7.0) & (np.abs(local[..., 2] - s_mid) < 0.45 * half_h)
            & (local[..., 1] < a.posterior_wall_mm + 1.0)
            & (local[..., 1] >= a.posterior_wall_mm - shift_mm))
    code = anatomy.levels[level].code
    anatomy.bodies[box] |= frag
    anatomy.labels[box][frag] = code
    anatomy.canal[box] &= ~frag
    paint_ct(volume, anatomy, box, frag, 1200.0)
    return volume, anatomy


def notched(demo: Demo, a: FractureAssessment,
            depth_mm: float = 5.0) -> tuple[Volume, Anatomy]:
    """A copy with a 6 × 6 mm notch, ``depth_mm`` deep, in the superior endplate."""
    level = a.level
    volume, anatomy, box, local = editable_copy(demo, level)
    mid = 0.5 * (a.posterior_wall_mm + a.anterior_wall_mm)
    top = float(anatomy.levels[level].to_local(a.body_centre_lps)[2]) + 0.5 * a.heights.middle_mm
    notch = ((np.abs(local[..., 0] - 6.0) < 3.0) & (np.abs(local[..., 1] - mid) < 3.0)
             & (local[..., 2] > top - depth_mm) & anatomy.bodies[box])
    anatomy.bodies[box] &= ~notch
    anatomy.labels[box][notch] = 0
    paint_ct(volume, anatomy, box, notch, 90.0)  # disc material pressed into the body
    return volume, anatomy
