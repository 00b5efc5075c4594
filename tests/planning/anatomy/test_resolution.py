"""Voxels coarser than the automatic anatomy was measured on (`planning.anatomy.resolution`):
shown, not acted on — names uncertain, bodies not graded, no automatic proposal, checks
cautious."""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy.resolution import (
    along_spine_mm,
    coarse_along_spine,
    coarse_voxels,
    voxel_text,
)


def test_three_millimetre_voxels_are_within_the_envelope() -> None:
    assert coarse_voxels([3.0, 3.0, 3.0]) is None
    assert coarse_voxels([0.7, 0.7, 3.0000002]) is None  # a 3 mm grid stored loosely
    assert coarse_voxels([3.0, 1.0, 1.0]) is None  # VerSe 012, 3 mm across the patient


def test_coarser_voxels_say_so_in_words() -> None:
    why = coarse_voxels([0.8, 0.8, 5.0])
    assert why is not None and "0.8 × 0.8 × 5.0 mm" in why and "3 mm" in why
    assert coarse_voxels([4.25, 1.0, 1.0]) is not None  # any edge: a sagittal thick series
    assert voxel_text([1, 2.25, 5]) == "1.0 × 2.2 × 5.0 mm"


def test_the_step_along_the_spine_follows_the_orientation() -> None:
    axial = np.diag([0.8, 0.8, 5.0, 1.0])
    assert along_spine_mm(axial) == pytest.approx(5.0)
    assert coarse_along_spine(axial) is not None
    # the same voxels stored sagittally: slices across the patient, 0.8 mm along the spine
    sagittal = np.zeros((4, 4))
    sagittal[0, 2], sagittal[1, 0], sagittal[2, 1], sagittal[3, 3] = 5.0, 0.8, 0.8, 1.0
    assert along_spine_mm(sagittal) == pytest.approx(0.8)
    assert coarse_along_spine(sagittal) is None
    # turned 30° about x: one index step rises 0.8·sin 30° or 5·cos 30°
    c, s = np.cos(np.radians(30)), np.sin(np.radians(30))
    turned = np.eye(4)
    turned[:3, :3] = np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) @ np.diag([0.8, 0.8, 5.0])
    assert along_spine_mm(turned) == pytest.approx(5.0 * c)
