"""Fracture assessment: heights, Genant grade and shape, and the three fracture flags.

On the demo CT the L1 body is built with a 35 % anterior wedge; every other level is
intact. Each flag is made to appear by editing a copy of the demo (a gas pocket, a wall
pushed into the canal, a notch in an endplate) and must appear there and nowhere else.

The demo's designed posterior heights are at the nominal wall, beside a 3 mm midline
notch, and its endplates dip 1.2 mm (2.2 mm in the fracture) in the centre; the method
measures in the midline, so posterior heights are also checked against the phantom's own
midline surface (computed from the generator's body shapes).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from planning.anatomy import Anatomy
from planning.assessment.fracture import (
    FractureAssessment,
    assess_fractures,
    fractured_levels_first,
    genant_grade,
)
from planning.demo import DemoTruth
from planning.demo.spine_layout import build_spine_layout
from planning.demo.vertebra_model import make_body, posterior_notch_mm
from planning.volume import Volume
from tests.planning.assessment.edited_demo import (
    editable_copy,
    gas_pocket,
    notched,
    paint_ct,
    retropulsed,
)
from tests.planning.real_cases import abdomen_with_reference

ABDOMEN = Path(__file__).parents[3] / ".." / "shared" / "data" / "ct-abdomen-3mm"
NOMINAL_LOSS = 0.35  # planning/demo/anatomy_specs.py FRACTURE_ANTERIOR_LOSS


def _midline_heights(name: str) -> tuple[float, float]:
    """The phantom's own body height 1.25 mm inside its midline anterior/posterior walls."""
    pose = build_spine_layout().vertebra(name)
    body, spec = make_body(pose), pose.spec
    zero = np.float32(0.0)

    def h(ly: float) -> float:
        y = np.float32(ly)
        return float(body.top_z(zero, y) - body.bottom_z(zero, y))

    front, back = -0.5 * spec.body_depth_mm, 0.5 * spec.body_depth_mm - posterior_notch_mm(spec)
    return h(front + 1.25), h(back - 1.25)


# ---- grade and heights on the demo ------------------------------------------------------
def test_genant_thresholds() -> None:
    assert [genant_grade(x) for x in (0.0, 0.19, 0.2, 0.249, 0.25, 0.40, 0.41)] == [
        0, 0, 1, 1, 2, 2, 3]


def test_demo_l1_is_a_moderate_wedge(assessed: dict[str, FractureAssessment]) -> None:
    l1 = assessed["L1"]
    assert l1.genant_grade == 2
    assert l1.shape == "wedge"
    # the nominal 35 % holds at the nominal walls; in the midline the phantom's own
    # wedge is 1 − 16.6/22.85 = 27 % (1.25 mm inside the walls, see the module docstring)
    front, back = _midline_heights("L1")
    assert l1.height_loss.wedge == pytest.approx(1.0 - front / back, abs=0.04)
    assert l1.height_loss.wedge == pytest.approx(NOMINAL_LOSS, abs=0.06)


def test_demo_other_levels_are_normal(assessed: dict[str, FractureAssessment]) -> None:
    assert set(assessed) == {"T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"}
    for name, a in assessed.items():
        if name != "L1":
            assert a.genant_grade == 0, f"{name}: {a.to_json()['height_loss']}"
            assert a.shape == "normal"
            assert a.height_loss.worst < 0.15, name


def test_demo_heights(demo: tuple[Volume, DemoTruth, Anatomy],
                      assessed: dict[str, FractureAssessment]) -> None:
    truth = demo[1]
    for name, a in assessed.items():
        lv = truth.level(name)
        front, back = _midline_heights(name)
        assert a.heights.anterior_mm == pytest.approx(lv.anterior_height_mm, abs=1.5), name
        assert a.heights.anterior_mm == pytest.approx(front, abs=1.0), name
        assert a.heights.posterior_mm == pytest.approx(back, abs=1.0), name
        # the nominal posterior height is off the midline notch: within 1.5 mm except the
        # fracture, whose 2.2 mm endplate dips put its midline wall 2.3 mm lower
        tol = 3.5 if lv.fractured else 1.5
        assert a.heights.posterior_mm == pytest.approx(lv.posterior_height_mm, abs=tol), name


def test_neighbour_reference_skips_the_fracture(assessed: dict[str, FractureAssessment]
                                                 ) -> None:
    """The reference is the intact levels up to two places away: L1 (fractured) is never
    one; the ends of the spine take what they have."""
    assert assessed["L1"].height_loss.reference_levels == ("T11", "T12", "L2", "L3")
    assert assessed["T12"].height_loss.reference_levels == ("T10", "T11", "L2")
    assert assessed["L2"].height_loss.reference_levels == ("T12", "L3", "L4")
    assert assessed["T10"].height_loss.reference_levels == ("T11", "T12")


