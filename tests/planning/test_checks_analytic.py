"""Clearance numbers against analytic geometry, on identity, flipped and oblique grids.

The canal is a tube of radius 7 mm along an oblique axis and the vertebral body a box in
front of it; the true clearance of a needle is (distance from its axis to the tube's axis)
− 7 mm − the needle's radius. The grids are built in LPS first, so the same physical plan
can be checked on differently oriented volumes.
"""

from __future__ import annotations

import numpy as np
import pytest

from planning.anatomy.model import Anatomy, VertebraGeometry
from planning.checks import CheckContext, Status, breach_grade, check
from planning.plan import Trajectory
from planning.volume import Volume

CANAL_R = 7.0
CANAL_AXIS = np.array([0.15, -0.1, 1.0]) / np.linalg.norm([0.15, -0.1, 1.0])
CANAL_POINT = np.array([0.0, 10.0, 0.0])
BODY_MIN, BODY_MAX = np.array([-20.0, -30.0, -14.0]), np.array([20.0, -4.0, 14.0])
SIZE_MM = 64.0


def _rotation(ax_deg: float, az_deg: float) -> np.ndarray:
    a, b = np.radians(ax_deg), np.radians(az_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rz = np.array([[np.cos(b), -np.sin(b), 0], [np.sin(b), np.cos(b), 0], [0, 0, 1]])
    return rz @ rx


def grid_affine(kind: str, h: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """An index→LPS affine whose grid covers the cube |x|, |y + 4|, |z| ≤ 32 mm."""
    n = int(SIZE_MM / h) + 1
    if kind == "identity":
        m = np.diag([h, h, h])
    elif kind == "flipped":
        m = np.diag([-h, -h, -h])  # i → right, j → anterior, k → inferior
    else:
        m = _rotation(30.0, 25.0) @ np.diag([h, h, h])
    centre = np.array([0.0, -4.0, 0.0])
    a = np.eye(4)
    a[:3, :3] = m
    a[:3, 3] = centre - m @ np.full(3, (n - 1) / 2)
    # an oblique grid must still cover the cube: enlarge it
    if kind == "oblique":
        n = int(n * 1.45)
        a[:3, 3] = centre - m @ np.full(3, (n - 1) / 2)
    return a, (n, n, n)


def phantom(kind: str, h: float) -> tuple[Volume, Anatomy]:
    affine, shape = grid_affine(kind, h)
    k, j, i = np.indices(shape)
    ijk = np.stack([i, j, k], -1).reshape(-1, 3).astype(np.float64)
    p = ijk @ affine[:3, :3].T + affine[:3, 3]
    d = p - CANAL_POINT
    radial = np.linalg.norm(d - np.outer(d @ CANAL_AXIS, CANAL_AXIS), axis=1)
    canal = (radial < CANAL_R).reshape(shape)
    body = np.all((p > BODY_MIN) & (p < BODY_MAX), axis=1).reshape(shape)
    labels = np.where(body, 20, 0).astype(np.int16)
    hu = np.where(body, 300, np.where(canal, 10, 40)).astype(np.int16)
    geo = VertebraGeometry(
        "L1",
        20,
        (BODY_MIN + BODY_MAX) / 2,
        np.array([0, 0, 1.0]),
        np.array([0, -1.0, 0]),
        np.array([1.0, 0, 0]),
    )
    anatomy = Anatomy(affine, labels, canal, body, {"L1": geo})
    return Volume(hu, affine), anatomy


def true_clearance(t: Trajectory) -> float:
    """Smallest distance between the needle's axis segment and the canal's axis, − radii."""
    s = np.linspace(0.0, 1.0, 20001)[:, None]
    pts = t.entry + s * (t.target - t.entry)
    d = pts - CANAL_POINT
    dist = np.linalg.norm(d - np.outer(d @ CANAL_AXIS, CANAL_AXIS), axis=1)
    return float(dist.min()) - CANAL_R - t.radius_mm


def needles(n: int = 24, seed: int = 3) -> list[Trajectory]:
    """Needles aimed from behind, passing the canal at offsets from −5 to +8 mm."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        side = rng.choice(["left", "right"])
        sign = 1.0 if side == "left" else -1.0
        offset = rng.uniform(CANAL_R - 5.0, CANAL_R + 8.0)
        z = rng.uniform(-8.0, 8.0)
        through = CANAL_POINT + z * CANAL_AXIS + np.array([sign * offset, 0.0, 0.0])
        direction = np.array([-sign * rng.uniform(0.0, 0.4), -1.0, rng.uniform(-0.2, 0.2)])
        direction /= np.linalg.norm(direction)
        entry = through - 12.0 * direction
        target = through + 10.0 * direction
        out.append(Trajectory("L1", side, entry, target, rng.choice(["11G", "13G"])))
    return out


@pytest.fixture(scope="module", params=["identity", "flipped", "oblique"])
def context(request) -> tuple[str, CheckContext]:
    volume, anatomy = phantom(request.param, 0.5)
    return request.param, CheckContext.build(volume, anatomy)


def test_clearance_within_a_quarter_mm_of_the_truth(context) -> None:
    kind, ctx = context
    errors = [check(t, ctx).canal_clearance_mm - true_clearance(t) for t in needles()]
    assert max(abs(e) for e in errors) < 0.25, (kind, np.round(errors, 3))


def test_same_plan_same_numbers_on_every_orientation() -> None:
    results = {}
    for kind in ("identity", "flipped", "oblique"):
        ctx = CheckContext.build(*phantom(kind, 0.4))
        results[kind] = np.array([check(t, ctx).canal_clearance_mm for t in needles(12, 7)])
    for kind in ("flipped", "oblique"):
        diff = np.abs(results[kind] - results["identity"])
        assert diff.max() < 0.1, (kind, np.round(diff, 3))


def test_grades_and_status_follow_the_depth(context) -> None:
    _, ctx = context
    for t in needles(30, 11):
        res = check(t, ctx)
        assert res.breach_grade == breach_grade(res.canal_clearance_mm)
        if res.canal_clearance_mm < 0:
            assert res.status is Status.UNSAFE
            assert any("enters the spinal canal" in r for r in res.reasons)
            assert res.reasons[0].startswith(t.label)


def test_breach_grade_boundaries() -> None:
    assert [breach_grade(c) for c in (0.5, 0.0, -1.9, -2.1, -3.9, -4.1, -5.9, -6.1)] == [
        "A",
        "A",
        "B",
        "C",
        "C",
        "D",
        "D",
        "E",
    ]


def test_a_one_voxel_sliver_still_has_a_surface() -> None:
    """A vertebra label cut down to one voxel (seen on a tilted, coarse automatic
    segmentation) smooths below 0.5 everywhere; its surface is still found around the
    voxel, so building the checks does not fail."""
    from planning.clearance import SignedDistance

    mask = np.zeros((9, 9, 9), dtype=bool)
    mask[4, 4, 4] = True
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    field = SignedDistance.build(mask, affine)
    centre = np.array([[8.0, 8.0, 12.0]])  # the voxel's LPS position
    far = np.array([[8.0, 8.0, 30.0]])
    d_centre, d_far = field.refined_many(centre)[0][0], field.refined_many(far)[0][0]
    assert d_centre < 0.5 and 15.0 < d_far < 19.0
