"""Cement volume and spread preview: the demo CT's bodies, and a real 3 mm CT's body volumes
against the reference made from its label files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from planning.anatomy import Anatomy, anatomy_from_demo_truth
from planning.assessment.cement import (
    CementError,
    body_mask,
    body_volume_ml,
    cement_plan,
)
from planning.plan import Side

DATA = Path(__file__).parents[3] / ".." / "shared" / "data" / "ct-abdomen-3mm"
LUMBAR = ["L1", "L2", "L3", "L4", "L5"]
REAL_VOLUME_TOL = 0.15  # the target
TS_CODES = {"T12": 32, "L1": 31, "L2": 30, "L3": 29, "L4": 28, "L5": 27, "S1": 26}


@pytest.fixture(scope="module")
def anatomy(shared_demo_ct) -> Anatomy:
    _, truth = shared_demo_ct
    return anatomy_from_demo_truth(truth)


def _tips(anatomy: Anatomy, level: str, anterior_mm: float = 5.0,
          lateral_mm: float = 8.0) -> dict[Side, np.ndarray]:
    g = anatomy.levels[level]
    base = g.centroid_lps + anterior_mm * g.anterior_lps
    return {Side.LEFT: base + lateral_mm * g.left_lps, Side.RIGHT: base - lateral_mm * g.left_lps}


def _flipped(anatomy: Anatomy) -> Anatomy:
    """The same anatomy on a grid flipped in two axes with rows and columns swapped."""
    nk, _, ni = anatomy.labels.shape
    to_old = np.array([[0, -1, 0, ni - 1], [1, 0, 0, 0], [0, 0, -1, nk - 1], [0, 0, 0, 1.0]])

    def move(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.flip(a, axis=(0, 2)).swapaxes(1, 2))

    return Anatomy(affine_lps=anatomy.affine_lps @ to_old, labels=move(anatomy.labels),
                   canal=move(anatomy.canal), bodies=move(anatomy.bodies),
                   levels=anatomy.levels)


def test_volumes_proportional_to_fill_and_split_per_side(anatomy: Anatomy) -> None:
    tips = _tips(anatomy, "L3")
    a = cement_plan(anatomy, "L3", tips, (0.10, 0.20))
    b = cement_plan(anatomy, "L3", tips, (0.20, 0.40))
    body = body_volume_ml(anatomy, "L3")
    assert a.body_volume_ml == pytest.approx(body)
    assert a.volume_ml_range_total == pytest.approx((0.10 * body, 0.20 * body))
    assert b.volume_ml_range_total == pytest.approx(
        tuple(2 * v for v in a.volume_ml_range_total))
    assert a.volume_ml_range_per_side == pytest.approx(
        tuple(v / 2 for v in a.volume_ml_range_total))
    one = cement_plan(anatomy, "L3", [tips[Side.LEFT]], (0.10, 0.20))
    assert one.volume_ml_range_per_side == pytest.approx(one.volume_ml_range_total)
    assert one.to_json()["approach"] == "unipedicular"
    j = a.to_json()
    assert j["fill_percent_range"] == [10.0, 20.0] and j["approach"] == "bilateral"
    for key in ("body_volume_ml", "volume_ml_range_total", "volume_ml_range_per_side"):
        assert key in j
    for s in j["spreads"]:
        for key in ("distance_to_posterior_wall_mm", "distance_to_basivertebral_foramen_mm",
                    "clipped_fraction", "centre_lps", "semi_axes_mm", "axes_lps"):
            assert key in s


def test_default_fill_range_is_15_to_30_percent(anatomy: Anatomy) -> None:
    plan = cement_plan(anatomy, "L2", _tips(anatomy, "L2"))
    assert plan.to_json()["fill_percent_range"] == [15.0, 30.0]
    assert plan.preview_fill == pytest.approx(0.30)
    # the preview shows the upper end, half each side
    for s in plan.spreads:
        assert s.volume_ml == pytest.approx(0.15 * plan.body_volume_ml)


def test_spread_inside_the_body_and_its_volume_when_not_clipped(anatomy: Anatomy) -> None:
    body = body_mask(anatomy, "L3")
    plan = cement_plan(anatomy, "L3", _tips(anatomy, "L3", 3.0, 6.0), preview_fill=0.15)
    for s in plan.spreads:
        assert s.mask.shape == anatomy.labels.shape
        assert not (s.mask & ~body).any()
        assert s.clipped_fraction < 0.01, s.clipped_fraction
        assert s.spread_volume_ml == pytest.approx(s.volume_ml, rel=0.05)
        # the ellipsoid description holds the requested volume
        assert 4.0 / 3.0 * np.pi * np.prod(s.semi_axes_mm) / 1000.0 == pytest.approx(s.volume_ml)
        assert np.allclose(s.axes_lps @ s.axes_lps.T, np.eye(3), atol=1e-9)
        # flatter cranio-caudally than across, like the body
        assert s.semi_axes_mm[2] < s.semi_axes_mm[0]
    left, right = plan.spreads
    assert left.side is Side.LEFT and right.side is Side.RIGHT


def test_a_tip_near_the_wall_is_clipped(anatomy: Anatomy) -> None:
    g = anatomy.levels["L3"]
    near_side = {Side.LEFT: g.centroid_lps + 19.0 * g.left_lps}
    s = cement_plan(anatomy, "L3", near_side).spreads[0]
    assert s.clipped_fraction > 0.2
    assert s.spread_volume_ml == pytest.approx(s.volume_ml * (1 - s.clipped_fraction), rel=0.05)


def test_a_posterior_tip_is_closer_to_the_wall_and_foramen(anatomy: Anatomy) -> None:
    front = cement_plan(anatomy, "L2", _tips(anatomy, "L2", 8.0), preview_fill=0.15)
    back = cement_plan(anatomy, "L2", _tips(anatomy, "L2", 0.0), preview_fill=0.15)
    for f, b in zip(front.spreads, back.spreads, strict=True):
        assert b.tip_to_posterior_wall_mm < f.tip_to_posterior_wall_mm - 6.0
        assert b.tip_to_basivertebral_foramen_mm < f.tip_to_basivertebral_foramen_mm - 6.0
        assert b.distance_to_posterior_wall_mm < f.distance_to_posterior_wall_mm
        assert b.distance_to_basivertebral_foramen_mm < f.distance_to_basivertebral_foramen_mm
        # the spread reaches nearer than its tip
        assert f.distance_to_posterior_wall_mm < f.tip_to_posterior_wall_mm


def test_foramen_is_on_the_midline_of_the_posterior_wall(anatomy: Anatomy) -> None:
    for level in ("T11", "L1", "L4"):
        g = anatomy.levels[level]
        plan = cement_plan(anatomy, level, _tips(anatomy, level))
        left, anterior, _ = g.to_local(plan.basivertebral_foramen_lps)
        assert abs(left) < 1.0
        assert anterior < -8.0  # behind the body's centre
        # on the body's surface: the next point behind it is outside the body
        behind = plan.basivertebral_foramen_lps - 1.5 * g.anterior_lps
        ijk = np.rint(anatomy.to_index(behind)).astype(int)
        assert not body_mask(anatomy, level)[ijk[2], ijk[1], ijk[0]]


def test_a_flipped_grid_gives_the_same_plan(anatomy: Anatomy) -> None:
    tips = _tips(anatomy, "L1")
    a = cement_plan(anatomy, "L1", tips)
    b = cement_plan(_flipped(anatomy), "L1", tips)
    assert b.body_volume_ml == pytest.approx(a.body_volume_ml, rel=1e-9)
    assert np.linalg.norm(a.basivertebral_foramen_lps - b.basivertebral_foramen_lps) < 1.0
    for sa, sb in zip(a.spreads, b.spreads, strict=True):
        assert sb.spread_volume_ml == pytest.approx(sa.spread_volume_ml, rel=0.02)
        assert sb.distance_to_posterior_wall_mm == pytest.approx(
            sa.distance_to_posterior_wall_mm, abs=1.0)


def test_wrong_inputs_are_refused(anatomy: Anatomy) -> None:
    tips = _tips(anatomy, "L1")
    with pytest.raises(CementError, match="fill_range must be two fractions"):
        cement_plan(anatomy, "L1", tips, (0.3, 0.15))
    with pytest.raises(CementError, match="C3 is not in this CT's anatomy"):
        cement_plan(anatomy, "C3", tips)
    with pytest.raises(CementError, match="no needle tip"):
        cement_plan(anatomy, "L1", [])
    with pytest.raises(CementError, match="three finite numbers"):
        cement_plan(anatomy, "L1", [[0.0, 1.0]])


@pytest.mark.skipif(not (DATA / "ct.nii.gz").exists(), reason="shared data absent")
def test_real_ct_body_volumes_against_the_label_reference() -> None:
    """Body volumes L1–L5 from an anatomy that never saw bodies.nii.gz (the vertebra labels
    only: the body is what lies in front of the canal), within 15 % of the reference
    (bodies.nii.gz label 1 ∩ each level's label). The automatic anatomy (which does not see
    the labels at all) within 15 % at four of the five levels and 25 % at every one
    (measured +1, +1, +7, +0, +20 %: L5's tilted L5–S1 disc and its posterior wall)."""
    from planning.anatomy import anatomy_from_label_map
    from planning.anatomy.from_ct import anatomy_from_ct
    from planning.anatomy.label_tables import load_label_table
    from planning.io import load_path

    ct = load_path(DATA / "ct.nii.gz")
    labels = load_path(DATA / "labels.nii.gz")
    bodies = load_path(DATA / "bodies.nii.gz")
    assert labels.array.shape == bodies.array.shape == ct.array.shape
    voxel_ml = float(abs(np.linalg.det(labels.affine_lps[:3, :3]))) / 1000.0
    from_labels = anatomy_from_label_map(ct, labels, load_label_table("totalsegmentator"))
    automatic = anatomy_from_ct(ct)
    print("\nlevel reference_ml labels_only_ml error_% automatic_ml error_%")
    errors, auto_errors = {}, {}
    for level in LUMBAR:
        ref = float(((labels.array == TS_CODES[level]) & (bodies.array == 1)).sum()) * voxel_ml
        got = body_volume_ml(from_labels, level)
        auto = body_volume_ml(automatic, level) if level in automatic.levels else float("nan")
        errors[level] = (got - ref) / ref
        auto_errors[level] = (auto - ref) / ref
        print(f"{level:5s} {ref:12.1f} {got:14.1f} {100 * errors[level]:+7.1f} "
              f"{auto:12.1f} {100 * (auto - ref) / ref:+7.1f}")
        assert 35.0 < ref < 50.0  # the README's bodies at 3 mm
    for level, error in errors.items():
        assert abs(error) <= REAL_VOLUME_TOL, f"{level}: {100 * error:+.1f} %"
    assert all(abs(e) <= 0.25 for e in auto_errors.values()), auto_errors
    assert sum(abs(e) <= REAL_VOLUME_TOL for e in auto_errors.values()) >= 4, auto_errors


@pytest.mark.skipif(not (DATA / "ct.nii.gz").exists(), reason="shared data absent")
def test_real_ct_spread_and_wall() -> None:
    """On the 3 mm CT: the foramen lies behind the body's centre on the midline, and a
    spread from tips in the front half of L3 stays mostly inside the body."""
    from planning.anatomy import anatomy_from_label_map
    from planning.anatomy.label_tables import load_label_table
    from planning.io import load_path

    ct = load_path(DATA / "ct.nii.gz")
    anatomy = anatomy_from_label_map(ct, load_path(DATA / "labels.nii.gz"),
                                     load_label_table("totalsegmentator"))
    g = anatomy.levels["L3"]
    plan = cement_plan(anatomy, "L3", _tips(anatomy, "L3", 5.0, 8.0))
    left, anterior, _ = g.to_local(plan.basivertebral_foramen_lps)
    assert abs(left) < 3.0 and anterior < -5.0
    body = body_mask(anatomy, "L3")
    k, j, i = np.nonzero(body)
    surface = cKDTree(anatomy.to_lps(np.stack([i, j, k], 1).astype(float)))
    assert surface.query(plan.basivertebral_foramen_lps)[0] < 3.0
    for s in plan.spreads:
        assert s.clipped_fraction < 0.2
        assert 0.0 <= s.distance_to_posterior_wall_mm < s.tip_to_posterior_wall_mm
    print("\n", plan.to_json())
