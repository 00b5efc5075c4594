"""The discs between vertebrae, found the same on every re-storing of a real CT.

Why this test: on the real abdominal CT turned 5° about the antero-posterior axis, or
10–25° about left–right, the disc chain ran through the middle of every porotic body as
well as through the discs (or through the bodies instead of the discs): every level was
split or shifted by half a vertebra, and the names went with them. The body's middle was
taken from the bone mask, whose porotic interior is mostly below the bone threshold, so it
jumped between the posterior wall and the front from slice to slice; and nothing said that
a vertebra is about as high as its body is deep.

The truth is the labelled vertebrae carried onto each re-storing through LPS: a disc lies
halfway between the body centroids of two neighbouring labelled levels (within
`TOLERANCE_MM`: the labels' centroids include the posterior elements, which hang lower).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from planning.anatomy.from_labels import anatomy_from_label_map
from planning.anatomy.label_tables import TOTALSEGMENTATOR
from planning.anatomy.level_labels import body_profile, disc_slices
from planning.anatomy.spine_column import find_column, working_grid
from planning.io.nifti import load_nifti
from planning.volume import Volume
from tests.planning.regrid import regrid, rotation

ABDOMEN = Path(__file__).parents[2] / ".." / "shared" / "data" / "ct-abdomen-3mm"
TOLERANCE_MM = 8.0
EDGE_MM = 15.0  # a disc this near the end of the followed column, with the vertebra beyond
# it cut by the scan, may be out of reach (its far endplate is not in view)


def _turned(ct: Volume, rot: np.ndarray, spacing: float) -> Volume:
    """``ct`` on a grid of ``spacing`` turned by ``rot`` about its centre, covering it."""
    lo, hi = ct.bounds_lps()
    centre = (lo + hi) / 2.0
    corners = np.array([[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1])
                        for z in (lo[2], hi[2])])
    half = np.abs((corners - centre) @ rot).max(axis=0)
    n = np.ceil(2 * half / spacing).astype(int) + 1
    affine = np.eye(4)
    affine[:3, :3] = rot * spacing
    affine[:3, 3] = centre - affine[:3, :3] @ ((n - 1) / 2.0)
    return regrid(ct, affine, (int(n[2]), int(n[1]), int(n[0])))


@pytest.mark.skipif(not (ABDOMEN / "ct.nii.gz").exists(), reason="shared test data absent")
@pytest.mark.parametrize(("z_deg", "x_deg", "y_deg"), [(0, 0, 5), (0, 15, 0), (0, 25, 0)])
def test_one_disc_between_each_two_labelled_vertebrae(z_deg: float, x_deg: float,
                                                       y_deg: float) -> None:
    ct = load_nifti(ABDOMEN / "ct.nii.gz")
    ct = _turned(ct, rotation(z_deg, x_deg, y_deg), 3.0)
    truth = anatomy_from_label_map(ct, load_nifti(ABDOMEN / "labels.nii.gz"),
                                   TOTALSEGMENTATOR)
    centroids = sorted(g.centroid_lps[2] for g in truth.levels.values())

    grid = working_grid(ct)
    column = find_column(grid)
    ks, profile = body_profile(column)
    found = [float(grid.to_lps([0.0, 0.0, float(k)])[2])
             for k in disc_slices(ks, profile, grid.spacing_mm, column.body_depth_mm[ks])]
    lo, hi = (float(grid.to_lps([0.0, 0.0, float(k)])[2]) for k in (ks[0], ks[-1]))
    truth_discs = [(a + b) / 2 for a, b in itertools.pairwise(centroids)
                   if lo + EDGE_MM < (a + b) / 2 < hi - EDGE_MM]
    inside = [f for f in found if centroids[0] + EDGE_MM < f < centroids[-1] - EDGE_MM]

    missed = [z for z in truth_discs if min(abs(np.subtract(found, z))) > TOLERANCE_MM]
    extra = [f for f in inside if min(abs(np.subtract(truth_discs, f))) > TOLERANCE_MM]
    assert len(truth_discs) >= 4
    assert not missed, f"discs missed at z {missed} (found {found})"
    assert not extra, f"discs inside bodies at z {extra} (truth {truth_discs})"
