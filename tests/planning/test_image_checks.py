"""The checks ask the image, not only the anatomy: each fires on the needle it is for.

On the abdomen phantom painted from real labels (aorta left, vena cava right, 300/200 HU),
with the anatomy from its labels (which know nothing of vessels: the checks find them in the
image themselves), and with an anatomy made wrong on purpose (the aorta labelled as L2's
body, the old failure). On the demo CT a needle from over the rib at 46°.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from planning.anatomy import anatomy_from_demo_truth
from planning.autoplan import propose
from planning.checks import CheckContext, Status, check
from planning.clearance import segment_points
from planning.grid_lookup import nearest_voxels
from planning.plan import Side, Trajectory
from tests.planning import painted_cases as pc

LEVEL = "L2"


@pytest.fixture(scope="module")
def case():
    ph = pc.abdomen_phantom()
    ctx = CheckContext.build(ph.ct, ph.anatomy)
    proposal = propose(ph.ct, ph.anatomy, ctx, [LEVEL, "L3"])
    return ph, ctx, proposal


def _vessel_centre(ph, level: str, left: bool) -> np.ndarray:
    """The middle of the painted lumen at the level's body centre, on the given side."""
    geo = ph.anatomy.levels[level]
    pts = pc.truth_vessel_points(ph)
    near = pts[np.abs(pts[:, 2] - geo.centroid_lps[2]) < 2.0]
    side = near[:, 0] > geo.centroid_lps[0] if left else near[:, 0] < geo.centroid_lps[0]
    return near[side].mean(axis=0)


def _needle(proposal, side: Side, tip: np.ndarray) -> Trajectory:
    t = proposal.plan.get(LEVEL, side)
    assert t is not None
    return dataclasses.replace(t, target_lps=tip)


@pytest.mark.parametrize("side, vessel", [(Side.LEFT, "aorta"), (Side.RIGHT, "cava")])
def test_needle_into_a_vessel_is_unsafe(case, side: Side, vessel: str) -> None:
    ph, ctx, proposal = case
    tip = _vessel_centre(ph, LEVEL, left=side is Side.LEFT)
    res = check(_needle(proposal, side, tip), ctx)
    assert res.status is Status.UNSAFE
    assert res.vessel_clearance_mm is not None and res.vessel_clearance_mm < 0.0
    assert any("enters a contrast-filled vessel" in r for r in res.reasons), res.reasons
    words = "on the patient's left" if side is Side.LEFT else "on the patient's right"
    assert any(words in r for r in res.reasons)


def test_planned_needles_keep_their_distance(case) -> None:
    _, ctx, proposal = case
    for t in proposal.plan.trajectories:
        res = check(t, ctx, proposal.plan)
        assert res.vessel_clearance_mm >= ctx.limits.vessel_min_mm
        assert res.tip_walled_directions == res.tip_rays
        assert res.status is not Status.UNSAFE, res.reasons


def test_a_wrong_anatomy_does_not_hide_the_aorta(case) -> None:
    """The old failure: the aorta taken into L2's body. The anatomy now says 'tip in the
    body'; the image says vessel and no bone around the tip."""
    ph, _, proposal = case
    a = ph.anatomy
    code = a.levels[LEVEL].code
    z = a.levels[LEVEL].centroid_lps[2]
    k, j, i = np.indices(a.labels.shape)
    lps = a.to_lps(np.stack([i.ravel(), j.ravel(), k.ravel()], 1).astype(float))
    flat, ok = nearest_voxels(np.linalg.inv(ph.ct.affine_lps), ph.vessels.shape, lps)
    aorta = (ok & ph.vessels.ravel()[flat]).reshape(a.labels.shape)
    aorta &= (np.abs(lps[:, 2] - z) < 12.0).reshape(a.labels.shape)
    aorta &= (lps[:, 0] > a.levels[LEVEL].centroid_lps[0]).reshape(a.labels.shape)
    wrong = dataclasses.replace(a, labels=np.where(aorta, code, a.labels).astype(np.int16),
                                bodies=a.bodies | aorta, vessels=None)
    ctx = CheckContext.build(ph.ct, wrong)
    tip = _vessel_centre(ph, LEVEL, left=True)
    res = check(_needle(proposal, Side.LEFT, tip), ctx)
    assert res.tip_in_body  # what the wrong anatomy believes …
    assert res.status is Status.UNSAFE  # … and what the image says
    assert any("contrast-filled vessel" in r for r in res.reasons)
    assert res.tip_walled_directions < res.tip_rays


def test_tip_on_the_anterior_cortex_is_flagged(case) -> None:
    ph, ctx, proposal = case
    t = proposal.plan.get(LEVEL, Side.RIGHT)
    d = (t.target - t.entry) / t.length_mm
    ahead, _ = segment_points(t.target, t.target + 40.0 * d, 0.25)
    flat, ok = nearest_voxels(ph.anatomy.index_from_lps, ph.anatomy.labels.shape, ahead)
    in_body = ok & ph.anatomy.bodies.ravel()[flat]
    last = int(np.flatnonzero(in_body)[-1])  # the anterior cortex, along the needle
    res = check(dataclasses.replace(t, target_lps=ahead[last]), ctx)
    assert res.status is not Status.SAFE
    image = [r for r in res.reasons if "the CT shows" in r]
    assert image, res.reasons  # the image itself says it, whatever the anatomy says


