"""The real abdominal CT and its variants, from the CT alone, against its labels.

For each variant (as scanned, the patient mirrored, an oblique grid, resampled to 1 mm,
cropped to three levels) the same transform is applied to the CT and to its TotalSegmentator
label and body maps; the reference anatomy comes from those maps, the tested one from the CT
alone. Asserted (the issue's figures): T12–L5 and S1 found and named right, each body
centroid within 10 mm of the reference; proposals made on the automatic anatomy never
enter the canal the labels give, lateral recesses included (`planning.anatomy.canal_border`),
and each tip lies inside its labelled vertebra. The cropped variant has no sacrum nor rib,
so its names are only checked to be marked uncertain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from planning.anatomy import Anatomy, anatomy_from_label_map
from planning.anatomy.from_ct import anatomy_from_ct
from planning.anatomy.label_tables import load_label_table
from planning.autoplan import propose
from planning.checks import CheckContext, check
from planning.io import load_path
from planning.volume import Volume
from tests.planning.regrid import crop, mirror_patient, oblique_grid, regrid

ABDOMEN = Path(__file__).parents[3] / ".." / "shared" / "data" / "ct-abdomen-3mm"
LEVELS = ["T12", "L1", "L2", "L3", "L4", "L5", "S1"]
MAX_ERROR_MM = 10.0
# needle surface to the labelled canal: measured 1.9–2.3 mm at the closest on each variant;
# every path of the search that keeps the planner's margins stays 1.3 mm clear of it
MIN_CLEARANCE_MM = 1.0

pytestmark = pytest.mark.skipif(not (ABDOMEN / "ct.nii.gz").exists(),
                                reason="shared test data absent")

Maps = tuple[Volume, Volume, Volume]  # CT, vertebra labels, body map


@pytest.fixture(scope="module")
def scanned() -> Maps:
    return (load_path(ABDOMEN / "ct.nii.gz"), load_path(ABDOMEN / "labels.nii.gz"),
            load_path(ABDOMEN / "bodies.nii.gz"))


def _mirrored(maps: Maps) -> Maps:
    ct, labels, bodies = maps
    return mirror_patient(ct), mirror_patient(labels), mirror_patient(bodies)


def _oblique(maps: Maps) -> Maps:
    ct, labels, bodies = maps
    affine, shape = oblique_grid(ct, 20.0, 12.0, 2.0)
    return (regrid(ct, affine, shape), regrid(labels, affine, shape, labels=True),
            regrid(bodies, affine, shape, labels=True))


def _one_mm(maps: Maps) -> Maps:
    """1 mm voxels, on the columns and rows around the spine (the whole field at 1 mm
    is 37 million voxels; the spine's box keeps the test quick)."""
    ct, labels, bodies = maps
    _, j, i = np.nonzero(labels.array)
    box = (slice(None), slice(max(0, j.min() - 12), j.max() + 12),
           slice(max(0, i.min() - 12), i.max() + 12))
    ct, labels, bodies = crop(ct, box), crop(labels, box), crop(bodies, box)
    lo, hi = ct.bounds_lps()
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = lo
    shape = tuple(int(n) for n in (np.floor(hi - lo) + 1)[::-1])
    return (regrid(ct, affine, shape), regrid(labels, affine, shape, labels=True),
            regrid(bodies, affine, shape, labels=True))


VARIANTS = {"scanned": lambda m: m, "mirrored": _mirrored, "oblique": _oblique,
            "1 mm": _one_mm}


def _reference(maps: Maps) -> Anatomy:
    ct, labels, bodies = maps
    return anatomy_from_label_map(ct, labels, load_label_table("totalsegmentator"),
                                  bodies=bodies)


def _assert_proposals_stay_out_of_the_labelled_canal(ct: Volume, found: Anatomy,
                                                     reference: Anatomy) -> tuple[int, int]:
    """Proposals on the automatic anatomy, checked against the labels' canal and levels;
    returns how many levels got at least one needle, and how many needles."""
    levels = [name for name in LEVELS[:-1] if name in found.levels]
    proposal = propose(ct, found, CheckContext.build(ct, found), levels=levels)
    for level in levels:  # every level is planned, or its omission is explained
        assert level in proposal.plan.levels or proposal.omitted.get(level)
    truth = CheckContext.build(ct, reference)
    code = {g.code: name for name, g in reference.levels.items()}
    assert proposal.plan.trajectories, proposal.omitted
    for t in proposal.plan.trajectories:
        res = check(t, truth, proposal.plan)
        assert res.canal_clearance_mm >= MIN_CLEARANCE_MM and res.breach_grade == "A", (
            t.key, res.canal_clearance_mm)
        assert code.get(int(truth.label_at(t.target[None])[0])) == t.level, t.key
    return len(proposal.plan.levels), len(proposal.plan.trajectories)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_levels_named_and_placed_and_proposals_safe(scanned: Maps, variant: str) -> None:
    maps = VARIANTS[variant](scanned)
    reference = _reference(maps)
    found = anatomy_from_ct(maps[0])
    # T12 is cut by the top of this scan: about 20 mm of it shows, blurred once more on the
    # re-interpolated variants (see `spine_column._carry_body`)
    assert [n for n in found.levels if n in LEVELS] == LEVELS
    for name in LEVELS:
        error = float(np.linalg.norm(found.levels[name].centroid_lps
                                     - reference.levels[name].centroid_lps))
        assert error <= MAX_ERROR_MM, f"{variant} {name}: {error:.1f} mm"
    # a level whose paths all pass the automatic canal nearer than its wall's uncertainty
    # allows, or leave its bone, is left out with the reason (see `planning.canal_margin`).
    # Measured with that margin: as scanned and mirrored 5 levels, 8 needles; oblique 3
    # levels, 4 needles (its labels have holes in the pedicles, "no path stays in the bone",
    # which refuses the others); 1 mm 3 levels, 3 needles.
    levels, needles = _assert_proposals_stay_out_of_the_labelled_canal(maps[0], found,
                                                                       reference)
    assert levels >= 2 and needles >= 3


def test_cropped_to_three_levels_places_them_and_says_the_names_are_uncertain(
        scanned: Maps) -> None:
    ct = scanned[0]
    reference = _reference(scanned)
    z = {name: g.centroid_lps[2] for name, g in reference.levels.items()}
    k = np.arange(ct.array.shape[0])
    z_of_k = ct.affine_lps[2, 2] * k + ct.affine_lps[2, 3]
    keep = np.flatnonzero((z_of_k >= z["L4"] - 21.0) & (z_of_k <= z["L2"] + 21.0))
    box = (slice(int(keep[0]), int(keep[-1]) + 1), slice(None), slice(None))
    small = crop(ct, box)
    found = anatomy_from_ct(small)
    assert max(g.confidence for g in found.levels.values()) < 1.0
    assert any("level names" in w or "level labels" in w for w in found.warnings)
    for name in ("L2", "L3", "L4"):
        error = min(float(np.linalg.norm(g.centroid_lps - reference.levels[name].centroid_lps))
                    for g in found.levels.values())
        assert error <= MAX_ERROR_MM, f"{name}: {error:.1f} mm"
