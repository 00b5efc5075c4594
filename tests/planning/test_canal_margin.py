"""The canal margin of automatic proposals follows the wall's uncertainty where a path passes.

A synthetic canal along the patient's z axis, found 8 mm wide in radius. On the patient's
left (+x) its wall is a bony ring: the canal ends there and a needle may pass at the
checks' caution distance. On the right (−x) the found wall runs on into soft tissue for
4 mm before the bone: the canal may reach that far, so the margin there grows by the soft
depth (up to the soft border's 3 mm) plus the measured soft-wall error. Shown on an axial
grid and on an oblique one, with left and right swapped by a mirrored storage.
"""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy import Anatomy
from planning.anatomy.canal_border import BORDER_MM
from planning.anatomy.from_ct import SOURCE as AUTOMATIC_SOURCE
from planning.canal_margin import (
    BONY_WALL_ERROR_MM,
    NOISE_HU_PER_MM,
    SAFE_MM,
    SOFT_WALL_ERROR_MM,
    CanalMargin,
)
from planning.clearance import SignedDistance
from planning.volume import Volume
from tests.planning.grids import cube_grid, voxel_lps
from tests.planning.regrid import rotation

FOUND_MM, SOFT_TO_MM, RING_MM = 8.0, 12.0, 14.0
CSF_HU, BONE_HU_HERE, SOFT_HU = 10, 700, 40
SIZE_MM, CAUTION_MM = 44.0, 2.0
RADIUS_11G = 1.5


def _case(spacing: float, axes: np.ndarray, source: str = AUTOMATIC_SOURCE,
          noise_hu: float = 0.0) -> tuple[Volume, Anatomy]:
    affine, shape = cube_grid(spacing, axes, SIZE_MM)
    p = voxel_lps(affine, shape)
    r = np.hypot(p[..., 0], p[..., 1])
    left = p[..., 0] > 0
    # left: bone right at the found wall; right: soft tissue to SOFT_TO_MM, then bone
    bone = np.where(left, (r >= FOUND_MM) & (r < RING_MM), (r >= SOFT_TO_MM) & (r < RING_MM))
    hu = np.where(r < FOUND_MM, CSF_HU, np.where(bone, BONE_HU_HERE, SOFT_HU))
    hu = hu + np.random.default_rng(7).normal(0.0, noise_hu, hu.shape) if noise_hu else hu
    ct = Volume(np.rint(hu).astype(np.int16), affine)
    empty = np.zeros(shape, dtype=bool)
    anatomy = Anatomy(affine_lps=affine, labels=np.zeros(shape, dtype=np.int16),
                      canal=r < FOUND_MM, bodies=empty, levels={}, source=source)
    return ct, anatomy


def _margin(ct: Volume, anatomy: Anatomy) -> CanalMargin:
    margin = CanalMargin.build(ct, anatomy, SignedDistance.build(anatomy.canal,
                                                                 anatomy.affine_lps), CAUTION_MM)
    assert margin is not None
    return margin


