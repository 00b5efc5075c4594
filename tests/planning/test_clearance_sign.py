"""Far from a structure, the sign of its signed distance does not hang on one vertex's plane.

Beside a thin or concave part of a pooled mask the nearest surface vertex's tangent plane
can face the wrong way (on the held-out chest CT a point 8 mm outside the canal's soft
border came out 7.8 mm *inside* it, and the canal margin took that for 16 mm of soft
tissue). Far points take their sign from the coarse distance transform instead; here the
normals of a sphere's vertices are turned the wrong way on purpose, and every point more
than `NEAR_SURFACE_MM` out keeps the right sign and its distance.
"""

from __future__ import annotations

import numpy as np

from planning.clearance import NEAR_SURFACE_MM, SignedDistance

RADIUS_MM = 8.0


def _sphere() -> tuple[SignedDistance, np.ndarray]:
    n = 41
    k, j, i = np.indices((n, n, n))
    centre = (n - 1) / 2.0
    inside = (i - centre) ** 2 + (j - centre) ** 2 + (k - centre) ** 2 < RADIUS_MM ** 2
    return SignedDistance.build(inside, np.eye(4)), np.full(3, centre)


def test_far_points_keep_their_sign_when_the_nearest_planes_face_the_wrong_way() -> None:
    field, centre = _sphere()
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(300, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    distance = rng.uniform(NEAR_SURFACE_MM + 0.5, 11.0, size=300)
    points = centre + directions * (RADIUS_MM + distance)[:, None]
    right, _ = field.refined_many(points)
    assert np.all(right > 0)
    wrong = SignedDistance(field.tree, field.points_lps, -field.normals_lps, field.coarse,
                           field.coarse_index_from_lps)
    turned, _ = wrong.refined_many(points)
    assert np.all(turned > 0)
    np.testing.assert_allclose(turned, right, atol=1e-9)
    # inside, far from the wall, the sign stays negative as well
    deep = centre + directions[:20] * 2.0
    assert np.all(wrong.refined_many(deep)[0] < 0)


def test_beyond_a_mask_that_fills_its_array_to_the_edge_is_outside() -> None:
    """The coarse grid ends with the mask's array: where a structure reaches the array's
    edge, the clamped edge value is negative, yet a point beyond the array is outside (a
    synthetic canal's soft border, pooled on a mirrored grid: a point 6 mm outside it came
    out 6 mm inside when the sign was taken from the clamped value)."""
    inside = np.zeros((20, 20, 20), dtype=bool)
    inside[:, :, :12] = True  # reaches the array's low-i edge
    field = SignedDistance.build(inside, np.eye(4))
    beyond = np.array([[-8.0, 10.0, 10.0], [-5.0, 4.0, 12.0]])  # i < 0: off the array
    assert np.all(field.approximate(beyond) < 0)  # the clamped coarse value misleads…
    d, _ = field.refined_many(beyond)
    assert np.all(d > 0)  # …the distance does not
