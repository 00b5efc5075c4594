"""The real abdominal CT (../shared/data/ct-abdomen-3mm) loads with the right LPS geometry.

NIfTI stores RAS; if the conversion to LPS were wrong, the spine would land anterior to the
abdomen's centre or the levels would run the wrong way.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from planning.anatomy.from_labels import anatomy_from_label_map
from planning.anatomy.label_tables import TOTALSEGMENTATOR
from planning.io import load_path
from planning.io.nifti import load_nifti
from tests.planning.regrid import oblique_grid, regrid

DATA = Path(__file__).resolve().parents[4] / "shared" / "data" / "ct-abdomen-3mm"
LEVEL_CODES = {"L5": 27, "L4": 28, "L3": 29, "L2": 30, "L1": 31}

pytestmark = pytest.mark.skipif(not (DATA / "ct.nii.gz").exists(), reason="shared data absent")


@pytest.fixture(scope="module")
def ct_and_labels():
    ct = load_path(DATA / "ct.nii.gz")
    labels = load_nifti(DATA / "labels.nii.gz")
    return ct, labels


def _centroid_lps(vol, mask: np.ndarray) -> np.ndarray:
    k, j, i = np.nonzero(mask)
    return vol.to_lps(np.stack([i, j, k], axis=1).astype(float)).mean(axis=0)


def test_grid_and_geometry(ct_and_labels) -> None:
    ct, labels = ct_and_labels
    assert ct.size == (122, 101, 112)
    np.testing.assert_allclose(ct.spacing_mm, [3.0, 3.0, 3.0])
    np.testing.assert_allclose(labels.affine_lps, ct.affine_lps)
    lo, hi = ct.hu_range
    assert lo < -1000 and hi > 2000


def test_levels_run_from_inferior_to_superior(ct_and_labels) -> None:
    ct, labels = ct_and_labels
    z = [_centroid_lps(ct, labels.array == code)[2] for code in LEVEL_CODES.values()]
    assert all(b > a + 15 for a, b in itertools.pairwise(z)), z  # L5 < L4 < … < L1


def test_vertebrae_lie_posterior_to_the_abdomen_centre(ct_and_labels) -> None:
    ct, labels = ct_and_labels
    body = ct.array > -300
    body_centre = _centroid_lps(ct, body)
    k, j, i = np.nonzero(body)
    y = ct.to_lps(np.stack([i, j, k], axis=1).astype(float))[:, 1]
    y_front, y_back = np.percentile(y, 1), np.percentile(y, 99)
    for name, code in LEVEL_CODES.items():
        c = _centroid_lps(ct, labels.array == code)
        assert c[1] > body_centre[1] + 5, f"{name} is not posterior (LPS +y) of the abdomen"
        depth = (c[1] - y_front) / (y_back - y_front)
        assert depth > 0.55, f"{name} lies at {depth:.0%} of the body depth from the front"
        assert abs(c[0] - body_centre[0]) < 40, f"{name} is far from the midline"


def test_bone_inside_every_label(ct_and_labels) -> None:
    ct, labels = ct_and_labels
    for name, code in LEVEL_CODES.items():
        median = float(np.median(ct.array[labels.array == code]))
        assert median > 100, f"median HU in {name} is {median}"


def test_canal_from_the_labels_runs_through_every_level_on_a_tilted_grid(ct_and_labels
                                                                          ) -> None:
    """Re-gridded at 1.5 mm and tilted 15° about the antero-posterior axis (one slice of
    the grid cuts the left pedicle ~13 mm above the right), the canal that the labels
    enclose still runs from L5 to L1: it stopped at L4 before the ring was sought on
    slices across the patient's axis, and the checks then measured needles at L1–L3
    against no canal at all."""
    ct, labels = ct_and_labels
    affine, shape = oblique_grid(ct, 0.0, 0.0, 1.5, y_deg=15.0)
    tilted_ct = regrid(ct, affine, shape)
    tilted_labels = regrid(labels, affine, shape, labels=True)
    anatomy = anatomy_from_label_map(tilted_ct, tilted_labels, TOTALSEGMENTATOR)
    k, j, i = np.nonzero(anatomy.canal)
    z = anatomy.to_lps(np.stack([i, j, k], axis=1).astype(float))[:, 2]
    z_lo = anatomy.levels["L5"].centroid_lps[2]
    z_hi = anatomy.levels["L1"].centroid_lps[2]
    slabs = set(np.floor((z[(z >= z_lo) & (z <= z_hi)] - z_lo) / 3.0).astype(int).tolist())
    missing = sorted(set(range(int((z_hi - z_lo) // 3.0))) - slabs)
    assert not missing, f"no canal in the 3 mm slabs {missing} above L5's centre"