def _needle(x_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """A needle along z whose axis is at LPS x = ``x_mm``."""
    return np.array([x_mm, 0.0, -12.0]), np.array([x_mm, 0.0, 12.0])


GRIDS = [(1.0, np.eye(3)), (1.0, np.diag([-1.0, 1.0, 1.0])), (0.8, rotation(20.0, 12.0))]
IDS = ["axial", "mirrored", "oblique"]


@pytest.mark.parametrize(("spacing", "axes"), GRIDS, ids=IDS)
def test_a_bony_wall_asks_the_caution_distance_and_a_soft_one_its_depth_more(
        spacing: float, axes: np.ndarray) -> None:
    ct, anatomy = _case(spacing, axes)
    margin = _margin(ct, anatomy)
    clearance = 3.0  # from the needle's surface to the found canal, either side
    x = FOUND_MM + clearance + RADIUS_11G
    bony = margin.at(*_needle(+x), RADIUS_11G)  # the patient's left
    soft = margin.at(*_needle(-x), RADIUS_11G)
    # (the found wall is the mask's iso-surface: up to half a voxel beyond its radius)
    assert bony.clearance_mm == pytest.approx(clearance, abs=0.6)
    assert soft.clearance_mm == pytest.approx(clearance, abs=0.6)
    assert not bony.soft_wall and bony.uncertainty_mm == BONY_WALL_ERROR_MM
    assert bony.needed_mm == max(CAUTION_MM, SAFE_MM + BONY_WALL_ERROR_MM)
    assert bony.kept
    assert soft.soft_wall
    # the soft depth is the border's reach (3 mm; the tissue runs on to 4 mm)
    assert soft.uncertainty_mm == pytest.approx(BORDER_MM + SOFT_WALL_ERROR_MM, abs=0.8)
    assert not soft.kept
    words = soft.describe()
    assert "soft tissue" in words and f"{soft.clearance_mm:.1f} mm from" in words
    assert f"{soft.needed_mm:.1f} mm are needed" in words


@pytest.mark.parametrize(("spacing", "axes"), GRIDS, ids=IDS)
def test_the_candidates_slack_agrees_with_one_needle_measured_exactly(
        spacing: float, axes: np.ndarray) -> None:
    ct, anatomy = _case(spacing, axes)
    margin = _margin(ct, anatomy)
    xs = [FOUND_MM + RADIUS_11G + c for c in (2.5, 4.0, 7.0, 9.0)]
    needles = [_needle(sign * x) for sign in (1.0, -1.0) for x in xs]
    t = np.linspace(0.0, 1.0, 48)[None, :, None]
    paths = np.stack([e + t[0] * (tip - e) for e, tip in needles])
    slack = margin.slack_paths(paths, RADIUS_11G)
    exact = [margin.at(e, tip, RADIUS_11G) for e, tip in needles]
    expected = np.array([a.clearance_mm - a.needed_mm for a in exact])
    np.testing.assert_allclose(slack, expected, atol=0.3)
    assert list(slack >= 0) == [a.kept for a in exact]
    # 2.5 mm clears a bony wall; beside 3 mm of soft tissue 5 mm are needed
    assert [a.kept for a in exact] == [True, True, True, True, False, False, True, True]


def test_an_imported_canal_is_trusted_as_drawn() -> None:
    ct, anatomy = _case(1.0, np.eye(3), source="label map")
    field = SignedDistance.build(anatomy.canal, anatomy.affine_lps)
    assert CanalMargin.build(ct, anatomy, field, CAUTION_MM) is None


@pytest.mark.parametrize("noise_hu", [0.0, 40.0, 150.0])
def test_a_noisy_ct_widens_the_margin_beside_a_soft_wall(noise_hu: float) -> None:
    """The soft-wall error is the noise measured in the canal over `NOISE_HU_PER_MM`, and
    at least `SOFT_WALL_ERROR_MM` on a quiet CT; a bony wall's does not change."""
    ct, anatomy = _case(1.0, np.eye(3), noise_hu=noise_hu)
    margin = _margin(ct, anatomy)
    expected = max(SOFT_WALL_ERROR_MM, noise_hu / NOISE_HU_PER_MM)
    assert margin.soft_error_mm == pytest.approx(expected, rel=0.12)
    bony = margin.uncertainty_mm(np.array([4.0]), np.array([4.0]))
    soft = margin.uncertainty_mm(np.array([4.0]), np.array([1.0]))
    assert bony[0] == BONY_WALL_ERROR_MM
    assert soft[0] == pytest.approx(3.0 + expected, rel=0.05)


def test_the_check_reports_the_walls_uncertainty_and_cautions_beside_a_soft_wall() -> None:
    """`check` carries the wall's uncertainty where the needle passes; 3 mm from a soft
    wall is a caution (the canal may reach 4 mm further), 3 mm from a bony one is not."""
    from planning.checks import CheckContext, SafetyLimits, canal_wall_words, check
    from planning.plan import Side, Trajectory
    from planning.volume import inverse_affine

    ct, anatomy = _case(1.0, np.eye(3))
    margin = _margin(ct, anatomy)
    ctx = CheckContext(anatomy=anatomy, canal=margin.canal, landmarks={}, code_to_level={},
                       hu=ct.array, hu_index_from_lps=inverse_affine(ct.affine_lps),
                       limits=SafetyLimits(), evidence=None, canal_margin=margin)
    x = FOUND_MM + 3.0 + RADIUS_11G
    results = {}
    for side, sign in ((Side.LEFT, 1.0), (Side.RIGHT, -1.0)):
        results[side] = check(Trajectory("L1", side, *_needle(sign * x), "11G"), ctx)
    bony, soft = results[Side.LEFT], results[Side.RIGHT]
    assert bony.canal_clearance_mm >= SafetyLimits().canal_caution_mm
    assert bony.canal_uncertainty_mm == BONY_WALL_ERROR_MM and bony.canal_margin_kept
    assert not any("uncertain by" in r for r in bony.reasons)
    assert soft.canal_uncertainty_mm is not None and soft.canal_uncertainty_mm > 3.0
    assert not soft.canal_margin_kept
    assert any("soft tissue" in r and "uncertain by" in r for r in soft.reasons)
    assert canal_wall_words(bony) == f"± {BONY_WALL_ERROR_MM:.1f} mm (bone)"
    assert "soft tissue" in (canal_wall_words(soft) or "")
    assert "nearer than that allows" in (canal_wall_words(soft) or "")
    assert soft.to_json()["canal_uncertainty_mm"] == round(soft.canal_uncertainty_mm, 2)