def test_fractured_levels_first(assessed: dict[str, FractureAssessment]) -> None:
    order = fractured_levels_first(assessed)
    assert order == ["L1", "T10", "T11", "T12", "L2", "L3", "L4", "L5"]


def test_to_json(assessed: dict[str, FractureAssessment]) -> None:
    d = json.loads(json.dumps(assessed["L1"].to_json()))
    assert set(d["heights_mm"]) == {"anterior", "middle", "posterior"}
    assert d["genant_grade"] == 2 and d["shape"] == "wedge" and d["fractured"] is True
    assert set(d["flags"]) == {"retropulsion", "intravertebral_cleft", "endplate_disruption"}
    assert d["height_loss"]["wedge"] == pytest.approx(assessed["L1"].height_loss.wedge, abs=1e-3)
    assert "Genant" in d["source"]


def test_demo_has_no_fracture_flags(assessed: dict[str, FractureAssessment]) -> None:
    for name, a in assessed.items():
        assert not a.retropulsion.present, (name, a.retropulsion.displacement_mm)
        assert not a.cleft.present, name
        assert not a.endplate.present, (name, a.endplate.to_json())


# ---- flags on edited copies ------------------------------------------------------------
def test_gas_cleft_appears_at_l2_only(demo: tuple[Volume, DemoTruth, Anatomy]) -> None:
    volume, anatomy = gas_pocket(demo)
    found = assess_fractures(volume, anatomy)
    cleft = found["L2"].cleft
    assert cleft.present and cleft.kind == "gas"
    assert cleft.volume_ml == pytest.approx(4 / 3 * np.pi * 4.0**3 / 1000, rel=0.35)
    assert cleft.centre_lps is not None
    assert np.linalg.norm(cleft.centre_lps - anatomy.levels["L2"].centroid_lps) < 1.5
    assert [n for n, a in found.items() if a.cleft.present] == ["L2"]


def test_fluid_cleft_is_reported_as_fluid(demo: tuple[Volume, DemoTruth, Anatomy]) -> None:
    volume, anatomy = gas_pocket(demo, "L3", hu=15.0, radius_mm=4.5)
    cleft = assess_fractures(volume, anatomy)["L3"].cleft
    assert cleft.present and cleft.kind == "fluid"
    assert cleft.mean_hu is not None and -20 <= cleft.mean_hu <= 40


def test_small_gas_bubble_is_not_a_cleft(demo: tuple[Volume, DemoTruth, Anatomy]) -> None:
    volume, anatomy = gas_pocket(demo, "L2", radius_mm=1.8)  # 0.02 ml
    assert not assess_fractures(volume, anatomy)["L2"].cleft.present


def test_retropulsion_appears(demo: tuple[Volume, DemoTruth, Anatomy],
                              assessed: dict[str, FractureAssessment]) -> None:
    volume, anatomy = retropulsed(demo, assessed["L3"], 5.0)
    found = assess_fractures(volume, anatomy)
    r = found["L3"].retropulsion
    assert r.present and r.displacement_mm is not None
    assert r.displacement_mm == pytest.approx(5.0 + assessed["L3"].retropulsion.displacement_mm,
                                              abs=1.5)
    assert r.reference_levels == ("L2", "L4")
    assert [n for n, a in found.items() if a.retropulsion.present] == ["L3"]


def test_endplate_notch_appears(demo: tuple[Volume, DemoTruth, Anatomy],
                                assessed: dict[str, FractureAssessment]) -> None:
    volume, anatomy = notched(demo, assessed["L3"], 5.0)
    found = assess_fractures(volume, anatomy)
    e = found["L3"].endplate
    assert e.present and e.worst_endplate == "superior"
    assert e.superior_step_mm >= 3.0
    assert [n for n, a in found.items() if a.endplate.present] == ["L3"]


