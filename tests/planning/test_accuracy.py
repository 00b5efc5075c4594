"""The accuracy harness (`bench/accuracy.py`) in its fast form, on the labelled abdomen CT:
three storings, figures against the label map's truth (`make bench` runs the whole family).

What it asserts is what holds today on this CT; issue 21 asks for more (canal within 1 mm,
no false Genant grades, names right on every CT), which the bench reports but which is not
yet met everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from bench.accuracy import DATA, labelled_cts, run_family

ABDOMEN = "ct-abdomen-3mm"


def test_the_harness_finds_the_labelled_cts_by_their_readme() -> None:
    found = {name: table.name for name, _, table in labelled_cts(DATA)}
    if not found:
        pytest.skip("shared data absent")
    assert found.get(ABDOMEN) == "TotalSegmentator"
    assert found.get("ct-verse012-sagittal") == "VerSe"
    assert "ct-chest-2mm-dicom" not in found  # no labels: no truth


def test_fast_family_on_the_abdomen_ct() -> None:
    if not (DATA / ABDOMEN / "labels.nii.gz").exists():
        pytest.skip("shared data absent")
    lines: list[str] = []
    results = run_family(fast=True, painted=False, out=lines.append, only={ABDOMEN})
    assert [r.name.split(", ", 1)[1] for r in results] == [
        "as stored", "rotated 15° about x, 2 mm", "1.5 mm grid"]
    # as stored, a bilateral pair at 3 of its 6 levels in view; the others are limited by
    # the canal's soft walls, where the margin counts their uncertainty (`canal_margin`)
    assert results[0].paired >= 3
    assert len(lines) == 2 + len(results) + 1 and "Summary over 3 storings" in lines[-1]
    for r in results:
        assert not r.error, r.error
        assert r.split == 0 and r.found_once >= r.truth_levels - 1, r.name
        assert r.names_right == r.found_once, r.name  # ribs and sacrum in view
        assert r.misnamed_sure == 0, r.name
        # 3–8 needles: with the canal's wall at the CT's bone edge (`canal_wall`) the
        # turned 2 mm storing keeps 3 (4 before, when the canal was a voxel too small and
        # the clearances 0.9 mm too large on average)
        assert r.needles >= 3 and r.near_canal == 0 and r.tips_outside == 0, r.name
        # every level in view has a pair or a cause (`accuracy_pairs`)
        assert r.paired + sum(r.unpaired.values()) == r.pair_levels > 0, r.name
        # measured up to −2.5 mm (as stored; the labels' canal is 3 mm voxels too)
        assert max(abs(e) for e in r.clearance_error_mm) < 3.5, r.name
        # the reported clearances are not too large on average (the unsafe side): +0.2,
        # −0.2 and −1.1 mm (before `canal_wall` +0.6 … +1.3 mm); on the 1.5 mm grid the
        # needles pass bony walls where the automatic canal reaches a little beyond the
        # labels' 3 mm voxels, so they report less than the labels give
        mean_error = float(np.mean(r.clearance_error_mm))
        assert -1.5 <= mean_error <= 1.0, r.name
        assert r.canal_mean_mm < 2.0, r.name
        # no Genant grade from a failed measurement (`body_plausibility`): before it the
        # turned storing graded a lost front corner of L2 Genant 2–3
        assert r.genant1 == r.genant2 == 0, r.name


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_the_same_patient_stored_flipped_gives_the_same_anatomy(axis: int) -> None:
    """Flipped storage along any array axis is the same patient: the same levels at the
    same places. Along the slices it lost T12 (cut by the scan's top): a grid point on the
    CT's first slice fell a rounding error outside it."""
    import numpy as np

    from bench.accuracy import _as_volume, flipped
    from planning.anatomy.from_ct import anatomy_from_ct
    from planning.io.nifti import load_nifti

    path = DATA / ABDOMEN / "ct.nii.gz"
    if not path.exists():
        pytest.skip("shared data absent")
    ct = _as_volume(load_nifti(path))
    stored, other = anatomy_from_ct(ct), anatomy_from_ct(flipped(ct, axis))
    assert list(other.levels) == list(stored.levels)
    for name, g in stored.levels.items():
        assert np.linalg.norm(other.levels[name].centroid_lps - g.centroid_lps) < 0.1, name


def test_fast_family_on_the_noisy_verse_ct() -> None:
    """VerSe 012: low-dose (about 90 HU of noise on its own voxels), porotic, its L1 a real
    wedge fracture. As stored every vertebra is found once, graded right and planned clear
    of the canal; on every fast storing the fracture is found and no needle comes within
    1 mm of the canal. (Its noise once left L3's body a sliver in front of a canal grown
    into it, `spine_column.quiet_hu`, and graded three intact vertebrae Genant 2.)"""
    name = "ct-verse012-sagittal"
    if not (DATA / name / "labels.nii.gz").exists():
        pytest.skip("shared data absent")
    results = run_family(fast=True, painted=False, out=lambda _: None, only={name})
    stored = results[0]
    assert stored.name.endswith("as stored")
    assert stored.split == stored.missed == 0 and stored.found_once == stored.truth_levels
    assert stored.genant2 == 0 and stored.fractures_found == stored.fractures == 1
    # 6 needles at the 6 labelled vertebrae (+3 at unlabelled ones): its voxels are 3 mm
    # across the patient and its noise left cavities in the pedicles' labels that no axial
    # ring closed, so every path "left the bone" and 1 needle was proposed, until what a
    # vertebra encloses in 3D became its own (`from_ct.fill_enclosed`); the clearances it
    # reports are right on average (−0.3 mm; +0.9 mm before `canal_wall`, the unsafe side)
    assert stored.needles >= 5 and stored.tips_outside == 0
    assert abs(float(np.mean(stored.clearance_error_mm))) <= 1.0
    for r in results:
        assert not r.error, r.error
        assert r.fractures_found == 1, r.name
        assert r.near_canal == 0 and r.misnamed_sure == 0, r.name
        # the canal follows the column's core: turned 15° on a 2 mm grid it ran into the
        # porotic bodies below L3 (surface distance 4.3 mm mean, 20.6 mm p95) before
        assert r.canal_mean_mm < 1.6 and r.canal_p95_mm < 7.0, r.name
        # the plausibility checks (issue 21) leave one false grade: a piece of a vertebra
        # split across its disc (turned 15°, 2 mm: the piece holds the lower half of T10,
        # the disc and the top of T11, and both of its ends lie in bone that steps down
        # like an endplate in this noise). Where nothing is split, no false grade.
        assert r.genant1 == 0 and r.genant2 <= r.split, r.name


def test_the_issues_cut_out_around_one_vertebra_is_planned_clear_of_the_canal() -> None:
    """The issue's fourth unseen case, re-made on the abdomen: a 1.5 mm cut-out around L3
    (100 × 90 × 70 mm), stored sagittally, no skin in view. Before, "the spinal canal behind
    L3 was not found", its posterior wall "bulged 49.3 mm into the canal" and nothing was
    proposed. Now the three vertebrae in it are found once each, their names marked
    uncertain (no cue in so small a view), none is graded fractured, the canal lies within
    about a millimetre of the labelled one, and needles are proposed clear of it."""
    if not (DATA / ABDOMEN / "labels.nii.gz").exists():
        pytest.skip("shared data absent")
    (r,) = run_family(painted=False, out=lambda _: None, only={ABDOMEN}, storing_has="cut-out")
    assert "stored sagittally, no skin" in r.name and not r.error, r.error
    assert r.found_once == r.truth_levels == 3 and r.split == r.missed == 0
    assert r.misnamed_sure == 0 and r.genant1 == r.genant2 == 0
    assert r.canal_mean_mm < 1.5  # measured 1.0 mm (p95 2.8 mm)
    assert r.needles >= 2 and r.near_canal == 0 and r.tips_outside == 0
