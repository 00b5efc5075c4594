"""Metal on the needle's way (`planning.metal_on_path`): a screw in the pedicle, a rod
behind the entry; read from the image along the needle's whole width."""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy.from_demo import anatomy_from_demo_truth
from planning.autoplan import propose
from planning.checks import CheckContext, Status, check
from planning.metal_on_path import metal_on_path
from planning.plan import Side, Trajectory
from planning.volume import Volume

ENTRY = np.array([0.0, 0.0, 0.0])
TIP = np.array([0.0, -50.0, 0.0])  # anterior is −y in LPS


def _scene(*blobs: tuple[np.ndarray, float]):
    """HU at points: soft tissue in a body 100 mm deep behind the entry (air beyond), with
    metal balls (centre, radius)."""
    def hu_at(points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        out = np.where(p[:, 1] > 100.0, -1000.0, 40.0)
        for centre, radius in blobs:
            out[np.linalg.norm(p - centre, axis=1) <= radius] = 3071.0
        return out
    return hu_at


def test_a_screw_across_the_path_is_found_where_it_lies() -> None:
    hit = metal_on_path(_scene((np.array([0.0, -20.0, 0.0]), 3.0)), ENTRY, TIP, 1.5, 0.5)
    assert hit is not None
    assert hit.from_mm == pytest.approx(17.0, abs=1.6) and hit.to_mm == pytest.approx(23.0, abs=1.6)
    assert "beyond the entry" in hit.describe() and "metal" in hit.describe()


def test_a_rod_behind_the_entry_is_on_the_way_in() -> None:
    hit = metal_on_path(_scene((np.array([0.0, 30.0, 0.0]), 3.0)), ENTRY, TIP, 1.5, 0.5)
    assert hit is not None and hit.to_mm < 0
    assert "behind the entry" in hit.describe()


SKIN = 100.0  # `_scene`'s body ends this far behind the entry


def test_metal_outside_the_patient_or_beside_the_needle_is_not_on_its_way() -> None:
    # beyond the skin (the table's rail, the C-arm): the approach ends there
    beyond = _scene((np.array([0.0, 150.0, 0.0]), 3.0))
    assert metal_on_path(beyond, ENTRY, TIP, 1.5, 0.5, SKIN) is None
    # 5 mm beside the axis, 1 mm wide: clear of a 1.5 mm needle's surface
    assert metal_on_path(_scene((np.array([5.0, -20.0, 0.0]), 1.0)), ENTRY, TIP, 1.5, 0.5) is None
    # but touching its surface it is not
    assert metal_on_path(_scene((np.array([2.2, -20.0, 0.0]), 1.0)), ENTRY, TIP, 1.5, 0.5)


def test_a_single_bright_speck_is_not_metal() -> None:
    assert metal_on_path(_scene((np.array([0.0, -20.0, 0.0]), 0.2)), ENTRY, TIP, 1.5, 0.5) is None


@pytest.fixture(scope="module")
def screwed(shared_demo_ct):
    """The demo CT with a 6.5 mm pedicle screw down L3's left pedicle axis, 40 mm long."""
    volume, truth = shared_demo_ct
    p = truth.level("L3").pedicle("left")
    a, b = np.asarray(p.entry_lps), np.asarray(p.entry_lps) + 40.0 * np.asarray(p.direction_lps)
    array = volume.array.copy()
    inv = np.linalg.inv(volume.affine_lps)
    lo = np.floor((inv[:3, :3] @ np.minimum(a, b) + inv[:3, 3]) - 8).astype(int)
    hi = np.ceil((inv[:3, :3] @ np.maximum(a, b) + inv[:3, 3]) + 8).astype(int)
    lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
    box = tuple(slice(max(0, lo[n]), hi[n]) for n in (2, 1, 0))
    kk, jj, ii = np.meshgrid(*(np.arange(s.start, s.stop) for s in box), indexing="ij")
    ijk = np.stack([ii, jj, kk], axis=-1).reshape(-1, 3).astype(np.float64)
    lps = ijk @ volume.affine_lps[:3, :3].T + volume.affine_lps[:3, 3]
    d = b - a
    t = np.clip((lps - a) @ d / (d @ d), 0.0, 1.0)
    inside = np.linalg.norm(lps - (a + t[:, None] * d), axis=1) <= 3.25
    array[box] = np.where(inside.reshape(kk.shape), 3071, array[box]).astype(array.dtype)
    screwed = Volume(array, volume.affine_lps, frame_of_reference_uid="2.25.77")
    anatomy = anatomy_from_demo_truth(truth)
    return screwed, truth, anatomy, CheckContext.build(screwed, anatomy)


def test_a_needle_down_a_screwed_pedicle_is_unsafe_the_other_side_is_not(screwed) -> None:
    _, truth, _, ctx = screwed
    results = {}
    for side in (Side.LEFT, Side.RIGHT):
        p = truth.level("L3").pedicle(side.value)
        reach = float(np.linalg.norm(p.anterior_cortex_lps - p.entry_lps)) - 6.0
        t = Trajectory("L3", side, p.entry_lps, p.entry_lps + reach * p.direction_lps, "11G")
        results[side] = check(t, ctx)
    left, right = results[Side.LEFT], results[Side.RIGHT]
    assert left.status is Status.UNSAFE
    assert any("runs into metal" in r for r in left.reasons), left.reasons
    assert not any("metal" in r for r in right.reasons), right.reasons


def test_proposals_keep_clear_of_the_screw(screwed) -> None:
    volume, _, anatomy, ctx = screwed
    proposal = propose(volume, anatomy, ctx, ["L3"])
    assert any(t.side is Side.RIGHT for t in proposal.plan.trajectories)
    for t in proposal.plan.trajectories:
        assert not any("metal" in r for r in proposal.results[t.key].reasons)