# ---- a real CT ---------------------------------------------------------------------------
def test_real_abdomen_has_no_severe_fracture() -> None:
    if not ABDOMEN.is_dir():
        pytest.skip("shared test data absent")
    ct, anatomy = abdomen_with_reference()
    found = assess_fractures(ct, anatomy)
    print("\nlevel   Ha     Hm     Hp   wedge  bicon  crush  grade shape        retro  "
          "cleft  endplate")
    for name, a in found.items():
        h, loss = a.heights, a.height_loss
        crush = "   -  " if loss.crush is None else f"{loss.crush:6.2f}"
        retro = a.retropulsion.displacement_mm
        step = max(a.endplate.superior_step_mm, a.endplate.inferior_step_mm)
        print(f"{name:5s} {h.anterior_mm:5.1f}  {h.middle_mm:5.1f}  {h.posterior_mm:5.1f} "
              f"{loss.wedge:6.2f} {loss.biconcave:6.2f} {crush}  {a.genant_grade!s:5s} "
              f"{a.shape:12s} {'-' if retro is None else f'{retro:+.1f}':>5s}  "
              f"{a.cleft.volume_ml:.2f}  {step:.1f}")
    assert {"L1", "L2", "L3", "L4", "L5"} <= set(found)
    assert all(a.genant_grade != 3 for a in found.values())
    assert found["T12"].genant_grade is None  # cut by the top of the scan
    for name in ("L2", "L3", "L4"):
        assert 20.0 <= found[name].heights.posterior_mm <= 35.0, name


@pytest.mark.parametrize("storing", ["1.5 mm grid", "rotated 15° about x"])
def test_a_body_cut_by_the_scan_of_a_restored_ct_is_not_graded(storing: str) -> None:
    """The real abdomen CT re-stored: the grid pads the space beyond the scanned slab with
    air inside its array, so T12 — cut by the scan's top — no longer touches the array's
    edge. It was graded a crush fracture (Genant 2 and 3); it must not be graded at all."""
    from bench.accuracy import DATA, _as_volume, respaced, rotated
    from planning.anatomy.from_ct import anatomy_from_ct
    from planning.assessment.fracture import assess_fractures
    from planning.io.nifti import load_nifti

    path = DATA / "ct-abdomen-3mm" / "ct.nii.gz"
    if not path.exists():
        pytest.skip("shared data absent")
    ct = _as_volume(load_nifti(path))
    volume = respaced(ct, 1.5) if storing == "1.5 mm grid" else rotated(ct, 0, 15.0, 2.0)
    t12 = assess_fractures(volume, anatomy_from_ct(volume))["T12"]
    assert t12.genant_grade is None
    assert "scan" in t12.notes[0]


def test_a_body_that_cannot_be_measured_is_left_ungraded_not_a_crash(
        demo: tuple[Volume, DemoTruth, Anatomy]) -> None:
    """L3's body voxels cut away along its mid-sagittal strip (what a broken automatic body
    can look like): L3 has no grade — not a crash, not a grade from a failed measurement —
    and the other levels are still graded."""
    volume, anatomy, box, local = editable_copy(demo, "L3")
    strip = np.abs(local[..., 0]) <= 6.0  # the level's own left–right axis, mm
    in_l3 = anatomy.vertebra_mask("L3")[box]
    anatomy.bodies[box][strip & in_l3] = False
    assert anatomy.bodies[box][in_l3].any()  # L3 still has body voxels, off the midline
    out = assess_fractures(volume, anatomy)
    assert "L3" not in out
    assert out["L1"].genant_grade == 2 and out["L2"].genant_grade == 0


# ---- plausibility before grading (issue 21) ----------------------------------------------
def test_a_mask_that_stops_inside_the_bone_is_not_graded(
        demo: tuple[Volume, DemoTruth, Anatomy],
        assessed: dict[str, FractureAssessment]) -> None:
    """L3's body mask loses the top 6 mm of its middle while the CT keeps the bone (a body
    fill that stopped short of the endplate, as the axial fill did at the porotic corners
    of bodies on turned grids): its heights read as a Genant 2 biconcave fracture, but
    beyond the cut surface the CT shows no step down to a disc. It is not graded, and says
    why; the demo's real L1 wedge, whose collapsed endplate the CT shows, is still graded."""
    volume, anatomy, box, local = editable_copy(demo, "L3")
    a = assessed["L3"]
    mid = 0.5 * (a.posterior_wall_mm + a.anterior_wall_mm)
    top = float(anatomy.levels["L3"].to_local(a.body_centre_lps)[2]) + 0.5 * a.heights.middle_mm
    cut = ((np.abs(local[..., 1] - mid) < 9.0) & (local[..., 2] > top - 6.0)
           & anatomy.vertebra_mask("L3")[box])
    anatomy.bodies[box] &= ~cut
    out = assess_fractures(volume, anatomy)
    l3 = out["L3"]
    assert genant_grade(l3.height_loss.worst) >= 2  # the short mask alone would grade it
    assert l3.genant_grade is None and l3.shape == "not assessed"
    assert "superior endplate is not seen on the CT at the middle" in l3.notes[0]
    assert l3.plausibility is not None and not l3.plausibility.endplates_seen
    assert out["L1"].genant_grade == 2 and out["L1"].plausibility.endplates_seen
    assert assessed["L3"].plausibility.endplates.weakest()[2] >= 100.0