def test_tip_in_bone_denser_than_the_body_behind_it_is_flagged(case) -> None:
    """A dense focus (600 HU, 6 mm across: an osteophyte, a sclerotic endplate, a bone
    island) around the planned L2 tip: the CT shows the tip in bone much denser than the
    body the needle crossed, so the check cautions and the planner moves off it. The
    planned tips in the body are not flagged."""
    from planning.volume import Volume

    ph, _, proposal = case
    assert all(not r.tip_dense for r in proposal.results.values())
    t = proposal.plan.get(LEVEL, Side.RIGHT)
    ct = ph.ct
    k, j, i = np.indices(ct.array.shape)
    ijk = np.stack([i, j, k], -1).reshape(-1, 3).astype(float)
    lps = (ijk @ ct.affine_lps[:3, :3].T + ct.affine_lps[:3, 3]).reshape(*ct.array.shape, 3)
    focus = np.linalg.norm(lps - t.target, axis=-1) <= 3.0
    dense = Volume(np.where(focus, np.int16(600), ct.array).astype(ct.array.dtype),
                   ct.affine_lps)
    dense_ctx = CheckContext.build(dense, ph.anatomy)
    res = check(t, dense_ctx)
    assert res.tip_dense and res.status is not Status.SAFE
    assert res.tip_behind_hu is not None and res.tip_hu >= res.tip_behind_hu + 150.0
    assert any("dense bone at the tip" in r for r in res.reasons), res.reasons
    moved = propose(dense, ph.anatomy, dense_ctx, [LEVEL]).plan.get(LEVEL, Side.RIGHT)
    assert moved is None or np.linalg.norm(moved.target - t.target) > 2.0


def test_tip_between_two_plates_a_few_millimetres_apart_is_flagged(case) -> None:
    """A disc painted around the planned L2 tip: two endplates (600 HU, 1.5 mm thick)
    3.5 mm above and below it, disc (90 HU) between, 15 mm across, square to the
    vertebra's superior axis. The CT shows dense plates 6–7 mm apart around the tip: a
    disc, not a body; the check cautions and the planner moves off. The planned tips in
    the body have their endplates far apart and are not flagged."""
    from planning.image_evidence import PLATES_MIN_GAP_MM
    from planning.volume import Volume

    ph, _, proposal = case
    assert all(r.tip_plates_gap_mm is None or r.tip_plates_gap_mm >= PLATES_MIN_GAP_MM
               for r in proposal.results.values())
    t = proposal.plan.get(LEVEL, Side.RIGHT)
    up = ph.anatomy.levels[LEVEL].superior_lps
    ct = ph.ct
    k, j, i = np.indices(ct.array.shape)
    ijk = np.stack([i, j, k], -1).reshape(-1, 3).astype(float)
    lps = (ijk @ ct.affine_lps[:3, :3].T + ct.affine_lps[:3, 3]).reshape(*ct.array.shape, 3)
    offset = lps - t.target
    height = offset @ up
    across = np.linalg.norm(offset - height[..., None] * up, axis=-1) <= 7.5
    hu = np.where(across & (np.abs(height) < 3.5), 90, ct.array)
    hu = np.where(across & (np.abs(height) >= 3.5) & (np.abs(height) <= 5.0), 600, hu)
    disc = Volume(hu.astype(ct.array.dtype), ct.affine_lps)
    disc_ctx = CheckContext.build(disc, ph.anatomy)
    res = check(t, disc_ctx)
    assert res.tip_plates_gap_mm is not None and res.tip_plates_gap_mm < PLATES_MIN_GAP_MM
    assert res.status is not Status.SAFE
    assert any("plates" in r and "disc" in r for r in res.reasons), res.reasons
    moved = propose(disc, ph.anatomy, disc_ctx, [LEVEL]).plan.get(LEVEL, Side.RIGHT)
    assert moved is None or np.linalg.norm(moved.target - t.target) > 2.0


def test_over_the_rib_at_46_degrees_is_atypical(shared_demo_ct) -> None:
    volume, truth = shared_demo_ct
    anatomy = anatomy_from_demo_truth(truth)
    ctx = CheckContext.build(volume, anatomy)
    proposal = propose(volume, anatomy, ctx, ["T10"])
    t = proposal.plan.get("T10", Side.LEFT)
    assert t is not None and check(t, ctx).approach == "transpedicular"
    geo = anatomy.levels["T10"]
    # same tip, same length, the needle swung in the axial plane to 46° medial
    angle = np.radians(46.0)
    back = -np.sin(angle) * -geo.left_lps + -np.cos(angle) * geo.anterior_lps  # tip → entry
    entry = t.target + t.length_mm * back / np.linalg.norm(back)
    res = check(dataclasses.replace(t, entry_lps=entry), ctx)
    assert res.medial_angle_vertebra_deg == pytest.approx(46.0, abs=0.5)
    assert res.approach == "atypical"
    assert res.status is not Status.SAFE
    assert any("atypical path: 46° medial" in r for r in res.reasons), res.reasons
    # the entry lies lateral, over the rib: far from the pedicle's line
    assert abs(geo.to_local(entry)[0]) > abs(geo.to_local(t.entry)[0]) + 10.0
