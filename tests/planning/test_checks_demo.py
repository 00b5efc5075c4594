"""Checks on the demo CT with its ground truth: good plans pass, each danger is named."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planning.anatomy.from_demo import anatomy_from_demo_truth
from planning.checks import CheckContext, Status, breach_grade, check, check_plan
from planning.plan import Plan, Side, Trajectory


@pytest.fixture(scope="module")
def demo(shared_demo_ct):
    volume, truth = shared_demo_ct
    ctx = CheckContext.build(volume, anatomy_from_demo_truth(truth))
    return volume, truth, ctx


def good_pair(truth, level: str, gauge: str = "13G") -> tuple[Trajectory, Trajectory]:
    """What a surgeon places: in at the pedicle's entry, along its axis, tip in the
    anterior third of the body (6 mm short of the anterior cortex)."""
    lv = truth.level(level)
    out = []
    for side in (Side.LEFT, Side.RIGHT):
        p = lv.pedicle(side.value)
        reach = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps)) - 6.0
        out.append(
            Trajectory(level, side, p.entry_lps, p.entry_lps + reach * p.direction_lps, gauge)
        )
    return out[0], out[1]


def _only_near_a_vessel(r, ctx) -> bool:
    """A caution whose only reason is a contrast-filled vessel within its caution distance
    but beyond the unsafe one."""
    return (r.status is Status.CAUTION
            and all("from a contrast-filled vessel" in x for x in r.reasons)
            and ctx.limits.vessel_min_mm <= r.vessel_clearance_mm < ctx.limits.vessel_caution_mm)


def test_good_bilateral_pairs_are_safe_at_every_level(demo) -> None:
    _, truth, ctx = demo
    trajectories = [t for lv in truth.levels for t in good_pair(truth, lv.name)]
    results = check_plan(Plan(trajectories=tuple(trajectories)), ctx)
    assert len(results) == 2 * len(truth.levels)
    for r in results:
        # the demo's iliac veins lie against L5: a caution for a vessel 3–5 mm away is right
        assert r.status is Status.SAFE or _only_near_a_vessel(r, ctx), (r.level, r.side,
                                                                          r.reasons)
        assert r.breach_grade == "A" and r.canal_clearance_mm > 2.0
        assert r.tip_in_body and r.tip_level == r.level
        assert r.tip_depth_fraction is not None and r.tip_depth_fraction > 0.6
        assert r.tip_to_anterior_cortex_mm is not None and 3.0 < r.tip_to_anterior_cortex_mm < 8
        assert r.medial_angle_deg > 0  # transpedicular needles converge
        assert r.skin_to_tip_mm is not None and r.skin_to_tip_mm > r.length_mm
        assert r.pair_distance_mm is not None and r.pair_distance_mm > 3.0


@pytest.mark.parametrize("level", ["T11", "L2", "L4"])
def test_needle_moved_medially_into_the_canal_is_unsafe_with_its_grade(demo, level) -> None:
    _, truth, ctx = demo
    left, _ = good_pair(truth, level)
    lv = truth.level(level)
    shifted = [left.translated(-lv.left_lps * dx) for dx in (4.0, 7.0, 10.0, 13.0)]
    results = [check(t, ctx) for t in shifted]
    clearances = [r.canal_clearance_mm for r in results]
    assert all(b < a for a, b in itertools.pairwise(clearances)), clearances
    deepest = results[-1]
    assert deepest.status is Status.UNSAFE
    assert deepest.canal_clearance_mm < -2.0
    assert deepest.breach_grade == breach_grade(deepest.canal_clearance_mm) != "A"
    assert any(
        f"Left {level}: the needle enters the spinal canal by" in r
        and f"(grade {deepest.breach_grade})" in r
        for r in deepest.reasons
    )


def test_tip_through_the_anterior_cortex_is_flagged(demo) -> None:
    _, truth, ctx = demo
    _, right = good_pair(truth, "L3")
    p = truth.level("L3").pedicle("right")
    beyond = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps)) + 5.0
    through = right.moved(target_lps=p.entry_lps + beyond * p.direction_lps)
    res = check(through, ctx)
    assert res.status is Status.UNSAFE
    assert not res.tip_in_body
    assert any("through the anterior cortex" in r for r in res.reasons)
    near = right.moved(target_lps=p.anterior_cortex_lps - 1.5 * p.direction_lps)
    res_near = check(near, ctx)
    assert res_near.tip_to_anterior_cortex_mm is not None
    assert res_near.tip_to_anterior_cortex_mm < 3.0
    assert res_near.status is Status.CAUTION


def test_left_and_right_swapped_is_flagged(demo) -> None:
    _, truth, ctx = demo
    left, right = good_pair(truth, "L2")
    swapped = Trajectory("L2", Side.LEFT, right.entry_lps, right.target_lps, "13G")
    res = check(swapped, ctx)
    assert res.status is Status.UNSAFE
    assert any("swapped" in r for r in res.reasons)
    assert check(left, ctx).status is Status.SAFE


def test_crossing_an_endplate_into_the_next_level_is_flagged(demo) -> None:
    _, truth, ctx = demo
    left, _ = good_pair(truth, "L2")
    down = truth.level("L3").centroid_lps
    res = check(left.moved(target_lps=down), ctx)
    assert res.status is Status.UNSAFE
    assert "L3" in res.crossings or "disc" in res.crossings
    assert any("crosses into" in r for r in res.reasons)


def test_needles_that_touch_are_unsafe(demo) -> None:
    _, truth, ctx = demo
    left, right = good_pair(truth, "L4")
    crossing = right.moved(target_lps=left.target + truth.level("L4").left_lps * 3.0)
    plan = Plan(trajectories=(left, crossing))
    res = check(crossing, ctx, plan)
    assert res.pair_distance_mm is not None and res.pair_distance_mm < 0.5
    assert any("needles" in r for r in res.reasons)
    assert res.status in (Status.UNSAFE, Status.CAUTION)
