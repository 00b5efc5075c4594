"""The real abdominal CT as axial slices 5 mm apart: outside the envelope the automatic
anatomy was measured on, it is shown but not acted on (`planning.anatomy.resolution`)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.accuracy import DATA, _as_volume
from bench.accuracy_storings import thick_slices
from planning.anatomy.from_ct import anatomy_from_ct
from planning.anatomy.model import LOW_NAME_CONFIDENCE
from planning.assessment.fracture import assess_fractures
from planning.autoplan import propose
from planning.check_result import Status
from planning.checks import CheckContext, check
from planning.io.nifti import load_nifti
from planning.plan import Side, Trajectory

CT = DATA / "ct-abdomen-3mm" / "ct.nii.gz"


@pytest.fixture(scope="module")
def thick():
    if not CT.exists():
        pytest.skip("shared data absent")
    volume = thick_slices(_as_volume(load_nifti(CT)), 5.0)
    return volume, anatomy_from_ct(volume)


def test_names_are_uncertain_and_the_warning_says_why(thick) -> None:
    _, anatomy = thick
    assert len(anatomy.levels) >= 5  # still found and shown
    assert all(g.confidence < LOW_NAME_CONFIDENCE for g in anatomy.levels.values())
    assert "3.0 × 3.0 × 5.0 mm" in anatomy.warnings[0]
    assert "uncertain" in anatomy.warnings[0]


def test_bodies_are_not_graded(thick) -> None:
    volume, anatomy = thick
    found = assess_fractures(volume, anatomy)
    assert found
    for a in found.values():
        assert a.genant_grade is None
        assert any("slices 5.0 mm apart along the spine" in n for n in a.notes), a.notes


def test_nothing_is_proposed_and_a_hand_placed_needle_is_cautioned(thick) -> None:
    volume, anatomy = thick
    ctx = CheckContext.build(volume, anatomy)
    proposal = propose(volume, anatomy, ctx, list(anatomy.levels))
    assert not proposal.plan.trajectories
    assert set(proposal.omitted) == set(anatomy.levels)
    assert all("thin-slice reconstruction" in why for why in proposal.omitted.values())
    # a needle by hand, far from the canal: the checks run and caution it for the voxels
    level, geo = next(iter(anatomy.levels.items()))
    tip = geo.centroid_lps + 8.0 * geo.anterior_lps
    entry = tip - 45.0 * geo.anterior_lps + np.array([35.0, 0.0, 0.0])
    result = check(Trajectory(level, Side.LEFT, entry, tip, "11G"), ctx)
    assert result.status is not Status.SAFE
    assert any("coarser than the 3 mm" in r for r in result.reasons), result.reasons