def test_a_body_shallower_than_its_neighbours_is_not_graded(
        demo: tuple[Volume, DemoTruth, Anatomy],
        assessed: dict[str, FractureAssessment]) -> None:
    """L4's body mask loses its front 40 % (a segmentation that stopped short of the
    anterior wall): a fracture takes height, never depth, so the body is not graded, with
    its depth and the neighbours' in the note; its neighbours are graded as before."""
    volume, anatomy, box, local = editable_copy(demo, "L4")
    a = assessed["L4"]
    depth = a.anterior_wall_mm - a.posterior_wall_mm
    front = (local[..., 1] > a.anterior_wall_mm - 0.4 * depth) & anatomy.vertebra_mask("L4")[box]
    anatomy.bodies[box] &= ~front
    out = assess_fractures(volume, anatomy)
    assert out["L4"].genant_grade is None
    assert "front to back" in out["L4"].notes[0]
    assert out["L3"].genant_grade == 0 and out["L5"].genant_grade == 0
    assert "L4" not in out["L3"].height_loss.reference_levels


def test_crush_is_the_whole_body_lower_than_its_neighbours() -> None:
    """A posterior height alone below the neighbours' (anterior as tall as theirs) is no
    crush; all three lower by 30–45 % is a crush of the smallest of them."""
    from planning.assessment.fracture import HeightLoss

    reverse_wedge = HeightLoss(-0.3, -0.1, -0.1, -0.02, 0.1, 0.3, 28.0, ("L3", "L5"))
    assert reverse_wedge.crush == pytest.approx(-0.02)
    assert genant_grade(reverse_wedge.worst) == 0
    crushed = HeightLoss(0.0, 0.05, 0.05, 0.45, 0.48, 0.42, 28.0, ("L3", "L5"))
    assert crushed.crush == pytest.approx(0.42) and genant_grade(crushed.worst) == 3
    assert HeightLoss(0.1, 0.1, 0.1).crush is None


def test_a_body_cut_by_a_tilted_scan_end_is_not_graded(
        demo: tuple[Volume, DemoTruth, Anatomy],
        assessed: dict[str, FractureAssessment]) -> None:
    """The scan ends obliquely through the front of L5's lower end (a grid turned about the
    left–right axis, the slab's edge a few millimetres below the body): the body reads as a
    mild wedge, and beyond its lower surface lies air, not a disc. It is not graded, and the note
    says the scan ends there."""
    volume, anatomy, box, local = editable_copy(demo, "L5", pad=20)
    a = assessed["L5"]
    geo = anatomy.levels["L5"]
    bottom = float(geo.to_local(a.body_centre_lps)[2]) - 0.5 * a.heights.middle_mm
    # the slab's edge: a plane rising 2 mm per mm towards the front, 11 mm up at the wall
    # (so that most of the midline lies clear of it: not "reaches the edge of the scan")
    edge = bottom + 11.0 + 2.0 * (local[..., 1] - a.anterior_wall_mm)
    beyond = local[..., 2] < edge
    anatomy.bodies[box] &= ~beyond
    paint_ct(volume, anatomy, box, beyond, -1000.0)
    l5 = assess_fractures(volume, anatomy)["L5"]
    assert genant_grade(l5.height_loss.worst) >= 1  # the cut alone would grade it
    assert l5.genant_grade is None
    assert "scan ends beyond the inferior endplate" in " ".join(l5.notes)
    assert l5.plausibility.endplates.scan_ends


def test_the_cleft_median_is_the_full_median_where_it_is_dark() -> None:
    """The cleft search takes the 3 × 3 × 3 median only where it can be dark
    (`_median3_where_dark`): there it equals scipy's median filter, voxel for voxel, on
    bone with gas, fluid and noise; everywhere else the full median is brighter."""
    from scipy import ndimage

    from planning.assessment.fracture_findings import _median3_where_dark

    rng = np.random.default_rng(7)
    hu = rng.normal(180.0, 120.0, (14, 15, 16)).astype(np.float32)
    hu[4:8, 5:9, 6:11] = rng.normal(10.0, 30.0, (4, 4, 5))  # fluid
    hu[9:11, 2:5, 3:6] = -700.0  # gas
    where = np.zeros(hu.shape, dtype=bool)
    where[1:-1, 1:-1, 1:-1] = True
    fast = _median3_where_dark(hu, where, 40.0)
    full = ndimage.median_filter(hu, size=3)
    done = np.isfinite(fast)
    assert done.sum() > 50
    np.testing.assert_array_equal(fast[done], full[done])
    assert np.all(full[where & ~done] > 40.0)
