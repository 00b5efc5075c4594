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

from bench.accuracy import rotated
from planning.anatomy.from_labels import anatomy_from_label_map
from planning.anatomy.label_tables import TOTALSEGMENTATOR
from planning.anatomy.level_labels import body_profile, disc_slices
from planning.anatomy.spine_column import find_column, working_grid
from planning.io.nifti import load_nifti

ABDOMEN = Path(__file__).parents[2] / ".." / "shared" / "data" / "ct-abdomen-3mm"
TOLERANCE_MM = 8.0
EDGE_MM = 15.0  # a disc this near the end of the followed column, with the vertebra beyond
# it cut by the scan, may be out of reach (its far endplate is not in view)


@pytest.mark.skipif(not (ABDOMEN / "ct.nii.gz").exists(), reason="shared test data absent")
@pytest.mark.parametrize(("axis", "deg"), [(1, -5.0), (0, 15.0), (0, 25.0)])
def test_one_disc_between_each_two_labelled_vertebrae(axis: int, deg: float) -> None:
    """The grid turned ``deg`` about LPS ``axis`` (the harness's re-storing), 3 mm."""
    ct = rotated(load_nifti(ABDOMEN / "ct.nii.gz"), axis, deg, 3.0)
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
